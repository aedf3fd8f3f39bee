//! The WFP and IPsec structures as Rust types (Windows names as doc aliases).
//!
//! Shapes follow `ndis-wfp-abi.md` §5.3. Pointers become owned values or `Option`s, counted
//! arrays (`numFilterConditions` + `filterCondition`, `numSAs` + `saList`) become `Vec`s, and a
//! C union selected by a type field becomes a Rust enum. Key blobs are [`ipsec::Key`]
//! (zeroized on drop, redacted in `Debug`). Fields the emulator does not model (security
//! descriptors, `IPSEC_ID0`, keying-module state, provider data) are left out.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec::Key;

use super::consts::*;

/// `FWPM_DISPLAY_DATA0`: a name (mandatory on objects) and a description.
#[doc(alias = "FWPM_DISPLAY_DATA0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpmDisplayData0 {
    /// `name`; `None` is the C NULL pointer.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

impl FwpmDisplayData0 {
    /// Display data with only a name.
    pub fn named(name: &str) -> Self {
        FwpmDisplayData0 {
            name: Some(name.to_owned()),
            description: None,
        }
    }
}

/// `FWPM_SESSION0`: the caller-settable part of a session (the BFE-filled `processId`, `sid`,
/// `username` and `kernelMode` are not modelled).
#[doc(alias = "FWPM_SESSION0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpmSession0 {
    /// `sessionKey`; all-zero lets BFE generate one.
    pub session_key: Guid,
    /// `displayData`.
    pub display_data: FwpmDisplayData0,
    /// `flags` (`FWPM_SESSION_FLAG_*`).
    pub flags: u32,
    /// `txnWaitTimeoutInMSec` (accepted; the emulator never waits, see [`crate::wfp`]).
    pub txn_wait_timeout_in_msec: u32,
}

/// `SEC_WINNT_AUTH_IDENTITY_W`: accepted by `FwpmEngineOpen0` and ignored (the emulated BFE
/// is local; access is decided by a [`crate::wfp::CallerToken`]).
#[doc(alias = "SEC_WINNT_AUTH_IDENTITY_W")]
#[derive(Clone, Debug, Default)]
pub struct SecWinntAuthIdentityW {
    /// `User`.
    pub user: String,
    /// `Domain`.
    pub domain: String,
    /// `Password` (zeroized on drop, redacted in `Debug`).
    pub password: Key,
    /// `Flags`.
    pub flags: u32,
}

/// A security descriptor argument (`PSECURITY_DESCRIPTOR`). Accepted and ignored: the
/// emulator models access with [`crate::wfp::CallerToken`] instead.
#[doc(alias = "SECURITY_DESCRIPTOR")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecurityDescriptor;

/// `FWP_VALUE0`: a typed value (the `type` field selects the union arm).
#[doc(alias = "FWP_VALUE0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FwpValue0 {
    /// `FWP_EMPTY`.
    #[default]
    Empty,
    /// `FWP_UINT8`.
    Uint8(u8),
    /// `FWP_UINT16`.
    Uint16(u16),
    /// `FWP_UINT32` (IPv4 addresses in host order).
    Uint32(u32),
    /// `FWP_UINT64`.
    Uint64(u64),
    /// `FWP_INT32`.
    Int32(i32),
    /// `FWP_BYTE_ARRAY16_TYPE` (IPv6 addresses in network order).
    ByteArray16([u8; 16]),
    /// `FWP_BYTE_BLOB_TYPE`.
    ByteBlob(Vec<u8>),
    /// `FWP_UNICODE_STRING_TYPE`.
    UnicodeString(String),
}

impl FwpValue0 {
    /// The `FWP_DATA_TYPE` number of this value.
    pub fn data_type(&self) -> u32 {
        match self {
            FwpValue0::Empty => 0,
            FwpValue0::Uint8(_) => 1,
            FwpValue0::Uint16(_) => 2,
            FwpValue0::Uint32(_) => 3,
            FwpValue0::Uint64(_) => 4,
            FwpValue0::Int32(_) => 7,
            FwpValue0::ByteArray16(_) => 11,
            FwpValue0::ByteBlob(_) => 12,
            FwpValue0::UnicodeString(_) => 17,
        }
    }
}

