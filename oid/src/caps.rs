//! Capability answers and offload settings: `NDIS_OFFLOAD` with `NDIS_IPSEC_OFFLOAD_V1`/`V2`
//! (`OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES`, `OID_TCP_OFFLOAD_CURRENT_CONFIG`, the
//! `NDIS_STATUS_TASK_OFFLOAD_*` indications), the NDIS 5 `OID_TCP_TASK_OFFLOAD` task chain
//! carrying `NDIS_TASK_IPSEC`, and `NDIS_OFFLOAD_PARAMETERS` (`OID_TCP_OFFLOAD_PARAMETERS`).
//! Layouts: ndis-wfp-abi.md §3.11-§3.14.
//!
//! Parsers are strict: a capability field outside its documented range (a 2-bit field above 1,
//! a `BOOLEAN` above 1, an unknown mask bit) is `NDIS_STATUS_INVALID_DATA`. Sub-structures this
//! crate treats as opaque (checksum, LSO, RSC, GRE) are emitted as zero and not carried.
//!
//! # Errors
//!
//! | condition | status |
//! |---|---|
//! | buffer shorter than the fixed part / the header's `Size` | `INVALID_LENGTH`, bytes_needed |
//! | wrong `Header.Type`, revision 0, `Size` below the revision's size | `INVALID_DATA` |
//! | field value out of range (see above) | `INVALID_DATA` |
//! | NDIS 5: `Version` ≠ 1, `Size` wrong, unknown `NDIS_TASK`/`NDIS_ENCAPSULATION` | `INVALID_DATA` |
//! | NDIS 5: a task entry outside the buffer, or `OffsetNextTask` not past the entry | `INVALID_DATA` |

use crate::abi::*;
use crate::algo::{ConfAlgorithm, IntegrityAlgorithm};
use crate::error::{OidError, read_at, saturate, slice_at, write_at};

fn bit(word: u32, n: u32) -> bool {
    word.checked_shr(n).unwrap_or(0) & 1 == 1
}

fn set_bit(b: bool, n: u32) -> u32 {
    u32::from(b).checked_shl(n).unwrap_or(0)
}

/// Read a 2-bit `NDIS_OFFLOAD_SUPPORTED` field.
fn field2(word: u32, n: u32) -> Result<bool, OidError> {
    match word.checked_shr(n).unwrap_or(0) & 3 {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(OidError::invalid_data(
            "2-bit capability field above NDIS_OFFLOAD_SUPPORTED",
        )),
    }
}

fn flag(v: u32) -> Result<bool, OidError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(OidError::invalid_data("capability flag is neither 0 nor 1")),
    }
}

fn boolean(v: u8) -> Result<bool, OidError> {
    flag(u32::from(v))
}

/// v1 AH capabilities (`NDIS_IPSEC_OFFLOAD_V1.IPv4AH`, `NDIS_TASK_IPSEC.V4AH`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecV1AhCapabilities {
    /// HMAC-MD5.
    pub md5: bool,
    /// HMAC-SHA-1.
    pub sha1: bool,
    /// Transport mode.
    pub transport: bool,
    /// Tunnel mode.
    pub tunnel: bool,
    /// Send path.
    pub send: bool,
    /// Receive path.
    pub receive: bool,
}

/// v1 ESP capabilities (`NDIS_IPSEC_OFFLOAD_V1.IPv4ESP`, `NDIS_TASK_IPSEC.V4ESP`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecV1EspCapabilities {
    /// DES.
    pub des: bool,
    /// 3DES.
    pub triple_des: bool,
    /// NULL encryption.
    pub null_esp: bool,
    /// Transport mode.
    pub transport: bool,
    /// Tunnel mode.
    pub tunnel: bool,
    /// Send path.
    pub send: bool,
    /// Receive path.
    pub receive: bool,
}

/// Typed `NDIS_IPSEC_OFFLOAD_V1` (also the content of the NDIS 5 `NDIS_TASK_IPSEC`).
#[doc(alias = "NDIS_IPSEC_OFFLOAD_V1")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecV1Capabilities {
    /// `Supported.Encapsulation`: `NDIS_ENCAPSULATION_*` flags.
    pub encapsulation: u32,
    /// `Supported.AhEspCombined`.
    pub ah_esp_combined: bool,
    /// `Supported.TransportTunnelCombined`.
    pub transport_tunnel_combined: bool,
    /// `Supported.IPv4Options`.
    pub ipv4_options: bool,
    /// `Supported.Flags`: `IPSEC_*_UDPESP_ENCAPTYPE_*` bits.
    pub udp_esp_flags: u32,
    /// AH.
    pub ah: IpsecV1AhCapabilities,
    /// ESP.
    pub esp: IpsecV1EspCapabilities,
}

const KNOWN_ENCAPSULATION: u32 = 0x1F;
const KNOWN_UDPESP_FLAGS: u32 = 0xFF;

impl IpsecV1Capabilities {
    /// The ABI struct.
    pub fn to_abi(&self) -> NDIS_IPSEC_OFFLOAD_V1 {
        let ah = &self.ah;
        let esp = &self.esp;
        NDIS_IPSEC_OFFLOAD_V1 {
            Supported: NDIS_IPSEC_OFFLOAD_V1_Supported {
                Encapsulation: self.encapsulation,
                AhEspCombined: u32::from(self.ah_esp_combined),
                TransportTunnelCombined: u32::from(self.transport_tunnel_combined),
                IPv4Options: u32::from(self.ipv4_options),
                Flags: self.udp_esp_flags,
            },
            IPv4AH: set_bit(ah.md5, 0)
                | set_bit(ah.sha1, 2)
                | set_bit(ah.transport, 4)
                | set_bit(ah.tunnel, 6)
                | set_bit(ah.send, 8)
                | set_bit(ah.receive, 10),
            IPv4ESP: set_bit(esp.des, 0)
                | set_bit(esp.triple_des, 4)
                | set_bit(esp.null_esp, 6)
                | set_bit(esp.transport, 8)
                | set_bit(esp.tunnel, 10)
                | set_bit(esp.send, 12)
                | set_bit(esp.receive, 14),
        }
    }

