//! GUIDs, enumerations and constants of the WFP and IPsec management API, with their Windows
//! names.
//!
//! Values from `ndis-wfp-abi.md` §5.4 and §6 (`[WS]` windows-sys WindowsFilteringPlatform,
//! cross-checked against the SDK `fwpmu.h` / `ipsectypes.h`). C enumerations are modelled as
//! `u32` newtypes (so a value out of range can still be passed and refused with
//! `FWP_E_INVALID_ENUMERATOR`, as Windows does); their values are constants with the Windows
//! names.
#![allow(non_upper_case_globals)]

use core::fmt;

/// A Windows `GUID` (16 bytes). Written and printed in the canonical
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form.
#[doc(alias = "GUID")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub u128);

impl Guid {
    /// The all-zero GUID (`GUID_NULL`): "not set" in WFP structures.
    #[doc(alias = "GUID_NULL")]
    pub const NULL: Guid = Guid(0);

    /// A GUID from its canonical form read as one 128-bit number, e.g.
    /// `Guid::from_u128(0x5926dfc8_e3cf_4426_a283_dc393f5d0f9d)`.
    pub const fn from_u128(v: u128) -> Self {
        Guid(v)
    }

    /// True for the all-zero GUID.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xFFFF_FFFF_FFFF
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

macro_rules! guids {
    ($( $name:ident = $val:expr; )*) => {
        $(
            #[doc = concat!("`", stringify!($name), "` (ndis-wfp-abi.md §6, `[WS]`).")]
            pub const $name: Guid = Guid::from_u128($val);
        )*
        /// The Windows name of a well-known GUID, if it is one of this module's constants.
        pub fn guid_name(g: Guid) -> Option<&'static str> {
            $( if g == $name { return Some(stringify!($name)); } )*
            None
        }
    };
}

guids! {
    FWPM_LAYER_INBOUND_TRANSPORT_V4 = 0x5926dfc8_e3cf_4426_a283_dc393f5d0f9d;
    FWPM_LAYER_INBOUND_TRANSPORT_V6 = 0x634a869f_fc23_4b90_b0c1_bf620a36ae6f;
    FWPM_LAYER_OUTBOUND_TRANSPORT_V4 = 0x09e61aea_d214_46e2_9b21_b26b0b2f28c8;
    FWPM_LAYER_OUTBOUND_TRANSPORT_V6 = 0xe1735bde_013f_4655_b351_a49e15762df0;
    FWPM_LAYER_IPFORWARD_V4 = 0xa82acc24_4ee1_4ee1_b465_fd1d25cb10a4;
    FWPM_LAYER_IPFORWARD_V6 = 0x7b964818_19c7_493a_b71f_832c3684d28c;
    FWPM_LAYER_ALE_AUTH_CONNECT_V4 = 0xc38d57d1_05a7_4c33_904f_7fbceee60e82;
    FWPM_LAYER_ALE_AUTH_CONNECT_V6 = 0x4a72393b_319f_44bc_84c3_ba54dcb3b6b4;
    FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4 = 0x5132900d_5e84_4b5f_80e4_01741e81ff10;
    FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6 = 0x49d3ac92_2a6c_4dcf_955f_1c3be009dd99;
    FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4 = 0x4b46bf0a_4523_4e57_aa38_a87987c910d9;
    FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6 = 0x38d87722_ad83_4f11_a91f_df0fb077225b;
    FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4 = 0x191a8a46_0bf8_46cf_b045_4b45dfa6a324;
    FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6 = 0x80c342e3_1e53_4d6f_9b44_03df5aeee154;
    FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4 = 0x70a4196c_835b_4fb0_98e8_075f4d977d46;
    FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6 = 0xf1835363_a6a5_4e62_b180_23db789d8da6;
    FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V4 = 0x28829633_c4f0_4e66_873f_844db2a899c7;
    FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V6 = 0xaf50bec2_c686_429a_884d_b74443e7b0b4;
    FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V4 = 0xfb532136_15cb_440b_937c_1717ca320c40;
    FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V6 = 0xdae640cc_e021_4bee_9eb6_a48b275c8c1d;
    FWPM_CONDITION_IP_LOCAL_ADDRESS = 0xd9ee00de_c1ef_4617_bfe3_ffd8f5a08957;
    FWPM_CONDITION_IP_REMOTE_ADDRESS = 0xb235ae9a_1d64_49b8_a44c_5ff3d9095045;
    FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE = 0x6ec7f6c4_376b_45d7_9e9c_d337cedcd237;
    FWPM_CONDITION_IP_PROTOCOL = 0x3971ef2b_623e_4f9a_8cb1_6e79b806b9a7;
    FWPM_CONDITION_IP_LOCAL_PORT = 0x0c1ba1af_5765_453f_af22_a8f791ac775b;
    FWPM_CONDITION_IP_REMOTE_PORT = 0xc35a604d_d22b_4e1a_91b4_68f674ee674b;
    FWPM_CONDITION_IP_SOURCE_ADDRESS = 0xae96897e_2e94_4bc9_b313_b27ee80e574d;
    FWPM_CONDITION_IP_DESTINATION_ADDRESS = 0x2d79133b_b390_45c6_8699_acaceaafed33;
    FWPM_CONDITION_IP_LOCAL_INTERFACE = 0x4cd62a49_59c3_4969_b7f3_bda5d32890a4;
    FWPM_SUBLAYER_UNIVERSAL = 0xeebecc03_ced4_4380_819a_2734397b2b74;
    FWPM_SUBLAYER_IPSEC_TUNNEL = 0x83f299ed_9ff4_4967_aff4_c309f4dab827;
    FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL = 0xa5082e73_8f71_4559_8a9a_101cea04ef87;
    FWPM_SUBLAYER_IPSEC_SECURITY_REALM = 0x37a57701_5884_4964_92b8_3e704688b0ad;
    FWPM_SUBLAYER_IPSEC_DOSP = 0xe076d572_5d3d_48ef_802b_909eddb098bd;
    FWPM_PROVIDER_IKEEXT = 0x10ad9216_ccde_456c_8b16_e9f04e60a90b;
}