/// `FWP_V4_ADDR_AND_MASK`: address and mask, both **host byte order** `u32`s
/// (`[SDKDOC]` fwp_v4_addr_and_mask).
#[doc(alias = "FWP_V4_ADDR_AND_MASK")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwpV4AddrAndMask {
    /// `addr`.
    pub addr: u32,
    /// `mask` (must be contiguous ones from the top, else `FWP_E_INVALID_NET_MASK`).
    pub mask: u32,
}

impl FwpV4AddrAndMask {
    /// `addr/prefix_len`; a prefix longer than 32 is clamped to 32.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Self {
        let p = u32::from(prefix_len.min(32));
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        FwpV4AddrAndMask {
            addr: u32::from(addr),
            mask,
        }
    }
}

/// `FWP_V6_ADDR_AND_MASK`: address (network order) and prefix length.
#[doc(alias = "FWP_V6_ADDR_AND_MASK")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwpV6AddrAndMask {
    /// `addr`.
    pub addr: [u8; 16],
    /// `prefixLength` (0-128, else `FWP_E_INVALID_NET_MASK`).
    pub prefix_length: u8,
}

impl FwpV6AddrAndMask {
    /// `addr/prefix_length`.
    pub fn new(addr: Ipv6Addr, prefix_length: u8) -> Self {
        FwpV6AddrAndMask {
            addr: addr.octets(),
            prefix_length,
        }
    }
}

/// `FWP_RANGE0`: an inclusive range; both ends must have the same type.
#[doc(alias = "FWP_RANGE0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpRange0 {
    /// `valueLow`.
    pub value_low: FwpValue0,
    /// `valueHigh`.
    pub value_high: FwpValue0,
}

/// `FWP_CONDITION_VALUE0`: the value of a filter condition.
#[doc(alias = "FWP_CONDITION_VALUE0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FwpConditionValue0 {
    /// `FWP_EMPTY`.
    #[default]
    Empty,
    /// `FWP_UINT8` (protocol, local address type).
    Uint8(u8),
    /// `FWP_UINT16` (ports).
    Uint16(u16),
    /// `FWP_UINT32` (IPv4 address, host order).
    Uint32(u32),
    /// `FWP_UINT64`.
    Uint64(u64),
    /// `FWP_INT32`.
    Int32(i32),
    /// `FWP_BYTE_ARRAY16_TYPE` (IPv6 address, network order).
    ByteArray16([u8; 16]),
    /// `FWP_BYTE_BLOB_TYPE`.
    ByteBlob(Vec<u8>),
    /// `FWP_UNICODE_STRING_TYPE`.
    UnicodeString(String),
    /// `FWP_V4_ADDR_MASK`.
    V4AddrMask(FwpV4AddrAndMask),
    /// `FWP_V6_ADDR_MASK`.
    V6AddrMask(FwpV6AddrAndMask),
    /// `FWP_RANGE_TYPE`.
    Range(FwpRange0),
}

impl FwpConditionValue0 {
    /// An IPv4 address value (`FWP_UINT32`, host order).
    pub fn v4(addr: Ipv4Addr) -> Self {
        FwpConditionValue0::Uint32(u32::from(addr))
    }

    /// An IPv6 address value (`FWP_BYTE_ARRAY16_TYPE`).
    pub fn v6(addr: Ipv6Addr) -> Self {
        FwpConditionValue0::ByteArray16(addr.octets())
    }

    /// An address of either family (`FWP_UINT32` or `FWP_BYTE_ARRAY16_TYPE`).
    pub fn ip(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::v4(a),
            IpAddr::V6(a) => Self::v6(a),
        }
    }

    /// The `FWP_DATA_TYPE` number of this value.
    pub fn data_type(&self) -> u32 {
        match self {
            FwpConditionValue0::Empty => 0,
            FwpConditionValue0::Uint8(_) => 1,
            FwpConditionValue0::Uint16(_) => 2,
            FwpConditionValue0::Uint32(_) => 3,
            FwpConditionValue0::Uint64(_) => 4,
            FwpConditionValue0::Int32(_) => 7,
            FwpConditionValue0::ByteArray16(_) => 11,
            FwpConditionValue0::ByteBlob(_) => 12,
            FwpConditionValue0::UnicodeString(_) => 17,
            FwpConditionValue0::V4AddrMask(_) => 0x100,
            FwpConditionValue0::V6AddrMask(_) => 0x101,
            FwpConditionValue0::Range(_) => 0x102,
        }
    }
}