    /// Validate and convert the ABI struct.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` for a value out of range or an unknown bit.
    pub fn from_abi(v: &NDIS_IPSEC_OFFLOAD_V1) -> Result<Self, OidError> {
        if v.Supported.Encapsulation & !KNOWN_ENCAPSULATION != 0 {
            return Err(OidError::invalid_data("unknown NDIS_ENCAPSULATION_* bit"));
        }
        if v.Supported.Flags & !KNOWN_UDPESP_FLAGS != 0 {
            return Err(OidError::invalid_data("unknown UDP-ESP capability bit"));
        }
        if v.IPv4AH & !0xFFF != 0 || v.IPv4ESP & !0xFFFF != 0 {
            return Err(OidError::invalid_data("unknown IPv4AH/IPv4ESP bits"));
        }
        // The ESP `Reserved` 2-bit field (bits 2-3) is ignored, as reserved fields are.
        Ok(IpsecV1Capabilities {
            encapsulation: v.Supported.Encapsulation,
            ah_esp_combined: flag(v.Supported.AhEspCombined)?,
            transport_tunnel_combined: flag(v.Supported.TransportTunnelCombined)?,
            ipv4_options: flag(v.Supported.IPv4Options)?,
            udp_esp_flags: v.Supported.Flags,
            ah: IpsecV1AhCapabilities {
                md5: field2(v.IPv4AH, 0)?,
                sha1: field2(v.IPv4AH, 2)?,
                transport: field2(v.IPv4AH, 4)?,
                tunnel: field2(v.IPv4AH, 6)?,
                send: field2(v.IPv4AH, 8)?,
                receive: field2(v.IPv4AH, 10)?,
            },
            esp: IpsecV1EspCapabilities {
                des: field2(v.IPv4ESP, 0)?,
                triple_des: field2(v.IPv4ESP, 4)?,
                null_esp: field2(v.IPv4ESP, 6)?,
                transport: field2(v.IPv4ESP, 8)?,
                tunnel: field2(v.IPv4ESP, 10)?,
                send: field2(v.IPv4ESP, 12)?,
                receive: field2(v.IPv4ESP, 14)?,
            },
        })
    }

    /// The NDIS 5 `NDIS_TASK_IPSEC` (which has no encapsulation or UDP-ESP fields: those two
    /// are not carried).
    pub fn to_task_ipsec(&self) -> NDIS_TASK_IPSEC {
        let ah = &self.ah;
        let esp = &self.esp;
        NDIS_TASK_IPSEC {
            Supported: NDIS_TASK_IPSEC_Supported {
                AH_ESP_COMBINED: u32::from(self.ah_esp_combined),
                TRANSPORT_TUNNEL_COMBINED: u32::from(self.transport_tunnel_combined),
                V4_OPTIONS: u32::from(self.ipv4_options),
                RESERVED: 0,
            },
            V4AH: set_bit(ah.md5, 0)
                | set_bit(ah.sha1, 1)
                | set_bit(ah.transport, 2)
                | set_bit(ah.tunnel, 3)
                | set_bit(ah.send, 4)
                | set_bit(ah.receive, 5),
            V4ESP: set_bit(esp.des, 0)
                | set_bit(esp.triple_des, 2)
                | set_bit(esp.null_esp, 3)
                | set_bit(esp.transport, 4)
                | set_bit(esp.tunnel, 5)
                | set_bit(esp.send, 6)
                | set_bit(esp.receive, 7),
        }
    }

