//! What this NIC can do, in NDIS terms, and which parts of it are currently enabled.
//!
//! The hardware capabilities are derived from one place, [`NicAlgorithms`], so what is
//! advertised (`NDIS_IPSEC_OFFLOAD_V1`/`V2`) and what ADD_SA accepts cannot drift apart:
//! [`OffloadState::check_bundle`] asks the same masks the capability answer is built from.

use oid::abi::{
    IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128, IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_192,
    IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_256, IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_1,
    IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256, IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_128,
    IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_192, IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_256,
    IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128, IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_192,
    IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_256, IPSEC_OFFLOAD_V2_ENCRYPTION_NONE,
    IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT,
    IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL, IPSEC_TPT_UDPESP_ENCAPTYPE_OTHER,
    IPSEC_TUN_UDPESP_ENCAPTYPE_OTHER, NDIS_ENCAPSULATION_IEEE_802_3,
};
use oid::{
    ConfAlgorithm, EncapsulationFormat, IntegrityAlgorithm, IpsecOffloadSetting,
    IpsecV1AhCapabilities, IpsecV1Capabilities, IpsecV1EspCapabilities, IpsecV2Capabilities,
    NdisEncapsulation, OffloadCapabilities, OidError, SaBundle, TaskOffloadList,
};

/// The algorithms the NIC's crypto engine implements, as v2 masks.
///
/// AES-GCM-128/192/256 (RFC 4106), AES-CBC-128/192/256 (RFC 3602), NULL encryption
/// (RFC 2410); HMAC-SHA1-96, HMAC-SHA-256-128 and AES-GMAC-128/192/256 (RFC 4543). Never DES,
/// 3DES or MD5: those identifiers parse but are refused with `NDIS_STATUS_NOT_SUPPORTED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NicAlgorithms;

impl NicAlgorithms {
    /// `IPSEC_OFFLOAD_V2_ENCRYPTION_*` mask.
    pub const ENCRYPTION: u32 = IPSEC_OFFLOAD_V2_ENCRYPTION_NONE
        | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128
        | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_192
        | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_256
        | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_128
        | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_192
        | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_256;
    /// `IPSEC_OFFLOAD_V2_AUTHENTICATION_*` mask.
    pub const AUTHENTICATION: u32 = IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_1
        | IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256
        | IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128
        | IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_192
        | IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_256;
}

/// Which IPsec protocols are enabled for one offload version (`NDIS_OFFLOAD_PARAMETERS`
/// `IPsecV1` / `IPsecV2` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Enabled {
    /// AH offload enabled.
    pub ah: bool,
    /// ESP offload enabled.
    pub esp: bool,
}

impl Enabled {
    /// Both protocols.
    pub const ALL: Enabled = Enabled {
        ah: true,
        esp: true,
    };
    /// Nothing.
    pub const NONE: Enabled = Enabled {
        ah: false,
        esp: false,
    };

    /// Apply one `NDIS_OFFLOAD_PARAMETERS_IPSECVx_*` setting (`NO_CHANGE` keeps `self`).
    pub fn apply(self, s: IpsecOffloadSetting) -> Enabled {
        match s {
            IpsecOffloadSetting::NoChange => self,
            IpsecOffloadSetting::Disabled => Enabled::NONE,
            IpsecOffloadSetting::AhEnabled => Enabled {
                ah: true,
                esp: false,
            },
            IpsecOffloadSetting::EspEnabled => Enabled {
                ah: false,
                esp: true,
            },
            IpsecOffloadSetting::AhAndEspEnabled => Enabled::ALL,
        }
    }

    /// True when anything is enabled.
    pub fn any(self) -> bool {
        self.ah || self.esp
    }
}

/// The current offload configuration: what is enabled of the hardware capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadState {
    /// IPsec offload v1 (`OID_TCP_TASK_IPSEC_*`).
    pub v1: Enabled,
    /// IPsec offload v2 (`OID_TCP_TASK_IPSEC_OFFLOAD_V2_*`).
    pub v2: Enabled,
    /// `SaOffloadCapacity` to advertise.
    pub capacity: u32,
}