/// `FWPM_FILTER_CONDITION0`.
#[doc(alias = "FWPM_FILTER_CONDITION0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpmFilterCondition0 {
    /// `fieldKey` (an `FWPM_CONDITION_*` GUID).
    pub field_key: Guid,
    /// `matchType`.
    pub match_type: FwpMatchType,
    /// `conditionValue`.
    pub condition_value: FwpConditionValue0,
}

impl FwpmFilterCondition0 {
    /// A condition `field match_type value`.
    pub fn new(field_key: Guid, match_type: FwpMatchType, value: FwpConditionValue0) -> Self {
        FwpmFilterCondition0 {
            field_key,
            match_type,
            condition_value: value,
        }
    }
}

/// `FWPM_ACTION0`.
#[doc(alias = "FWPM_ACTION0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwpmAction0 {
    /// `type`.
    pub action_type: FwpActionType,
    /// `calloutKey` (the union arm used by callout actions; `filterType` is not modelled).
    #[doc(alias = "filterType")]
    pub callout_key: Guid,
}

/// `FWPM_FILTER0`.
#[doc(alias = "FWPM_FILTER0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpmFilter0 {
    /// `filterKey`; all-zero lets BFE generate one.
    pub filter_key: Guid,
    /// `displayData` (the name is mandatory).
    pub display_data: FwpmDisplayData0,
    /// `flags` (`FWPM_FILTER_FLAG_*`).
    pub flags: u32,
    /// `providerKey` (no providers are emulated: `Some` gives `FWP_E_PROVIDER_NOT_FOUND`).
    pub provider_key: Option<Guid>,
    /// `layerKey`.
    pub layer_key: Guid,
    /// `subLayerKey`; all-zero selects the default sublayer ([`FWPM_SUBLAYER_UNIVERSAL`]).
    pub sub_layer_key: Guid,
    /// `weight`: `Empty` (automatic), `Uint8(0..=15)` (weight range) or `Uint64` (verbatim).
    pub weight: FwpValue0,
    /// `numFilterConditions` + `filterCondition`.
    pub filter_condition: Vec<FwpmFilterCondition0>,
    /// `action`.
    pub action: FwpmAction0,
    /// `rawContext`.
    pub raw_context: u64,
    /// `filterId` (output: the LUID BFE assigned).
    pub filter_id: u64,
    /// `effectiveWeight` (output: always `Uint64`).
    pub effective_weight: FwpValue0,
}

/// `FWPM_SUBLAYER0`.
#[doc(alias = "FWPM_SUBLAYER0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpmSubLayer0 {
    /// `subLayerKey`; all-zero lets BFE generate one.
    pub sub_layer_key: Guid,
    /// `displayData` (the name is mandatory).
    pub display_data: FwpmDisplayData0,
    /// `flags` (`FWPM_SUBLAYER_FLAG_PERSISTENT` or 0).
    pub flags: u32,
    /// `providerKey` (must be `None`; no providers are emulated).
    pub provider_key: Option<Guid>,
    /// `weight`: higher sublayers are evaluated first.
    pub weight: u16,
}

/// `FWPM_FILTER_ENUM_TEMPLATE0`, reduced to its layer (`layerKey`; all-zero enumerates every
/// layer, an emulator extension).
#[doc(alias = "FWPM_FILTER_ENUM_TEMPLATE0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwpmFilterEnumTemplate0 {
    /// `layerKey`.
    pub layer_key: Guid,
}

/// An address in an IPsec structure: the `localV4Address`/`localV6Address` union.
/// IPv4 is a host-order `u32` (as the SDK documents), IPv6 16 bytes in network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpsecAddress {
    /// `...V4Address` (host order).
    V4(u32),
    /// `...V6Address` (network order).
    V6([u8; 16]),
}

impl Default for IpsecAddress {
    fn default() -> Self {
        IpsecAddress::V4(0)
    }
}

impl IpsecAddress {
    /// The address as a `core::net` value.
    pub fn to_ip(self) -> IpAddr {
        match self {
            IpsecAddress::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            IpsecAddress::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }

    /// The IP version this address belongs to.
    pub fn ip_version(self) -> FwpIpVersion {
        match self {
            IpsecAddress::V4(_) => FWP_IP_VERSION_V4,
            IpsecAddress::V6(_) => FWP_IP_VERSION_V6,
        }
    }
}

impl From<Ipv4Addr> for IpsecAddress {
    fn from(a: Ipv4Addr) -> Self {
        IpsecAddress::V4(u32::from(a))
    }
}

impl From<Ipv6Addr> for IpsecAddress {
    fn from(a: Ipv6Addr) -> Self {
        IpsecAddress::V6(a.octets())
    }
}

impl From<IpAddr> for IpsecAddress {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => a.into(),
            IpAddr::V6(a) => a.into(),
        }
    }
}