macro_rules! newtype_enum {
    ($(#[$m:meta])* $alias:literal $name:ident { $( $c:ident = $v:expr, $d:literal; )* }) => {
        $(#[$m])*
        #[doc(alias = $alias)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
        pub struct $name(pub u32);
        $(
            #[doc = concat!("`", stringify!($c), "` = ", stringify!($v), ": ", $d, ".")]
            pub const $c: $name = $name($v);
        )*
    };
}

newtype_enum! {
    /// `FWP_IP_VERSION`.
    "FWP_IP_VERSION" FwpIpVersion {
        FWP_IP_VERSION_V4 = 0, "IPv4";
        FWP_IP_VERSION_V6 = 1, "IPv6";
        FWP_IP_VERSION_NONE = 2, "no IP version";
        FWP_IP_VERSION_MAX = 3, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `FWP_DIRECTION`.
    "FWP_DIRECTION" FwpDirection {
        FWP_DIRECTION_OUTBOUND = 0, "outbound";
        FWP_DIRECTION_INBOUND = 1, "inbound";
        FWP_DIRECTION_MAX = 2, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `FWP_MATCH_TYPE`: how a filter condition compares the field with its value.
    "FWP_MATCH_TYPE" FwpMatchType {
        FWP_MATCH_EQUAL = 0, "equal (for an address mask: inside the prefix)";
        FWP_MATCH_GREATER = 1, "greater than";
        FWP_MATCH_LESS = 2, "less than";
        FWP_MATCH_GREATER_OR_EQUAL = 3, "greater than or equal";
        FWP_MATCH_LESS_OR_EQUAL = 4, "less than or equal";
        FWP_MATCH_RANGE = 5, "inside an FWP_RANGE0 (inclusive)";
        FWP_MATCH_FLAGS_ALL_SET = 6, "all flags set (not supported by this emulator)";
        FWP_MATCH_FLAGS_ANY_SET = 7, "any flag set (not supported by this emulator)";
        FWP_MATCH_FLAGS_NONE_SET = 8, "no flag set (not supported by this emulator)";
        FWP_MATCH_EQUAL_CASE_INSENSITIVE = 9, "string comparison (not supported by this emulator)";
        FWP_MATCH_NOT_EQUAL = 10, "not equal (for an address mask: outside the prefix)";
        FWP_MATCH_PREFIX = 11, "string prefix (not supported by this emulator)";
        FWP_MATCH_NOT_PREFIX = 12, "string prefix (not supported by this emulator)";
        FWP_MATCH_TYPE_MAX = 13, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `FWP_ACTION_TYPE` (a `UINT32` of flag bits and a type number).
    "FWP_ACTION_TYPE" FwpActionType {
        FWP_ACTION_BLOCK = 0x1001, "block the traffic (terminating)";
        FWP_ACTION_PERMIT = 0x1002, "permit the traffic (terminating)";
        FWP_ACTION_CALLOUT_TERMINATING = 0x5003, "invoke a callout that always returns permit or block";
        FWP_ACTION_CALLOUT_INSPECTION = 0x6004, "invoke a callout that never returns permit or block";
        FWP_ACTION_CALLOUT_UNKNOWN = 0x4005, "invoke a callout that may return permit or block";
        FWP_ACTION_CONTINUE = 0x2006, "continue with the next filter (non-terminating)";
        FWP_ACTION_NONE = 0x0007, "no action (output only)";
        FWP_ACTION_NONE_NO_MATCH = 0x0008, "no action, no match (output only)";
    }
}

newtype_enum! {
    /// `IPSEC_TRAFFIC_TYPE`.
    "IPSEC_TRAFFIC_TYPE" IpsecTrafficType {
        IPSEC_TRAFFIC_TYPE_TRANSPORT = 0, "transport mode";
        IPSEC_TRAFFIC_TYPE_TUNNEL = 1, "tunnel mode";
        IPSEC_TRAFFIC_TYPE_MAX = 2, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `IPSEC_TRANSFORM_TYPE`.
    "IPSEC_TRANSFORM_TYPE" IpsecTransformType {
        IPSEC_TRANSFORM_AH = 1, "AH";
        IPSEC_TRANSFORM_ESP_AUTH = 2, "ESP with integrity only";
        IPSEC_TRANSFORM_ESP_CIPHER = 3, "ESP with a cipher only";
        IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER = 4, "ESP with integrity and a cipher";
        IPSEC_TRANSFORM_ESP_AUTH_FW = 5, "ESP integrity for firewall traversal";
        IPSEC_TRANSFORM_TYPE_MAX = 6, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `IPSEC_AUTH_TYPE`.
    "IPSEC_AUTH_TYPE" IpsecAuthType {
        IPSEC_AUTH_MD5 = 0, "MD5";
        IPSEC_AUTH_SHA_1 = 1, "SHA-1";
        IPSEC_AUTH_SHA_256 = 2, "SHA-256";
        IPSEC_AUTH_AES_128 = 3, "AES-128 (GMAC)";
        IPSEC_AUTH_AES_192 = 4, "AES-192 (GMAC)";
        IPSEC_AUTH_AES_256 = 5, "AES-256 (GMAC)";
        IPSEC_AUTH_MAX = 6, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `IPSEC_CIPHER_TYPE`.
    "IPSEC_CIPHER_TYPE" IpsecCipherType {
        IPSEC_CIPHER_TYPE_DES = 1, "DES";
        IPSEC_CIPHER_TYPE_3DES = 2, "triple DES";
        IPSEC_CIPHER_TYPE_AES_128 = 3, "AES-128";
        IPSEC_CIPHER_TYPE_AES_192 = 4, "AES-192";
        IPSEC_CIPHER_TYPE_AES_256 = 5, "AES-256";
        IPSEC_CIPHER_TYPE_MAX = 6, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `IPSEC_PFS_GROUP`.
    "IPSEC_PFS_GROUP" IpsecPfsGroup {
        IPSEC_PFS_NONE = 0, "no PFS";
        IPSEC_PFS_1 = 1, "DH group 1";
        IPSEC_PFS_2 = 2, "DH group 2";
        IPSEC_PFS_2048 = 3, "DH group 14";
        IPSEC_PFS_ECP_256 = 4, "ECP 256";
        IPSEC_PFS_ECP_384 = 5, "ECP 384";
        IPSEC_PFS_MM = 6, "same as main mode";
        IPSEC_PFS_24 = 7, "DH group 24";
        IPSEC_PFS_MAX = 8, "enumeration bound (invalid)";
    }
}

newtype_enum! {
    /// `IPSEC_SA_CONTEXT_EVENT_TYPE0`: the kind of an SA-context change notification.
    "IPSEC_SA_CONTEXT_EVENT_TYPE0" IpsecSaContextEventType0 {
        IPSEC_SA_CONTEXT_EVENT_ADD = 1, "an SA context was added";
        IPSEC_SA_CONTEXT_EVENT_DELETE = 2, "an SA context was deleted";
        IPSEC_SA_CONTEXT_EVENT_MAX = 3, "enumeration bound";
        IPSEC_SA_CONTEXT_EVENT_SOFT_EXPIRED_EXT = 0x8000_0001,
            "emulator extension, outside the documented range: an SA of the context reached its soft lifetime (delivered only to subscriptions with IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT)";
    }
}

/// `IPSEC_AUTH_CONFIG_HMAC_MD5_96` (`IPSEC_AUTH_CONFIG`, a `UINT8`).
pub const IPSEC_AUTH_CONFIG_HMAC_MD5_96: u8 = 0;
/// `IPSEC_AUTH_CONFIG_HMAC_SHA_1_96`.
pub const IPSEC_AUTH_CONFIG_HMAC_SHA_1_96: u8 = 1;
/// `IPSEC_AUTH_CONFIG_HMAC_SHA_256_128`.
pub const IPSEC_AUTH_CONFIG_HMAC_SHA_256_128: u8 = 2;
/// `IPSEC_AUTH_CONFIG_GCM_AES_128`.
pub const IPSEC_AUTH_CONFIG_GCM_AES_128: u8 = 3;
/// `IPSEC_AUTH_CONFIG_GCM_AES_192`.
pub const IPSEC_AUTH_CONFIG_GCM_AES_192: u8 = 4;
/// `IPSEC_AUTH_CONFIG_GCM_AES_256`.
pub const IPSEC_AUTH_CONFIG_GCM_AES_256: u8 = 5;
/// `IPSEC_CIPHER_CONFIG_CBC_DES` (`IPSEC_CIPHER_CONFIG`, a `UINT8`).
pub const IPSEC_CIPHER_CONFIG_CBC_DES: u8 = 1;
/// `IPSEC_CIPHER_CONFIG_CBC_3DES`.
pub const IPSEC_CIPHER_CONFIG_CBC_3DES: u8 = 2;
/// `IPSEC_CIPHER_CONFIG_CBC_AES_128`.
pub const IPSEC_CIPHER_CONFIG_CBC_AES_128: u8 = 3;
/// `IPSEC_CIPHER_CONFIG_CBC_AES_192`.
pub const IPSEC_CIPHER_CONFIG_CBC_AES_192: u8 = 4;
/// `IPSEC_CIPHER_CONFIG_CBC_AES_256`.
pub const IPSEC_CIPHER_CONFIG_CBC_AES_256: u8 = 5;
/// `IPSEC_CIPHER_CONFIG_GCM_AES_128`.
pub const IPSEC_CIPHER_CONFIG_GCM_AES_128: u8 = 6;
/// `IPSEC_CIPHER_CONFIG_GCM_AES_192`.
pub const IPSEC_CIPHER_CONFIG_GCM_AES_192: u8 = 7;
/// `IPSEC_CIPHER_CONFIG_GCM_AES_256`.
pub const IPSEC_CIPHER_CONFIG_GCM_AES_256: u8 = 8;

use super::types::{IpsecAuthTransformId0, IpsecCipherTransformId0};

macro_rules! auth_ids {
    ($( $name:ident = ($t:ident, $c:ident); )*) => {$(
        #[doc = concat!("`", stringify!($name), "` = {`", stringify!($t), "`, `", stringify!($c), "`} (`[SDK-FWPMU]`).")]
        pub const $name: IpsecAuthTransformId0 = IpsecAuthTransformId0 { auth_type: $t, auth_config: $c };
    )*};
}
macro_rules! cipher_ids {
    ($( $name:ident = ($t:ident, $c:ident); )*) => {$(
        #[doc = concat!("`", stringify!($name), "` = {`", stringify!($t), "`, `", stringify!($c), "`} (`[SDK-FWPMU]`).")]
        pub const $name: IpsecCipherTransformId0 = IpsecCipherTransformId0 { cipher_type: $t, cipher_config: $c };
    )*};
}

auth_ids! {
    IPSEC_AUTH_TRANSFORM_ID_HMAC_MD5_96 = (IPSEC_AUTH_MD5, IPSEC_AUTH_CONFIG_HMAC_MD5_96);
    IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96 = (IPSEC_AUTH_SHA_1, IPSEC_AUTH_CONFIG_HMAC_SHA_1_96);
    IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128 = (IPSEC_AUTH_SHA_256, IPSEC_AUTH_CONFIG_HMAC_SHA_256_128);
    IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128 = (IPSEC_AUTH_AES_128, IPSEC_AUTH_CONFIG_GCM_AES_128);
    IPSEC_AUTH_TRANSFORM_ID_GCM_AES_192 = (IPSEC_AUTH_AES_192, IPSEC_AUTH_CONFIG_GCM_AES_192);
    IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256 = (IPSEC_AUTH_AES_256, IPSEC_AUTH_CONFIG_GCM_AES_256);
}

cipher_ids! {
    IPSEC_CIPHER_TRANSFORM_ID_CBC_DES = (IPSEC_CIPHER_TYPE_DES, IPSEC_CIPHER_CONFIG_CBC_DES);
    IPSEC_CIPHER_TRANSFORM_ID_CBC_3DES = (IPSEC_CIPHER_TYPE_3DES, IPSEC_CIPHER_CONFIG_CBC_3DES);
    IPSEC_CIPHER_TRANSFORM_ID_AES_128 = (IPSEC_CIPHER_TYPE_AES_128, IPSEC_CIPHER_CONFIG_CBC_AES_128);
    IPSEC_CIPHER_TRANSFORM_ID_AES_192 = (IPSEC_CIPHER_TYPE_AES_192, IPSEC_CIPHER_CONFIG_CBC_AES_192);
    IPSEC_CIPHER_TRANSFORM_ID_AES_256 = (IPSEC_CIPHER_TYPE_AES_256, IPSEC_CIPHER_CONFIG_CBC_AES_256);
    IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128 = (IPSEC_CIPHER_TYPE_AES_128, IPSEC_CIPHER_CONFIG_GCM_AES_128);
    IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_192 = (IPSEC_CIPHER_TYPE_AES_192, IPSEC_CIPHER_CONFIG_GCM_AES_192);
    IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256 = (IPSEC_CIPHER_TYPE_AES_256, IPSEC_CIPHER_CONFIG_GCM_AES_256);
}

/// `FWPM_SESSION_FLAG_DYNAMIC`: the session's objects are deleted when it closes.
pub const FWPM_SESSION_FLAG_DYNAMIC: u32 = 0x0000_0001;
/// `FWPM_SESSION_FLAG_RESERVED`.
pub const FWPM_SESSION_FLAG_RESERVED: u32 = 0x1000_0000;
/// `FWPM_TXN_READ_ONLY`: flag of `FwpmTransactionBegin0`.
pub const FWPM_TXN_READ_ONLY: u32 = 0x1;

/// `FWPM_FILTER_FLAG_NONE`.
pub const FWPM_FILTER_FLAG_NONE: u32 = 0;
/// `FWPM_FILTER_FLAG_PERSISTENT` (accepted; the emulated BFE never restarts).
pub const FWPM_FILTER_FLAG_PERSISTENT: u32 = 0x1;
/// `FWPM_FILTER_FLAG_BOOTTIME` (refused with `FWP_E_INVALID_FLAGS` by this emulator).
pub const FWPM_FILTER_FLAG_BOOTTIME: u32 = 0x2;
/// `FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT` (accepted, no effect).
pub const FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT: u32 = 0x8;
/// `FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED` (only with callout actions).
pub const FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED: u32 = 0x10;
/// `FWPM_FILTER_FLAG_DISABLED` (output only; refused on input).
pub const FWPM_FILTER_FLAG_DISABLED: u32 = 0x20;
/// `FWPM_FILTER_FLAG_INDEXED` (accepted; every filter is indexed here).
pub const FWPM_FILTER_FLAG_INDEXED: u32 = 0x40;
/// `FWPM_SUBLAYER_FLAG_PERSISTENT`.
pub const FWPM_SUBLAYER_FLAG_PERSISTENT: u32 = 0x1;

/// `FWPM_AUTO_WEIGHT_BITS`: the low bits BFE fills in for an automatic weight.
pub const FWPM_AUTO_WEIGHT_BITS: u32 = 60;
/// `FWPM_AUTO_WEIGHT_MAX`.
pub const FWPM_AUTO_WEIGHT_MAX: u64 = u64::MAX >> 4;
/// `FWPM_WEIGHT_RANGE_MAX`: the largest `FWP_UINT8` weight range.
pub const FWPM_WEIGHT_RANGE_MAX: u8 = 0xF;
/// `FWPM_WEIGHT_RANGE_IPSEC`.
pub const FWPM_WEIGHT_RANGE_IPSEC: u8 = 0x0;
/// `FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS`.
pub const FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS: u8 = 0xC;

/// `FWPM_ACTRL_ADD`.
pub const FWPM_ACTRL_ADD: u32 = 0x0001;
/// `FWPM_ACTRL_ADD_LINK`.
pub const FWPM_ACTRL_ADD_LINK: u32 = 0x0002;
/// `FWPM_ACTRL_BEGIN_READ_TXN`.
pub const FWPM_ACTRL_BEGIN_READ_TXN: u32 = 0x0004;
/// `FWPM_ACTRL_BEGIN_WRITE_TXN`.
pub const FWPM_ACTRL_BEGIN_WRITE_TXN: u32 = 0x0008;
/// `FWPM_ACTRL_CLASSIFY`.
pub const FWPM_ACTRL_CLASSIFY: u32 = 0x0010;
/// `FWPM_ACTRL_ENUM`.
pub const FWPM_ACTRL_ENUM: u32 = 0x0020;
/// `FWPM_ACTRL_OPEN`.
pub const FWPM_ACTRL_OPEN: u32 = 0x0040;
/// `FWPM_ACTRL_READ`.
pub const FWPM_ACTRL_READ: u32 = 0x0080;
/// `FWPM_ACTRL_READ_STATS`.
pub const FWPM_ACTRL_READ_STATS: u32 = 0x0100;
/// `FWPM_ACTRL_SUBSCRIBE`.
pub const FWPM_ACTRL_SUBSCRIBE: u32 = 0x0200;
/// `FWPM_ACTRL_WRITE`.
pub const FWPM_ACTRL_WRITE: u32 = 0x0400;
/// `DELETE` (winnt.h standard right), needed by the delete and expire calls.
pub const DELETE: u32 = 0x0001_0000;
/// `FWPM_GENERIC_READ`.
pub const FWPM_GENERIC_READ: u32 = 0x0002_01D4;
/// `FWPM_GENERIC_EXECUTE`.
pub const FWPM_GENERIC_EXECUTE: u32 = 0x0002_0220;
/// `FWPM_GENERIC_WRITE`.
pub const FWPM_GENERIC_WRITE: u32 = 0x0003_040B;
/// `FWPM_GENERIC_ALL`.
pub const FWPM_GENERIC_ALL: u32 = 0x000F_07FF;

/// `RPC_C_AUTHN_NONE`.
pub const RPC_C_AUTHN_NONE: u32 = 0;
/// `RPC_C_AUTHN_WINNT`.
pub const RPC_C_AUTHN_WINNT: u32 = 10;
/// `RPC_C_AUTHN_DEFAULT` (`0xFFFFFFFF`).
pub const RPC_C_AUTHN_DEFAULT: u32 = 0xFFFF_FFFF;

/// `IPPROTO_ICMP`.
pub const IPPROTO_ICMP: u8 = 1;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;
/// `IPPROTO_ESP`.
pub const IPPROTO_ESP: u8 = 50;
/// `IPPROTO_AH`.
pub const IPPROTO_AH: u8 = 51;
/// `IPPROTO_ICMPV6`.
pub const IPPROTO_ICMPV6: u8 = 58;

/// `IPSEC_SA_DETAILS_UPDATE_TRAFFIC` (flag of `IPsecSaContextUpdate0`).
pub const IPSEC_SA_DETAILS_UPDATE_TRAFFIC: u64 = 0x01;
/// `IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION`.
pub const IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION: u64 = 0x02;
/// `IPSEC_SA_BUNDLE_UPDATE_FLAGS`.
pub const IPSEC_SA_BUNDLE_UPDATE_FLAGS: u64 = 0x04;
/// `IPSEC_SA_BUNDLE_UPDATE_NAP_CONTEXT`.
pub const IPSEC_SA_BUNDLE_UPDATE_NAP_CONTEXT: u64 = 0x08;
/// `IPSEC_SA_BUNDLE_UPDATE_KEY_MODULE_STATE`.
pub const IPSEC_SA_BUNDLE_UPDATE_KEY_MODULE_STATE: u64 = 0x10;
/// `IPSEC_SA_BUNDLE_UPDATE_PEER_V4_PRIVATE_ADDRESS`.
pub const IPSEC_SA_BUNDLE_UPDATE_PEER_V4_PRIVATE_ADDRESS: u64 = 0x20;
/// `IPSEC_SA_BUNDLE_UPDATE_MM_SA_ID`.
pub const IPSEC_SA_BUNDLE_UPDATE_MM_SA_ID: u64 = 0x40;

/// `IPSEC_SA_BUNDLE_FLAG_ASSUME_UDP_CONTEXT_OUTBOUND`.
pub const IPSEC_SA_BUNDLE_FLAG_ASSUME_UDP_CONTEXT_OUTBOUND: u32 = 0x0000_0800;
/// `IPSEC_SA_BUNDLE_FLAG_GUARANTEE_ENCRYPTION`.
pub const IPSEC_SA_BUNDLE_FLAG_GUARANTEE_ENCRYPTION: u32 = 0x0000_0008;
/// Emulator extension flag of `IPSEC_SA_BUNDLE0/1.flags` (not a Windows value; WFP has no
/// way to ask for extended sequence numbers): every SA of the bundle uses 64-bit ESN
/// (RFC 4303 §2.2.1). Read when the bundle is added (`IPsecSaContextAddInbound0/Outbound0`);
/// changing it later with `IPSEC_SA_BUNDLE_UPDATE_FLAGS` does not change the SAs.
pub const IPSEC_SA_BUNDLE_FLAG_ESN_EXT: u32 = 0x8000_0000;

/// Emulator extension flag of `IPSEC_SA_CONTEXT_SUBSCRIPTION0.flags` (no flag values are
/// documented; every other bit is refused with `FWP_E_INVALID_FLAGS`): also deliver
/// [`IPSEC_SA_CONTEXT_EVENT_SOFT_EXPIRED_EXT`] notifications.
pub const IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT: u32 = 0x8000_0000;

/// `NL_ADDRESS_TYPE`: the kind of a local address (`[WS]` WinSock, `[MW]` nldef.h). Condition
/// values of `FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE` carry it as an `FWP_UINT8`.
#[doc(alias = "NL_ADDRESS_TYPE")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(u8)]
pub enum NlAddressType {
    /// `NlatUnspecified`.
    #[doc(alias = "NlatUnspecified")]
    #[default]
    Unspecified = 0,
    /// `NlatUnicast`.
    #[doc(alias = "NlatUnicast")]
    Unicast = 1,
    /// `NlatAnycast`.
    #[doc(alias = "NlatAnycast")]
    Anycast = 2,
    /// `NlatMulticast`.
    #[doc(alias = "NlatMulticast")]
    Multicast = 3,
    /// `NlatBroadcast`.
    #[doc(alias = "NlatBroadcast")]
    Broadcast = 4,
    /// `NlatInvalid`.
    #[doc(alias = "NlatInvalid")]
    Invalid = 5,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn guid_canonical_form() {
        assert_eq!(
            FWPM_LAYER_INBOUND_TRANSPORT_V4.to_string(),
            "5926dfc8-e3cf-4426-a283-dc393f5d0f9d"
        );
        assert_eq!(
            format!("{FWPM_CONDITION_IP_LOCAL_PORT:?}"),
            "{0c1ba1af-5765-453f-af22-a8f791ac775b}"
        );
        assert_eq!(
            guid_name(FWPM_SUBLAYER_UNIVERSAL),
            Some("FWPM_SUBLAYER_UNIVERSAL")
        );
        assert_eq!(guid_name(Guid(7)), None);
    }

    #[test]
    fn values_match_the_abi_reference() {
        assert_eq!(FWP_ACTION_CALLOUT_TERMINATING.0, 0x5003);
        assert_eq!(FWPM_GENERIC_ALL & FWPM_ACTRL_OPEN, FWPM_ACTRL_OPEN);
        assert_eq!(FWPM_GENERIC_ALL & DELETE, DELETE);
        assert_eq!(IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128.cipher_config, 6);
        assert_eq!(
            IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256.auth_type,
            IPSEC_AUTH_AES_256
        );
        assert_eq!(FWPM_AUTO_WEIGHT_MAX, 0x0FFF_FFFF_FFFF_FFFF);
        assert_eq!(NlAddressType::Unicast as u8, 1);
    }
}