/// Which OID family a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `OID_TCP_TASK_IPSEC_ADD_SA` / `_ADD_UDPESP_SA`.
    V1,
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA` / `_ADD_SA_EX`.
    V2,
}

impl OffloadState {
    /// Everything enabled.
    pub fn all_enabled(capacity: u32) -> Self {
        OffloadState {
            v1: Enabled::ALL,
            v2: Enabled::ALL,
            capacity,
        }
    }

    /// The hardware capabilities (`OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES`).
    pub fn hardware(capacity: u32) -> OffloadCapabilities {
        Self::all_enabled(capacity).current()
    }

    /// The v1 capability struct with only the enabled protocols' bits set.
    ///
    /// Exactly the bits true of this NIC: HMAC-SHA-1 AH, NULL ESP (the only v1 ESP cipher bit
    /// it has; its AES ciphers are reported through v2), transport and tunnel, send and
    /// receive, ESP+AH bundles, transport-over-tunnel, UDP-ESP "OTHER" encapsulation in
    /// transport and tunnel mode. Not: MD5, DES, 3DES, IPv4 options, the reserved IKE bits.
    pub fn v1_caps(e: Enabled) -> IpsecV1Capabilities {
        let ah = if e.ah {
            IpsecV1AhCapabilities {
                md5: false,
                sha1: true,
                transport: true,
                tunnel: true,
                send: true,
                receive: true,
            }
        } else {
            IpsecV1AhCapabilities::default()
        };
        let esp = if e.esp {
            IpsecV1EspCapabilities {
                des: false,
                triple_des: false,
                null_esp: true,
                transport: true,
                tunnel: true,
                send: true,
                receive: true,
            }
        } else {
            IpsecV1EspCapabilities::default()
        };
        if !e.any() {
            return IpsecV1Capabilities::default();
        }
        IpsecV1Capabilities {
            encapsulation: NDIS_ENCAPSULATION_IEEE_802_3,
            ah_esp_combined: e.ah && e.esp,
            transport_tunnel_combined: true,
            ipv4_options: false,
            udp_esp_flags: if e.esp {
                IPSEC_TPT_UDPESP_ENCAPTYPE_OTHER | IPSEC_TUN_UDPESP_ENCAPTYPE_OTHER
            } else {
                0
            },
            ah,
            esp,
        }
    }

    /// The v2 capability struct with only the enabled protocols set (all zero when disabled).
    pub fn v2_caps(e: Enabled, capacity: u32) -> IpsecV2Capabilities {
        if !e.any() {
            return IpsecV2Capabilities::default();
        }
        IpsecV2Capabilities {
            encapsulation: NDIS_ENCAPSULATION_IEEE_802_3,
            ipv6: true,
            ipv4_options: false,
            ipv6_non_ipsec_extension_headers: false,
            ah: e.ah,
            esp: e.esp,
            ah_esp_combined: e.ah && e.esp,
            transport: true,
            tunnel: true,
            transport_tunnel_combined: true,
            lso: false,
            extended_sequence_numbers: true,
            udp_esp: if e.esp {
                IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT
                    | IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL
            } else {
                0
            },
            authentication_algorithms: NicAlgorithms::AUTHENTICATION,
            encryption_algorithms: if e.esp { NicAlgorithms::ENCRYPTION } else { 0 },
            sa_offload_capacity: capacity,
        }
    }

    /// The current configuration as `NDIS_OFFLOAD` (`OID_TCP_OFFLOAD_CURRENT_CONFIG`, the
    /// `NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG` indication).
    pub fn current(&self) -> OffloadCapabilities {
        OffloadCapabilities {
            flags: 0,
            ipsec_v1: Self::v1_caps(self.v1),
            ipsec_v2: Some(Self::v2_caps(self.v2, self.capacity)),
        }
    }

    /// The NDIS 5 `OID_TCP_TASK_OFFLOAD` answer: the v1 capabilities as an `NDIS_TASK_IPSEC`
    /// task (no task at all when v1 is disabled).
    pub fn task_list(&self, hardware: bool) -> TaskOffloadList {
        let e = if hardware { Enabled::ALL } else { self.v1 };
        let enc = EncapsulationFormat {
            encapsulation: NdisEncapsulation::Ieee8023,
            fixed_header_size: true,
            header_size: 14,
        };
        if e.any() {
            TaskOffloadList::with_ipsec(enc, &Self::v1_caps(e))
        } else {
            TaskOffloadList {
                encapsulation: enc,
                tasks: Vec::new(),
            }
        }
    }

    /// Whether an SA bundle may be offloaded now through `version`'s OIDs.
    ///
    /// # Errors
    /// `NDIS_STATUS_NOT_SUPPORTED` when offload (or the bundle's protocol) is disabled for
    /// that version, or an algorithm is not one the NIC advertises (DES, 3DES, MD5).
    pub fn check_bundle(&self, version: Version, sas: &SaBundle) -> Result<(), OidError> {
        let e = match version {
            Version::V1 => self.v1,
            Version::V2 => self.v2,
        };
        if sas.esp().is_some() && !e.esp {
            return Err(OidError::not_supported("ESP offload is disabled"));
        }
        if sas.ah().is_some() && !e.ah {
            return Err(OidError::not_supported("AH offload is disabled"));
        }
        let hw = Self::v2_caps(Enabled::ALL, self.capacity);
        if let Some(esp) = sas.esp() {
            if !cipher_supported(&hw, esp.cipher) {
                return Err(OidError::not_supported("cipher not supported by the NIC"));
            }
            if !hw.supports_integrity(esp.integrity) {
                return Err(OidError::not_supported(
                    "integrity algorithm not supported by the NIC",
                ));
            }
        }
        if let Some(ah) = sas.ah()
            && !hw.supports_integrity(ah.integrity)
        {
            return Err(OidError::not_supported(
                "integrity algorithm not supported by the NIC",
            ));
        }
        Ok(())
    }
}

fn cipher_supported(hw: &IpsecV2Capabilities, c: ConfAlgorithm) -> bool {
    hw.supports_cipher(c)
}

/// True if the NIC implements `a` (for tests and callers that want to ask directly).
pub fn integrity_supported(a: IntegrityAlgorithm) -> bool {
    OffloadState::v2_caps(Enabled::ALL, 1).supports_integrity(a)
}

/// True if the NIC implements `c`.
pub fn cipher_supported_by_nic(c: ConfAlgorithm) -> bool {
    cipher_supported(&OffloadState::v2_caps(Enabled::ALL, 1), c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn never_des_3des_md5() {
        assert!(!cipher_supported_by_nic(ConfAlgorithm::Des));
        assert!(!cipher_supported_by_nic(ConfAlgorithm::TripleDes));
        assert!(!integrity_supported(IntegrityAlgorithm::Md5));
        for c in [
            ConfAlgorithm::None,
            ConfAlgorithm::AesGcm128,
            ConfAlgorithm::AesGcm192,
            ConfAlgorithm::AesGcm256,
            ConfAlgorithm::AesCbc128,
            ConfAlgorithm::AesCbc192,
            ConfAlgorithm::AesCbc256,
        ] {
            assert!(cipher_supported_by_nic(c), "{c:?}");
        }
        for i in [
            IntegrityAlgorithm::None,
            IntegrityAlgorithm::Sha1,
            IntegrityAlgorithm::Sha256,
            IntegrityAlgorithm::AesGmac128,
            IntegrityAlgorithm::AesGmac192,
            IntegrityAlgorithm::AesGmac256,
        ] {
            assert!(integrity_supported(i), "{i:?}");
        }
        let v1 = OffloadState::v1_caps(Enabled::ALL);
        assert!(!v1.ah.md5 && !v1.esp.des && !v1.esp.triple_des);
    }

    #[test]
    fn settings_apply() {
        let e = Enabled::ALL.apply(IpsecOffloadSetting::EspEnabled);
        assert_eq!(
            e,
            Enabled {
                ah: false,
                esp: true
            }
        );
        assert_eq!(e.apply(IpsecOffloadSetting::NoChange), e);
        assert!(!e.apply(IpsecOffloadSetting::Disabled).any());
    }

    #[test]
    fn disabled_version_reports_nothing() {
        let s = OffloadState {
            v1: Enabled::NONE,
            v2: Enabled::ALL,
            capacity: 8,
        };
        let c = s.current();
        assert_eq!(c.ipsec_v1, IpsecV1Capabilities::default());
        assert_eq!(c.ipsec_v2.map(|v| v.sa_offload_capacity), Some(8));
        assert!(s.task_list(false).tasks.is_empty());
        assert_eq!(s.task_list(true).tasks.len(), 1);
    }
}