/// `IPSEC_TRAFFIC0`: what an SA context protects.
#[doc(alias = "IPSEC_TRAFFIC0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecTraffic0 {
    /// `ipVersion` (must agree with the addresses).
    pub ip_version: FwpIpVersion,
    /// `localV4Address` / `localV6Address`.
    #[doc(alias = "localV4Address")]
    #[doc(alias = "localV6Address")]
    pub local_address: IpsecAddress,
    /// `remoteV4Address` / `remoteV6Address`.
    #[doc(alias = "remoteV4Address")]
    #[doc(alias = "remoteV6Address")]
    pub remote_address: IpsecAddress,
    /// `trafficType`.
    pub traffic_type: IpsecTrafficType,
    /// `ipsecFilterId` (transport) / `tunnelPolicyId` (tunnel): the union of both.
    #[doc(alias = "ipsecFilterId")]
    #[doc(alias = "tunnelPolicyId")]
    pub ipsec_filter_id: u64,
    /// `remotePort`: non-zero overrides the transport filter's remote port.
    pub remote_port: u16,
}

/// `IPSEC_TRAFFIC1` (Windows 7): `IPSEC_TRAFFIC0` plus local port, protocol and interface.
#[doc(alias = "IPSEC_TRAFFIC1")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecTraffic1 {
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `localV4Address` / `localV6Address`.
    pub local_address: IpsecAddress,
    /// `remoteV4Address` / `remoteV6Address`.
    pub remote_address: IpsecAddress,
    /// `trafficType`.
    pub traffic_type: IpsecTrafficType,
    /// `ipsecFilterId` / `tunnelPolicyId`.
    pub ipsec_filter_id: u64,
    /// `remotePort`.
    pub remote_port: u16,
    /// `localPort`.
    pub local_port: u16,
    /// `ipProtocol`.
    pub ip_protocol: u8,
    /// `localIfLuid`.
    pub local_if_luid: u64,
    /// `realIfProfileId`.
    pub real_if_profile_id: u32,
}

impl From<IpsecTraffic0> for IpsecTraffic1 {
    fn from(t: IpsecTraffic0) -> Self {
        IpsecTraffic1 {
            ip_version: t.ip_version,
            local_address: t.local_address,
            remote_address: t.remote_address,
            traffic_type: t.traffic_type,
            ipsec_filter_id: t.ipsec_filter_id,
            remote_port: t.remote_port,
            ..Default::default()
        }
    }
}

impl From<IpsecTraffic1> for IpsecTraffic0 {
    fn from(t: IpsecTraffic1) -> Self {
        IpsecTraffic0 {
            ip_version: t.ip_version,
            local_address: t.local_address,
            remote_address: t.remote_address,
            traffic_type: t.traffic_type,
            ipsec_filter_id: t.ipsec_filter_id,
            remote_port: t.remote_port,
        }
    }
}

/// `IPSEC_V4_UDP_ENCAPSULATION0`: NAT-T ports (IPv4 only).
#[doc(alias = "IPSEC_V4_UDP_ENCAPSULATION0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecV4UdpEncapsulation0 {
    /// `localUdpEncapPort`.
    pub local_udp_encap_port: u16,
    /// `remoteUdpEncapPort`.
    pub remote_udp_encap_port: u16,
}

/// `IPSEC_GETSPI0`.
#[doc(alias = "IPSEC_GETSPI0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpsecGetSpi0 {
    /// `inboundIpsecTraffic` (its `ipsecFilterId` names the **inbound** filter).
    pub inbound_ipsec_traffic: IpsecTraffic0,
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `inboundUdpEncapsulation` (IPv4 only).
    pub inbound_udp_encapsulation: Option<IpsecV4UdpEncapsulation0>,
    /// `rngCryptoModuleID` (documented as not used).
    pub rng_crypto_module_id: Option<Guid>,
}