    /// Convert an NDIS 5 `NDIS_TASK_IPSEC` (`encapsulation` and `udp_esp_flags` come out 0).
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` for a flag above 1 or an unknown bit.
    pub fn from_task_ipsec(t: &NDIS_TASK_IPSEC) -> Result<Self, OidError> {
        if t.V4AH & !0x3F != 0 || t.V4ESP & !0xFF != 0 {
            return Err(OidError::invalid_data("unknown V4AH/V4ESP bits"));
        }
        Ok(IpsecV1Capabilities {
            encapsulation: 0,
            ah_esp_combined: flag(t.Supported.AH_ESP_COMBINED)?,
            transport_tunnel_combined: flag(t.Supported.TRANSPORT_TUNNEL_COMBINED)?,
            ipv4_options: flag(t.Supported.V4_OPTIONS)?,
            udp_esp_flags: 0,
            ah: IpsecV1AhCapabilities {
                md5: bit(t.V4AH, 0),
                sha1: bit(t.V4AH, 1),
                transport: bit(t.V4AH, 2),
                tunnel: bit(t.V4AH, 3),
                send: bit(t.V4AH, 4),
                receive: bit(t.V4AH, 5),
            },
            esp: IpsecV1EspCapabilities {
                des: bit(t.V4ESP, 0),
                triple_des: bit(t.V4ESP, 2),
                null_esp: bit(t.V4ESP, 3),
                transport: bit(t.V4ESP, 4),
                tunnel: bit(t.V4ESP, 5),
                send: bit(t.V4ESP, 6),
                receive: bit(t.V4ESP, 7),
            },
        })
    }
}

/// Typed `NDIS_IPSEC_OFFLOAD_V2`.
#[doc(alias = "NDIS_IPSEC_OFFLOAD_V2")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecV2Capabilities {
    /// `NDIS_ENCAPSULATION_*` flags.
    pub encapsulation: u32,
    /// `IPv6Supported`.
    pub ipv6: bool,
    /// `IPv4Options`.
    pub ipv4_options: bool,
    /// `IPv6NonIPsecExtensionHeaders`.
    pub ipv6_non_ipsec_extension_headers: bool,
    /// `Ah`.
    pub ah: bool,
    /// `Esp`.
    pub esp: bool,
    /// `AhEspCombined`.
    pub ah_esp_combined: bool,
    /// `Transport`.
    pub transport: bool,
    /// `Tunnel` (must be true for the NIC to be used at all).
    pub tunnel: bool,
    /// `TransportTunnelCombined`.
    pub transport_tunnel_combined: bool,
    /// `LsoSupported`.
    pub lso: bool,
    /// `ExtendedSequenceNumbers`.
    pub extended_sequence_numbers: bool,
    /// `UdpEsp`: mask of `IPSEC_OFFLOAD_V2_*UDP_ESP_ENCAPSULATION*` values.
    pub udp_esp: u32,
    /// `AuthenticationAlgorithms`: mask of `IPSEC_OFFLOAD_V2_AUTHENTICATION_*`.
    pub authentication_algorithms: u32,
    /// `EncryptionAlgorithms`: mask of `IPSEC_OFFLOAD_V2_ENCRYPTION_*`.
    pub encryption_algorithms: u32,
    /// `SaOffloadCapacity`: SA bundles the NIC holds.
    pub sa_offload_capacity: u32,
}

impl IpsecV2Capabilities {
    /// Whether the mask advertises `a` (`None` is always "supported").
    pub fn supports_integrity(&self, a: IntegrityAlgorithm) -> bool {
        a == IntegrityAlgorithm::None || self.authentication_algorithms & a.v2_identifier() != 0
    }

    /// Whether the mask advertises `a`.
    pub fn supports_cipher(&self, a: ConfAlgorithm) -> bool {
        self.encryption_algorithms & a.v2_identifier() != 0
    }

    /// The ABI struct.
    pub fn to_abi(&self) -> NDIS_IPSEC_OFFLOAD_V2 {
        NDIS_IPSEC_OFFLOAD_V2 {
            Encapsulation: self.encapsulation,
            IPv6Supported: u8::from(self.ipv6),
            IPv4Options: u8::from(self.ipv4_options),
            IPv6NonIPsecExtensionHeaders: u8::from(self.ipv6_non_ipsec_extension_headers),
            Ah: u8::from(self.ah),
            Esp: u8::from(self.esp),
            AhEspCombined: u8::from(self.ah_esp_combined),
            Transport: u8::from(self.transport),
            Tunnel: u8::from(self.tunnel),
            TransportTunnelCombined: u8::from(self.transport_tunnel_combined),
            LsoSupported: u8::from(self.lso),
            ExtendedSequenceNumbers: u8::from(self.extended_sequence_numbers),
            _pad0: 0,
            UdpEsp: self.udp_esp,
            AuthenticationAlgorithms: self.authentication_algorithms,
            EncryptionAlgorithms: self.encryption_algorithms,
            SaOffloadCapacity: self.sa_offload_capacity,
        }
    }

    /// Validate and convert the ABI struct.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` for a `BOOLEAN` above 1 or an unknown mask bit.
    pub fn from_abi(v: &NDIS_IPSEC_OFFLOAD_V2) -> Result<Self, OidError> {
        if v.Encapsulation & !KNOWN_ENCAPSULATION != 0
            || v.UdpEsp & !0xF != 0
            || v.AuthenticationAlgorithms & !0x3F != 0
            || v.EncryptionAlgorithms & !0x1FF != 0
        {
            return Err(OidError::invalid_data(
                "unknown bit in an NDIS_IPSEC_OFFLOAD_V2 mask",
            ));
        }
        Ok(IpsecV2Capabilities {
            encapsulation: v.Encapsulation,
            ipv6: boolean(v.IPv6Supported)?,
            ipv4_options: boolean(v.IPv4Options)?,
            ipv6_non_ipsec_extension_headers: boolean(v.IPv6NonIPsecExtensionHeaders)?,
            ah: boolean(v.Ah)?,
            esp: boolean(v.Esp)?,
            ah_esp_combined: boolean(v.AhEspCombined)?,
            transport: boolean(v.Transport)?,
            tunnel: boolean(v.Tunnel)?,
            transport_tunnel_combined: boolean(v.TransportTunnelCombined)?,
            lso: boolean(v.LsoSupported)?,
            extended_sequence_numbers: boolean(v.ExtendedSequenceNumbers)?,
            udp_esp: v.UdpEsp,
            authentication_algorithms: v.AuthenticationAlgorithms,
            encryption_algorithms: v.EncryptionAlgorithms,
            sa_offload_capacity: v.SaOffloadCapacity,
        })
    }
}

/// Typed `NDIS_OFFLOAD`: the IPsec parts of a capability answer or indication.
///
/// Emitted as revision 1 (112 bytes) without v2 capabilities and revision 3 (156 bytes) with
/// them.
#[doc(alias = "NDIS_OFFLOAD")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OffloadCapabilities {
    /// `Flags` (`NDIS_OFFLOAD_FLAGS_*`, `IPSEC_OFFLOAD_V2_AND_*_CHECKSUM_COEXISTENCE`).
    pub flags: u32,
    /// `IPsecV1`.
    pub ipsec_v1: IpsecV1Capabilities,
    /// `IPsecV2` (revision 2 and later).
    pub ipsec_v2: Option<IpsecV2Capabilities>,
}

impl OffloadCapabilities {
    /// The answer's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (revision, size) = match self.ipsec_v2 {
            Some(_) => (NDIS_OFFLOAD_REVISION_3, NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3),
            None => (NDIS_OFFLOAD_REVISION_1, NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_1),
        };
        let o = NDIS_OFFLOAD {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_OFFLOAD,
                Revision: revision,
                Size: size,
            },
            IPsecV1: self.ipsec_v1.to_abi(),
            Flags: self.flags,
            IPsecV2: self.ipsec_v2.map(|v| v.to_abi()).unwrap_or_default(),
            ..NDIS_OFFLOAD::default()
        };
        let mut bytes = bytemuck::bytes_of(&o).to_vec();
        bytes.truncate(usize::from(size));
        bytes
    }

    /// Parse an `NDIS_OFFLOAD` (any revision ≥ 1; revisions above 3 are read as 3).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let min = usize::from(NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_1);
        let header: NDIS_OBJECT_HEADER = read_at(buf, 0).ok_or(OidError::invalid_length(
            min,
            "buffer shorter than NDIS_OFFLOAD",
        ))?;
        if header.Type != NDIS_OBJECT_TYPE_OFFLOAD {
            return Err(OidError::invalid_data(
                "NDIS_OFFLOAD header type is not NDIS_OBJECT_TYPE_OFFLOAD",
            ));
        }
        let revision_size = match header.Revision {
            0 => return Err(OidError::invalid_data("NDIS_OFFLOAD revision 0")),
            NDIS_OFFLOAD_REVISION_1 => NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_1,
            NDIS_OFFLOAD_REVISION_2 => NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_2,
            _ => NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3,
        };
        if header.Size < revision_size {
            return Err(OidError::invalid_data(
                "NDIS_OFFLOAD Size below its revision's size",
            ));
        }
        let size = usize::from(header.Size);
        if buf.len() < size {
            return Err(OidError::invalid_length(
                size,
                "buffer shorter than NDIS_OFFLOAD.Size",
            ));
        }
        let mut full = [0u8; size_of::<NDIS_OFFLOAD>()];
        let avail = size.min(full.len());
        if let (Some(dst), Some(src)) = (full.get_mut(..avail), buf.get(..avail)) {
            dst.copy_from_slice(src);
        }
        let o: NDIS_OFFLOAD = bytemuck::pod_read_unaligned(&full);
        let ipsec_v2 = if header.Revision >= NDIS_OFFLOAD_REVISION_2 {
            Some(IpsecV2Capabilities::from_abi(&o.IPsecV2)?)
        } else {
            None
        };
        Ok(OffloadCapabilities {
            flags: o.Flags,
            ipsec_v1: IpsecV1Capabilities::from_abi(&o.IPsecV1)?,
            ipsec_v2,
        })
    }
}

/// An `NDIS_OFFLOAD_PARAMETERS_IPSECV1_*` / `_IPSECV2_*` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpsecOffloadSetting {
    /// `NDIS_OFFLOAD_PARAMETERS_NO_CHANGE` (0).
    #[default]
    NoChange,
    /// `_DISABLED` (1).
    Disabled,
    /// `_AH_ENABLED` (2).
    AhEnabled,
    /// `_ESP_ENABLED` (3).
    EspEnabled,
    /// `_AH_AND_ESP_ENABLED` (4).
    AhAndEspEnabled,
}

impl IpsecOffloadSetting {
    /// The `UCHAR` value (the same for v1 and v2).
    pub fn value(self) -> u8 {
        match self {
            Self::NoChange => NDIS_OFFLOAD_PARAMETERS_NO_CHANGE,
            Self::Disabled => NDIS_OFFLOAD_PARAMETERS_IPSECV1_DISABLED,
            Self::AhEnabled => NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_ENABLED,
            Self::EspEnabled => NDIS_OFFLOAD_PARAMETERS_IPSECV1_ESP_ENABLED,
            Self::AhAndEspEnabled => NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_AND_ESP_ENABLED,
        }
    }

    /// Parse a `UCHAR` value.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` above 4.
    pub fn from_value(v: u8) -> Result<Self, OidError> {
        Ok(match v {
            0 => Self::NoChange,
            1 => Self::Disabled,
            2 => Self::AhEnabled,
            3 => Self::EspEnabled,
            4 => Self::AhAndEspEnabled,
            _ => return Err(OidError::invalid_data("unknown IPsec offload setting")),
        })
    }
}

/// The IPsec v2 settings of `NDIS_OFFLOAD_PARAMETERS` (revision 2 and later).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecV2Settings {
    /// `IPsecV2`: IPv4 and IPv6.
    pub all: IpsecOffloadSetting,
    /// `IPsecV2IPv4`: IPv4 only.
    pub ipv4: IpsecOffloadSetting,
}

/// Typed `NDIS_OFFLOAD_PARAMETERS` (set with `OID_TCP_OFFLOAD_PARAMETERS`): the IPsec settings.
///
/// Emitted as a full 28-byte struct, revision 1 (Size 20) without v2 settings and revision 2
/// (Size 22) with them; the non-IPsec settings are `NO_CHANGE`.
#[doc(alias = "NDIS_OFFLOAD_PARAMETERS")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OffloadParameters {
    /// `IPsecV1`.
    pub ipsec_v1: IpsecOffloadSetting,
    /// `Flags`.
    pub flags: u32,
    /// `IPsecV2` / `IPsecV2IPv4` (revision 2 and later).
    pub ipsec_v2: Option<IpsecV2Settings>,
}