/// `IPSEC_GETSPI1`.
#[doc(alias = "IPSEC_GETSPI1")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpsecGetSpi1 {
    /// `inboundIpsecTraffic`.
    pub inbound_ipsec_traffic: IpsecTraffic1,
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `inboundUdpEncapsulation` (IPv4 only).
    pub inbound_udp_encapsulation: Option<IpsecV4UdpEncapsulation0>,
    /// `rngCryptoModuleID` (not used).
    pub rng_crypto_module_id: Option<Guid>,
}

impl From<IpsecGetSpi0> for IpsecGetSpi1 {
    fn from(g: IpsecGetSpi0) -> Self {
        IpsecGetSpi1 {
            inbound_ipsec_traffic: g.inbound_ipsec_traffic.into(),
            ip_version: g.ip_version,
            inbound_udp_encapsulation: g.inbound_udp_encapsulation,
            rng_crypto_module_id: g.rng_crypto_module_id,
        }
    }
}

/// `IPSEC_SA_LIFETIME0`: zero in a field means "no limit" in this emulator.
#[doc(alias = "IPSEC_SA_LIFETIME0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecSaLifetime0 {
    /// `lifetimeSeconds`.
    pub lifetime_seconds: u32,
    /// `lifetimeKilobytes` (KiB of protected payload).
    pub lifetime_kilobytes: u32,
    /// `lifetimePackets`.
    pub lifetime_packets: u32,
}

/// `IPSEC_AUTH_TRANSFORM_ID0`.
#[doc(alias = "IPSEC_AUTH_TRANSFORM_ID0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecAuthTransformId0 {
    /// `authType`.
    pub auth_type: IpsecAuthType,
    /// `authConfig` (`IPSEC_AUTH_CONFIG_*`).
    pub auth_config: u8,
}

/// `IPSEC_CIPHER_TRANSFORM_ID0`.
#[doc(alias = "IPSEC_CIPHER_TRANSFORM_ID0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecCipherTransformId0 {
    /// `cipherType`.
    pub cipher_type: IpsecCipherType,
    /// `cipherConfig` (`IPSEC_CIPHER_CONFIG_*`).
    pub cipher_config: u8,
}

/// `IPSEC_AUTH_TRANSFORM0`.
#[doc(alias = "IPSEC_AUTH_TRANSFORM0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecAuthTransform0 {
    /// `authTransformId`.
    pub auth_transform_id: IpsecAuthTransformId0,
    /// `cryptoModuleId` (ignored).
    pub crypto_module_id: Option<Guid>,
}

/// `IPSEC_CIPHER_TRANSFORM0`.
#[doc(alias = "IPSEC_CIPHER_TRANSFORM0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecCipherTransform0 {
    /// `cipherTransformId`.
    pub cipher_transform_id: IpsecCipherTransformId0,
    /// `cryptoModuleId` (ignored).
    pub crypto_module_id: Option<Guid>,
}

/// `IPSEC_SA_AUTH_INFORMATION0`: an integrity transform and its key.
#[doc(alias = "IPSEC_SA_AUTH_INFORMATION0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaAuthInformation0 {
    /// `authTransform`.
    pub auth_transform: IpsecAuthTransform0,
    /// `authKey` (for GMAC: AES key followed by the 4-byte salt).
    pub auth_key: Key,
}

/// `IPSEC_SA_CIPHER_INFORMATION0`: a cipher transform and its key.
#[doc(alias = "IPSEC_SA_CIPHER_INFORMATION0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaCipherInformation0 {
    /// `cipherTransform`.
    pub cipher_transform: IpsecCipherTransform0,
    /// `cipherKey` (for GCM: AES key followed by the 4-byte salt).
    pub cipher_key: Key,
}

/// `IPSEC_SA_AUTH_AND_CIPHER_INFORMATION0` (cipher first, as in C).
#[doc(alias = "IPSEC_SA_AUTH_AND_CIPHER_INFORMATION0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaAuthAndCipherInformation0 {
    /// `saCipherInformation`.
    pub sa_cipher_information: IpsecSaCipherInformation0,
    /// `saAuthInformation`.
    pub sa_auth_information: IpsecSaAuthInformation0,
}