impl OffloadParameters {
    /// The information buffer.
    pub fn to_bytes(&self) -> [u8; 28] {
        let (revision, size) = match self.ipsec_v2 {
            Some(_) => (
                NDIS_OFFLOAD_PARAMETERS_REVISION_2,
                NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_2,
            ),
            None => (
                NDIS_OFFLOAD_PARAMETERS_REVISION_1,
                NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1,
            ),
        };
        let v2 = self.ipsec_v2.unwrap_or_default();
        bytemuck::cast(NDIS_OFFLOAD_PARAMETERS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: revision,
                Size: size,
            },
            IPsecV1: self.ipsec_v1.value(),
            Flags: self.flags,
            IPsecV2: v2.all.value(),
            IPsecV2IPv4: v2.ipv4.value(),
            ..NDIS_OFFLOAD_PARAMETERS::default()
        })
    }

    /// Parse the information buffer.
    ///
    /// # Errors
    /// `INVALID_LENGTH` (bytes_needed 20, or the header's `Size`) for a short buffer;
    /// `INVALID_DATA` for a wrong header or an unknown setting value.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let min = usize::from(NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1);
        if buf.len() < min {
            return Err(OidError::invalid_length(
                min,
                "buffer shorter than NDIS_OFFLOAD_PARAMETERS",
            ));
        }
        let header: NDIS_OBJECT_HEADER = read_at(buf, 0).ok_or(OidError::invalid_length(
            min,
            "buffer shorter than a header",
        ))?;
        if header.Type != NDIS_OBJECT_TYPE_DEFAULT {
            return Err(OidError::invalid_data(
                "NDIS_OFFLOAD_PARAMETERS type is not NDIS_OBJECT_TYPE_DEFAULT",
            ));
        }
        let revision_size = match header.Revision {
            0 => return Err(OidError::invalid_data("NDIS_OFFLOAD_PARAMETERS revision 0")),
            NDIS_OFFLOAD_PARAMETERS_REVISION_1 => NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1,
            NDIS_OFFLOAD_PARAMETERS_REVISION_2 => NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_2,
            _ => NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_3,
        };
        if header.Size < revision_size {
            return Err(OidError::invalid_data(
                "NDIS_OFFLOAD_PARAMETERS Size below its revision's size",
            ));
        }
        let size = usize::from(header.Size);
        if buf.len() < size {
            return Err(OidError::invalid_length(
                size,
                "buffer shorter than NDIS_OFFLOAD_PARAMETERS.Size",
            ));
        }
        let mut full = [0u8; size_of::<NDIS_OFFLOAD_PARAMETERS>()];
        let avail = size.min(full.len());
        if let (Some(dst), Some(src)) = (full.get_mut(..avail), buf.get(..avail)) {
            dst.copy_from_slice(src);
        }
        let p: NDIS_OFFLOAD_PARAMETERS = bytemuck::pod_read_unaligned(&full);
        let ipsec_v2 = if header.Revision >= NDIS_OFFLOAD_PARAMETERS_REVISION_2 {
            Some(IpsecV2Settings {
                all: IpsecOffloadSetting::from_value(p.IPsecV2)?,
                ipv4: IpsecOffloadSetting::from_value(p.IPsecV2IPv4)?,
            })
        } else {
            None
        };
        Ok(OffloadParameters {
            ipsec_v1: IpsecOffloadSetting::from_value(p.IPsecV1)?,
            flags: p.Flags,
            ipsec_v2,
        })
    }
}

/// `NDIS_TASK` values this crate knows.
#[doc(alias = "NDIS_TASK")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NdisTask {
    /// `TcpIpChecksumNdisTask`.
    TcpIpChecksum,
    /// `IpSecNdisTask`: the task buffer is an `NDIS_TASK_IPSEC`.
    IpSec,
    /// `TcpLargeSendNdisTask`.
    TcpLargeSend,
}

impl NdisTask {
    /// The C value.
    pub fn value(self) -> i32 {
        match self {
            Self::TcpIpChecksum => TcpIpChecksumNdisTask,
            Self::IpSec => IpSecNdisTask,
            Self::TcpLargeSend => TcpLargeSendNdisTask,
        }
    }

    /// Parse a C value (`MaxNdisTask` and unknown values are `None`).
    pub fn from_value(v: i32) -> Option<Self> {
        [Self::TcpIpChecksum, Self::IpSec, Self::TcpLargeSend]
            .into_iter()
            .find(|t| t.value() == v)
    }
}

/// `NDIS_ENCAPSULATION` values.
#[doc(alias = "NDIS_ENCAPSULATION")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NdisEncapsulation {
    /// `UNSPECIFIED_Encapsulation`.
    #[default]
    Unspecified,
    /// `NULL_Encapsulation`.
    Null,
    /// `IEEE_802_3_Encapsulation` (Ethernet).
    Ieee8023,
    /// `IEEE_802_5_Encapsulation`.
    Ieee8025,
    /// `LLC_SNAP_ROUTED_Encapsulation`.
    LlcSnapRouted,
    /// `LLC_SNAP_BRIDGED_Encapsulation`.
    LlcSnapBridged,
}

impl NdisEncapsulation {
    const ALL: [NdisEncapsulation; 6] = [
        Self::Unspecified,
        Self::Null,
        Self::Ieee8023,
        Self::Ieee8025,
        Self::LlcSnapRouted,
        Self::LlcSnapBridged,
    ];

    /// The C value.
    pub fn value(self) -> i32 {
        match self {
            Self::Unspecified => UNSPECIFIED_Encapsulation,
            Self::Null => NULL_Encapsulation,
            Self::Ieee8023 => IEEE_802_3_Encapsulation,
            Self::Ieee8025 => IEEE_802_5_Encapsulation,
            Self::LlcSnapRouted => LLC_SNAP_ROUTED_Encapsulation,
            Self::LlcSnapBridged => LLC_SNAP_BRIDGED_Encapsulation,
        }
    }

    /// Parse a C value.
    pub fn from_value(v: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.value() == v)
    }
}

/// Typed `NDIS_ENCAPSULATION_FORMAT`.
#[doc(alias = "NDIS_ENCAPSULATION_FORMAT")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EncapsulationFormat {
    /// `Encapsulation`.
    pub encapsulation: NdisEncapsulation,
    /// `Flags.FixedHeaderSize`.
    pub fixed_header_size: bool,
    /// `EncapsulationHeaderSize`.
    pub header_size: u32,
}

/// One `NDIS_TASK_OFFLOAD` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskOffloadEntry {
    /// `Task`.
    pub task: NdisTask,
    /// The `TaskBufferLength` bytes of `TaskBuffer`.
    pub buffer: Vec<u8>,
}

/// The NDIS 5 `OID_TCP_TASK_OFFLOAD` buffer: `NDIS_TASK_OFFLOAD_HEADER` followed by a chain of
/// `NDIS_TASK_OFFLOAD` entries.
///
/// `OffsetFirstTask` is relative to the start of the header; `OffsetNextTask` to the start of
/// its entry (0 = last). [`Self::to_bytes`] places the first entry right after the header and
/// each entry at a 4-byte-aligned offset after the previous one's task buffer.
#[doc(alias = "NDIS_TASK_OFFLOAD_HEADER")]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TaskOffloadList {
    /// `EncapsulationFormat`.
    pub encapsulation: EncapsulationFormat,
    /// The chain, in order.
    pub tasks: Vec<TaskOffloadEntry>,
}