/// The `saTransformType` + union of `IPSEC_SA0`: which transform and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpsecSaTransform {
    /// `IPSEC_TRANSFORM_AH` + `ahInformation`.
    #[doc(alias = "ahInformation")]
    Ah(IpsecSaAuthInformation0),
    /// `IPSEC_TRANSFORM_ESP_AUTH` + `espAuthInformation` (HMAC: ESP with NULL encryption;
    /// GCM_AES_x: AES-GMAC).
    #[doc(alias = "espAuthInformation")]
    EspAuth(IpsecSaAuthInformation0),
    /// `IPSEC_TRANSFORM_ESP_CIPHER` + `espCipherInformation` (refused: ESP without integrity).
    #[doc(alias = "espCipherInformation")]
    EspCipher(IpsecSaCipherInformation0),
    /// `IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER` + `espAuthAndCipherInformation`.
    #[doc(alias = "espAuthAndCipherInformation")]
    EspAuthAndCipher(IpsecSaAuthAndCipherInformation0),
    /// `IPSEC_TRANSFORM_ESP_AUTH_FW` + `espAuthFwInformation` (refused: not emulated).
    #[doc(alias = "espAuthFwInformation")]
    EspAuthFw(IpsecSaAuthInformation0),
}

impl IpsecSaTransform {
    /// The `IPSEC_TRANSFORM_TYPE` of this arm.
    pub fn transform_type(&self) -> IpsecTransformType {
        match self {
            IpsecSaTransform::Ah(_) => IPSEC_TRANSFORM_AH,
            IpsecSaTransform::EspAuth(_) => IPSEC_TRANSFORM_ESP_AUTH,
            IpsecSaTransform::EspCipher(_) => IPSEC_TRANSFORM_ESP_CIPHER,
            IpsecSaTransform::EspAuthAndCipher(_) => IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER,
            IpsecSaTransform::EspAuthFw(_) => IPSEC_TRANSFORM_ESP_AUTH_FW,
        }
    }

    /// The same transform with every key blob emptied (what the emulator hands back out).
    pub(crate) fn redacted(&self) -> Self {
        let mut t = self.clone();
        match &mut t {
            IpsecSaTransform::Ah(a)
            | IpsecSaTransform::EspAuth(a)
            | IpsecSaTransform::EspAuthFw(a) => {
                a.auth_key = Key::empty();
            }
            IpsecSaTransform::EspCipher(c) => c.cipher_key = Key::empty(),
            IpsecSaTransform::EspAuthAndCipher(ac) => {
                ac.sa_cipher_information.cipher_key = Key::empty();
                ac.sa_auth_information.auth_key = Key::empty();
            }
        }
        t
    }
}

/// `IPSEC_SA0`: one SA of a bundle.
#[doc(alias = "IPSEC_SA0")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpsecSa0 {
    /// `spi` (host order).
    pub spi: u32,
    /// `saTransformType` and its information union.
    #[doc(alias = "saTransformType")]
    pub sa_transform: IpsecSaTransform,
}

/// `IPSEC_SA_BUNDLE0` (without `ipsecId` and `keyModuleState`, which are not modelled).
#[doc(alias = "IPSEC_SA_BUNDLE0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaBundle0 {
    /// `flags` (`IPSEC_SA_BUNDLE_FLAG_*`).
    pub flags: u32,
    /// `lifetime`.
    pub lifetime: IpsecSaLifetime0,
    /// `idleTimeoutSeconds` (stored, not enforced).
    pub idle_timeout_seconds: u32,
    /// `ndAllowClearTimeoutSeconds` (stored).
    pub nd_allow_clear_timeout_seconds: u32,
    /// `napContext`.
    pub nap_context: u32,
    /// `qmSaId`.
    pub qm_sa_id: u32,
    /// `numSAs` + `saList`: one SA, or ESP then AH.
    pub sa_list: Vec<IpsecSa0>,
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `peerV4PrivateAddress` (host order).
    pub peer_v4_private_address: u32,
    /// `mmSaId`.
    pub mm_sa_id: u64,
    /// `pfsGroup`.
    pub pfs_group: IpsecPfsGroup,
}

/// `IPSEC_SA_BUNDLE1` (Windows 7): `IPSEC_SA_BUNDLE0` plus `saLookupContext`, `qmFilterId`.
#[doc(alias = "IPSEC_SA_BUNDLE1")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaBundle1 {
    /// `flags`.
    pub flags: u32,
    /// `lifetime`.
    pub lifetime: IpsecSaLifetime0,
    /// `idleTimeoutSeconds`.
    pub idle_timeout_seconds: u32,
    /// `ndAllowClearTimeoutSeconds`.
    pub nd_allow_clear_timeout_seconds: u32,
    /// `napContext`.
    pub nap_context: u32,
    /// `qmSaId`.
    pub qm_sa_id: u32,
    /// `numSAs` + `saList`.
    pub sa_list: Vec<IpsecSa0>,
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `peerV4PrivateAddress`.
    pub peer_v4_private_address: u32,
    /// `mmSaId`.
    pub mm_sa_id: u64,
    /// `pfsGroup`.
    pub pfs_group: IpsecPfsGroup,
    /// `saLookupContext`.
    pub sa_lookup_context: Guid,
    /// `qmFilterId`.
    pub qm_filter_id: u64,
}

impl From<IpsecSaBundle0> for IpsecSaBundle1 {
    fn from(b: IpsecSaBundle0) -> Self {
        IpsecSaBundle1 {
            flags: b.flags,
            lifetime: b.lifetime,
            idle_timeout_seconds: b.idle_timeout_seconds,
            nd_allow_clear_timeout_seconds: b.nd_allow_clear_timeout_seconds,
            nap_context: b.nap_context,
            qm_sa_id: b.qm_sa_id,
            sa_list: b.sa_list.clone(),
            ip_version: b.ip_version,
            peer_v4_private_address: b.peer_v4_private_address,
            mm_sa_id: b.mm_sa_id,
            pfs_group: b.pfs_group,
            sa_lookup_context: Guid::NULL,
            qm_filter_id: 0,
        }
    }
}

impl From<IpsecSaBundle1> for IpsecSaBundle0 {
    fn from(b: IpsecSaBundle1) -> Self {
        IpsecSaBundle0 {
            flags: b.flags,
            lifetime: b.lifetime,
            idle_timeout_seconds: b.idle_timeout_seconds,
            nd_allow_clear_timeout_seconds: b.nd_allow_clear_timeout_seconds,
            nap_context: b.nap_context,
            qm_sa_id: b.qm_sa_id,
            sa_list: b.sa_list.clone(),
            ip_version: b.ip_version,
            peer_v4_private_address: b.peer_v4_private_address,
            mm_sa_id: b.mm_sa_id,
            pfs_group: b.pfs_group,
        }
    }
}

/// `IPSEC_VIRTUAL_IF_TUNNEL_INFO0`.
#[doc(alias = "IPSEC_VIRTUAL_IF_TUNNEL_INFO0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecVirtualIfTunnelInfo0 {
    /// `virtualIfTunnelId`.
    pub virtual_if_tunnel_id: u64,
    /// `trafficSelectorId`.
    pub traffic_selector_id: u64,
}

/// `IPSEC_SA_DETAILS0`: one direction of an SA context as `IPsecSaContextGetById0` returns it
/// (key blobs are returned **empty**: the emulator never hands keys back out).
#[doc(alias = "IPSEC_SA_DETAILS0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaDetails0 {
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `saDirection`.
    pub sa_direction: FwpDirection,
    /// `traffic`.
    pub traffic: IpsecTraffic0,
    /// `saBundle`.
    pub sa_bundle: IpsecSaBundle0,
    /// `udpEncapsulation`.
    pub udp_encapsulation: Option<IpsecV4UdpEncapsulation0>,
    /// `transportFilter`.
    pub transport_filter: Option<FwpmFilter0>,
}

/// `IPSEC_SA_DETAILS1`.
#[doc(alias = "IPSEC_SA_DETAILS1")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaDetails1 {
    /// `ipVersion`.
    pub ip_version: FwpIpVersion,
    /// `saDirection`.
    pub sa_direction: FwpDirection,
    /// `traffic`.
    pub traffic: IpsecTraffic1,
    /// `saBundle`.
    pub sa_bundle: IpsecSaBundle1,
    /// `udpEncapsulation`.
    pub udp_encapsulation: Option<IpsecV4UdpEncapsulation0>,
    /// `transportFilter`.
    pub transport_filter: Option<FwpmFilter0>,
    /// `virtualIfTunnelInfo`.
    pub virtual_if_tunnel_info: IpsecVirtualIfTunnelInfo0,
}

impl From<IpsecSaDetails1> for IpsecSaDetails0 {
    fn from(d: IpsecSaDetails1) -> Self {
        IpsecSaDetails0 {
            ip_version: d.ip_version,
            sa_direction: d.sa_direction,
            traffic: d.traffic.into(),
            sa_bundle: d.sa_bundle.into(),
            udp_encapsulation: d.udp_encapsulation,
            transport_filter: d.transport_filter,
        }
    }
}