const TASK_BUFFER_OFFSET: usize = 20;

impl TaskOffloadList {
    /// A list whose only task is `IpSecNdisTask` carrying `caps`.
    pub fn with_ipsec(encapsulation: EncapsulationFormat, caps: &IpsecV1Capabilities) -> Self {
        TaskOffloadList {
            encapsulation,
            tasks: vec![TaskOffloadEntry {
                task: NdisTask::IpSec,
                buffer: bytemuck::bytes_of(&caps.to_task_ipsec()).to_vec(),
            }],
        }
    }

    /// The IPsec capabilities of the first `IpSecNdisTask` entry, if any.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` when its task buffer is shorter than `NDIS_TASK_IPSEC` or
    /// holds out-of-range values.
    pub fn ipsec(&self) -> Option<Result<IpsecV1Capabilities, OidError>> {
        let entry = self.tasks.iter().find(|t| t.task == NdisTask::IpSec)?;
        Some(
            read_at::<NDIS_TASK_IPSEC>(&entry.buffer, 0)
                .ok_or(OidError::invalid_data(
                    "IpSecNdisTask buffer shorter than NDIS_TASK_IPSEC",
                ))
                .and_then(|t| IpsecV1Capabilities::from_task_ipsec(&t)),
        )
    }

    fn entry_len(buffer_len: usize) -> usize {
        TASK_BUFFER_OFFSET
            .saturating_add(buffer_len)
            .saturating_add(3)
            .max(size_of::<NDIS_TASK_OFFLOAD>())
            & !3
    }

    /// The buffer's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header_len = size_of::<NDIS_TASK_OFFLOAD_HEADER>();
        let total = self.tasks.iter().fold(header_len, |acc, t| {
            acc.saturating_add(Self::entry_len(t.buffer.len()))
        });
        let mut out = vec![0u8; total];
        let enc = &self.encapsulation;
        let header = NDIS_TASK_OFFLOAD_HEADER {
            Version: NDIS_TASK_OFFLOAD_VERSION,
            Size: saturate(header_len),
            Reserved: 0,
            OffsetFirstTask: if self.tasks.is_empty() {
                0
            } else {
                saturate(header_len)
            },
            EncapsulationFormat: NDIS_ENCAPSULATION_FORMAT {
                Encapsulation: enc.encapsulation.value(),
                Flags: u32::from(enc.fixed_header_size),
                EncapsulationHeaderSize: enc.header_size,
            },
        };
        write_at(&mut out, 0, &header);
        let mut at = header_len;
        for (i, t) in self.tasks.iter().enumerate() {
            let len = Self::entry_len(t.buffer.len());
            let last = i.saturating_add(1) == self.tasks.len();
            let entry = NDIS_TASK_OFFLOAD {
                Version: NDIS_TASK_OFFLOAD_VERSION,
                Size: saturate(size_of::<NDIS_TASK_OFFLOAD>()),
                Task: t.task.value(),
                OffsetNextTask: if last { 0 } else { saturate(len) },
                TaskBufferLength: saturate(t.buffer.len()),
                TaskBuffer: [0; 4],
            };
            write_at(&mut out, at, &entry);
            let start = at.saturating_add(TASK_BUFFER_OFFSET);
            if let Some(dst) = out.get_mut(start..start.saturating_add(t.buffer.len())) {
                dst.copy_from_slice(&t.buffer);
            }
            at = at.saturating_add(len);
        }
        out
    }

    /// Parse the buffer.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let header_len = size_of::<NDIS_TASK_OFFLOAD_HEADER>();
        let h: NDIS_TASK_OFFLOAD_HEADER = read_at(buf, 0).ok_or(OidError::invalid_length(
            header_len,
            "buffer shorter than NDIS_TASK_OFFLOAD_HEADER",
        ))?;
        if h.Version != NDIS_TASK_OFFLOAD_VERSION || h.Size != saturate(header_len) {
            return Err(OidError::invalid_data(
                "bad NDIS_TASK_OFFLOAD_HEADER version or size",
            ));
        }
        let ef = h.EncapsulationFormat;
        let encapsulation = EncapsulationFormat {
            encapsulation: NdisEncapsulation::from_value(ef.Encapsulation)
                .ok_or(OidError::invalid_data("unknown NDIS_ENCAPSULATION"))?,
            fixed_header_size: match ef.Flags {
                0 => false,
                1 => true,
                _ => {
                    return Err(OidError::invalid_data(
                        "unknown NDIS_ENCAPSULATION_FORMAT flags",
                    ));
                }
            },
            header_size: ef.EncapsulationHeaderSize,
        };
        let mut tasks = Vec::new();
        if h.OffsetFirstTask != 0 {
            let first = usize::try_from(h.OffsetFirstTask)
                .map_err(|_| OidError::invalid_data("OffsetFirstTask out of range"))?;
            if first < header_len {
                return Err(OidError::invalid_data(
                    "OffsetFirstTask points into the header",
                ));
            }
            let mut at = first;
            loop {
                let e: NDIS_TASK_OFFLOAD = read_at(buf, at).ok_or(OidError::invalid_data(
                    "NDIS_TASK_OFFLOAD outside the buffer",
                ))?;
                if e.Version != NDIS_TASK_OFFLOAD_VERSION
                    || e.Size != saturate(size_of::<NDIS_TASK_OFFLOAD>())
                {
                    return Err(OidError::invalid_data(
                        "bad NDIS_TASK_OFFLOAD version or size",
                    ));
                }
                let task = NdisTask::from_value(e.Task)
                    .ok_or(OidError::invalid_data("unknown NDIS_TASK"))?;
                let blen = usize::try_from(e.TaskBufferLength)
                    .map_err(|_| OidError::invalid_data("TaskBufferLength out of range"))?;
                let body = at
                    .checked_add(TASK_BUFFER_OFFSET)
                    .and_then(|s| slice_at(buf, s, blen))
                    .ok_or(OidError::invalid_data("task buffer outside the buffer"))?;
                tasks.push(TaskOffloadEntry {
                    task,
                    buffer: body.to_vec(),
                });
                if e.OffsetNextTask == 0 {
                    break;
                }
                let next = usize::try_from(e.OffsetNextTask)
                    .map_err(|_| OidError::invalid_data("OffsetNextTask out of range"))?;
                if next < TASK_BUFFER_OFFSET.saturating_add(blen) {
                    return Err(OidError::invalid_data(
                        "OffsetNextTask does not move past the entry",
                    ));
                }
                at = at
                    .checked_add(next)
                    .ok_or(OidError::invalid_data("OffsetNextTask out of range"))?;
            }
        }
        Ok(TaskOffloadList {
            encapsulation,
            tasks,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::NdisStatus;

    pub(crate) fn v1_caps() -> IpsecV1Capabilities {
        IpsecV1Capabilities {
            encapsulation: NDIS_ENCAPSULATION_IEEE_802_3,
            ah_esp_combined: true,
            transport_tunnel_combined: false,
            ipv4_options: true,
            udp_esp_flags: IPSEC_TPT_UDPESP_ENCAPTYPE_OTHER | IPSEC_TUN_UDPESP_ENCAPTYPE_OTHER,
            ah: IpsecV1AhCapabilities {
                md5: false,
                sha1: true,
                transport: true,
                tunnel: true,
                send: true,
                receive: true,
            },
            esp: IpsecV1EspCapabilities {
                des: false,
                triple_des: false,
                null_esp: true,
                transport: true,
                tunnel: true,
                send: true,
                receive: false,
            },
        }
    }

    pub(crate) fn v2_caps() -> IpsecV2Capabilities {
        IpsecV2Capabilities {
            encapsulation: NDIS_ENCAPSULATION_IEEE_802_3,
            ipv6: true,
            ah: true,
            esp: true,
            ah_esp_combined: true,
            transport: true,
            tunnel: true,
            extended_sequence_numbers: true,
            udp_esp: IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT
                | IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL,
            authentication_algorithms: IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_1
                | IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256
                | IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128,
            encryption_algorithms: IPSEC_OFFLOAD_V2_ENCRYPTION_NONE
                | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128
                | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_256,
            sa_offload_capacity: 1024,
            ..Default::default()
        }
    }

    #[test]
    fn v1_capability_bits_sit_where_documented() {
        let a = v1_caps().to_abi();
        // Sha_1 bits 2-3, Transport 4-5, Tunnel 6-7, Send 8-9, Receive 10-11.
        assert_eq!(a.IPv4AH, 0b01_01_01_01_01_00);
        // NullEsp 6-7, Transport 8-9, Tunnel 10-11, Send 12-13.
        assert_eq!(a.IPv4ESP, 0b01_01_01_01_00_00_00);
        assert_eq!(IpsecV1Capabilities::from_abi(&a).unwrap(), v1_caps());
    }

    #[test]
    fn v1_two_bit_field_above_one_is_invalid_data() {
        let mut a = v1_caps().to_abi();
        a.IPv4AH |= 0b10;
        assert_eq!(
            IpsecV1Capabilities::from_abi(&a).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        let mut a = v1_caps().to_abi();
        a.Supported.AhEspCombined = 2;
        assert_eq!(
            IpsecV1Capabilities::from_abi(&a).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        let mut a = v1_caps().to_abi();
        a.IPv4ESP |= 1 << 16;
        assert_eq!(
            IpsecV1Capabilities::from_abi(&a).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
    }

    #[test]
    fn v2_capabilities_round_trip_and_checks() {
        let v = v2_caps();
        assert_eq!(IpsecV2Capabilities::from_abi(&v.to_abi()).unwrap(), v);
        assert!(v.supports_cipher(ConfAlgorithm::AesGcm128));
        assert!(!v.supports_cipher(ConfAlgorithm::AesGcm256));
        assert!(v.supports_integrity(IntegrityAlgorithm::Sha256));
        assert!(!v.supports_integrity(IntegrityAlgorithm::Md5));
        let mut a = v.to_abi();
        a.Tunnel = 2;
        assert_eq!(
            IpsecV2Capabilities::from_abi(&a).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        let mut a = v.to_abi();
        a.EncryptionAlgorithms |= 0x200;
        assert_eq!(
            IpsecV2Capabilities::from_abi(&a).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
    }

    #[test]
    fn ndis_offload_revisions_round_trip() {
        let rev1 = OffloadCapabilities {
            flags: 0,
            ipsec_v1: v1_caps(),
            ipsec_v2: None,
        };
        let b = rev1.to_bytes();
        assert_eq!(b.len(), 112);
        assert_eq!(b[..4], [NDIS_OBJECT_TYPE_OFFLOAD, 1, 112, 0]);
        assert_eq!(b[52 + 20..52 + 24], v1_caps().to_abi().IPv4AH.to_ne_bytes());
        assert_eq!(OffloadCapabilities::parse(&b).unwrap(), rev1);
        let rev3 = OffloadCapabilities {
            flags: IPSEC_OFFLOAD_V2_AND_TCP_CHECKSUM_COEXISTENCE,
            ipsec_v1: v1_caps(),
            ipsec_v2: Some(v2_caps()),
        };
        let b = rev3.to_bytes();
        assert_eq!(b.len(), 156);
        assert_eq!(b[108..112], 2u32.to_ne_bytes());
        assert_eq!(
            b[112 + 28..112 + 32],
            1024u32.to_ne_bytes(),
            "SaOffloadCapacity at 140"
        );
        assert_eq!(OffloadCapabilities::parse(&b).unwrap(), rev3);
        // A revision 2 answer (144 bytes) parses too.
        let mut r2 = b[..144].to_vec();
        r2[1] = 2;
        r2[2..4].copy_from_slice(&144u16.to_ne_bytes());
        assert_eq!(OffloadCapabilities::parse(&r2).unwrap(), rev3);
    }

    #[test]
    fn ndis_offload_short_buffer_is_invalid_length() {
        let b = OffloadCapabilities {
            ipsec_v2: Some(v2_caps()),
            ..Default::default()
        }
        .to_bytes();
        let e = OffloadCapabilities::parse(&b[..155]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 156)
        );
        let e = OffloadCapabilities::parse(&b[..3]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 112)
        );
    }

    #[test]
    fn ndis_offload_bad_header_is_invalid_data() {
        let good = OffloadCapabilities::default().to_bytes();
        for (off, val) in [(0usize, 0x80u8), (1, 0), (2, 100)] {
            let mut b = good.clone();
            b[off] = val;
            assert_eq!(
                OffloadCapabilities::parse(&b).unwrap_err().status(),
                NdisStatus::INVALID_DATA
            );
        }
    }

    #[test]
    fn offload_parameters_round_trip_and_layout() {
        let p = OffloadParameters {
            ipsec_v1: IpsecOffloadSetting::AhAndEspEnabled,
            flags: 0,
            ipsec_v2: None,
        };
        let b = p.to_bytes();
        assert_eq!(b[..4], [0x80, 1, 20, 0]);
        assert_eq!(b[10], 4);
        assert_eq!(OffloadParameters::parse(&b).unwrap(), p);
        let p2 = OffloadParameters {
            ipsec_v1: IpsecOffloadSetting::Disabled,
            flags: 0,
            ipsec_v2: Some(IpsecV2Settings {
                all: IpsecOffloadSetting::EspEnabled,
                ipv4: IpsecOffloadSetting::NoChange,
            }),
        };
        let b = p2.to_bytes();
        assert_eq!((b[1], b[2], b[20], b[21]), (2, 22, 3, 0));
        assert_eq!(OffloadParameters::parse(&b[..22]).unwrap(), p2);
    }

    #[test]
    fn offload_parameters_errors() {
        let b = OffloadParameters::default().to_bytes();
        let e = OffloadParameters::parse(&b[..19]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 20)
        );
        let mut r3 = b;
        r3[1] = 3;
        r3[2] = 26;
        let e = OffloadParameters::parse(&r3[..24]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 26)
        );
        let mut bad = b;
        bad[10] = 5;
        assert_eq!(
            OffloadParameters::parse(&bad).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        let mut bad = b;
        bad[0] = NDIS_OBJECT_TYPE_OFFLOAD;
        assert_eq!(
            OffloadParameters::parse(&bad).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        let mut bad = b;
        bad[2] = 19;
        assert_eq!(
            OffloadParameters::parse(&bad).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
    }

    fn encap() -> EncapsulationFormat {
        EncapsulationFormat {
            encapsulation: NdisEncapsulation::Ieee8023,
            fixed_header_size: true,
            header_size: 14,
        }
    }

    #[test]
    fn task_chain_layout_and_round_trip() {
        let caps = IpsecV1Capabilities {
            encapsulation: 0,
            udp_esp_flags: 0,
            ..v1_caps()
        };
        let mut list = TaskOffloadList::with_ipsec(encap(), &caps);
        list.tasks.insert(
            0,
            TaskOffloadEntry {
                task: NdisTask::TcpIpChecksum,
                buffer: vec![1, 2, 3, 4, 5],
            },
        );
        let b = list.to_bytes();
        // Header: OffsetFirstTask = 28 (relative to the header), encapsulation IEEE 802.3.
        assert_eq!(b[12..16], 28u32.to_ne_bytes());
        assert_eq!(b[16..20], IEEE_802_3_Encapsulation.to_ne_bytes());
        // First entry at 28: 20 + 5 bytes rounded up to 28; OffsetNextTask is relative to it.
        assert_eq!(b[28 + 12..28 + 16], 28u32.to_ne_bytes());
        let ipsec = 28 + 28;
        assert_eq!(b[ipsec + 8..ipsec + 12], IpSecNdisTask.to_ne_bytes());
        assert_eq!(b[ipsec + 12..ipsec + 16], 0u32.to_ne_bytes(), "last entry");
        assert_eq!(b[ipsec + 16..ipsec + 20], 24u32.to_ne_bytes());
        let parsed = TaskOffloadList::parse(&b).unwrap();
        assert_eq!(parsed, list);
        assert_eq!(parsed.ipsec().unwrap().unwrap(), caps);
    }

    #[test]
    fn task_chain_errors() {
        let list = TaskOffloadList::with_ipsec(encap(), &IpsecV1Capabilities::default());
        let b = list.to_bytes();
        let e = TaskOffloadList::parse(&b[..27]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 28)
        );
        // Entry outside the buffer.
        assert_eq!(
            TaskOffloadList::parse(&b[..50]).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        // A loop: OffsetNextTask pointing back at itself.
        let mut looped = b.clone();
        looped[28 + 12..28 + 16].copy_from_slice(&1u32.to_ne_bytes());
        assert_eq!(
            TaskOffloadList::parse(&looped).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        // Unknown task, bad version, OffsetFirstTask into the header, unknown encapsulation.
        for (off, v) in [(28 + 8, 3u32), (28, 2), (12, 4), (16, 6), (0, 2)] {
            let mut bad = b.clone();
            bad[off..off + 4].copy_from_slice(&v.to_ne_bytes());
            assert_eq!(
                TaskOffloadList::parse(&bad).unwrap_err().status(),
                NdisStatus::INVALID_DATA,
                "{off}"
            );
        }
        // An IpSec entry with a short task buffer.
        let short = TaskOffloadList {
            encapsulation: encap(),
            tasks: vec![TaskOffloadEntry {
                task: NdisTask::IpSec,
                buffer: vec![0; 8],
            }],
        };
        assert_eq!(
            short.ipsec().unwrap().unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        assert!(TaskOffloadList::default().ipsec().is_none());
        assert_eq!(
            TaskOffloadList::parse(&TaskOffloadList::default().to_bytes()).unwrap(),
            TaskOffloadList::default()
        );
    }
}