/// `IPSEC_SA_CONTEXT0`.
#[doc(alias = "IPSEC_SA_CONTEXT0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaContext0 {
    /// `saContextId`.
    pub sa_context_id: u64,
    /// `inboundSa`.
    pub inbound_sa: Option<IpsecSaDetails0>,
    /// `outboundSa`.
    pub outbound_sa: Option<IpsecSaDetails0>,
}

/// `IPSEC_SA_CONTEXT1`.
#[doc(alias = "IPSEC_SA_CONTEXT1")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaContext1 {
    /// `saContextId`.
    pub sa_context_id: u64,
    /// `inboundSa`.
    pub inbound_sa: Option<IpsecSaDetails1>,
    /// `outboundSa`.
    pub outbound_sa: Option<IpsecSaDetails1>,
}

impl From<IpsecSaContext1> for IpsecSaContext0 {
    fn from(c: IpsecSaContext1) -> Self {
        IpsecSaContext0 {
            sa_context_id: c.sa_context_id,
            inbound_sa: c.inbound_sa.map(Into::into),
            outbound_sa: c.outbound_sa.map(Into::into),
        }
    }
}

/// `IPSEC_SA_CONTEXT_ENUM_TEMPLATE0`: which SA contexts to enumerate or report, by the local
/// and remote address of their traffic. `Empty` matches everything; otherwise an address
/// (`Uint32` / `ByteArray16`), an address mask or a range.
#[doc(alias = "IPSEC_SA_CONTEXT_ENUM_TEMPLATE0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaContextEnumTemplate0 {
    /// `localSubNet`.
    pub local_sub_net: FwpConditionValue0,
    /// `remoteSubNet`.
    pub remote_sub_net: FwpConditionValue0,
}

/// `IPSEC_SA_CONTEXT_SUBSCRIPTION0`.
#[doc(alias = "IPSEC_SA_CONTEXT_SUBSCRIPTION0")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsecSaContextSubscription0 {
    /// `enumTemplate` (`None`: every SA context).
    pub enum_template: Option<IpsecSaContextEnumTemplate0>,
    /// `flags`: 0, or [`IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT`].
    pub flags: u32,
    /// `sessionKey`.
    pub session_key: Guid,
}

/// `IPSEC_SA_CONTEXT_CHANGE0`: what a subscription callback receives.
#[doc(alias = "IPSEC_SA_CONTEXT_CHANGE0")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpsecSaContextChange0 {
    /// `changeType`.
    pub change_type: IpsecSaContextEventType0,
    /// `saContextId`.
    pub sa_context_id: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn v4_mask_is_host_order() {
        let m = FwpV4AddrAndMask::new(Ipv4Addr::new(192, 0, 2, 0), 24);
        assert_eq!(m.addr, 0xC000_0200);
        assert_eq!(m.mask, 0xFFFF_FF00);
        assert_eq!(FwpV4AddrAndMask::new(Ipv4Addr::UNSPECIFIED, 0).mask, 0);
    }

    #[test]
    fn address_conversions_round_trip() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(IpsecAddress::from(a).to_ip(), a);
        assert_eq!(IpsecAddress::from(a).ip_version(), FWP_IP_VERSION_V6);
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(IpsecAddress::from(b), IpsecAddress::V4(0xC000_0201));
        assert_eq!(
            FwpConditionValue0::ip(b),
            FwpConditionValue0::Uint32(0xC000_0201)
        );
    }

    #[test]
    fn redacted_transform_has_no_keys() {
        let t = IpsecSaTransform::EspAuthAndCipher(IpsecSaAuthAndCipherInformation0 {
            sa_cipher_information: IpsecSaCipherInformation0 {
                cipher_transform: IpsecCipherTransform0::default(),
                cipher_key: Key::new(&[0x5A; 20]),
            },
            sa_auth_information: IpsecSaAuthInformation0 {
                auth_transform: IpsecAuthTransform0::default(),
                auth_key: Key::new(&[0x5A; 20]),
            },
        });
        match t.redacted() {
            IpsecSaTransform::EspAuthAndCipher(ac) => {
                assert!(ac.sa_cipher_information.cipher_key.is_empty());
                assert!(ac.sa_auth_information.auth_key.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(t.transform_type(), IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER);
    }
}
