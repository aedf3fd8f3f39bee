//! Algorithm identifiers shared by the v1 and v2 OIDs, and the SA descriptions both parse into.
//!
//! v1 identifiers (`OFFLOAD_ALGO_INFO.algoIdentifier`) keep their documented meaning
//! (ndis-wfp-abi.md §4.1): `OFFLOAD_IPSEC_CONF_NONE` 0, `_DES` 1, `_RESERVED` 2 (refused),
//! `_3_DES` 3; `OFFLOAD_IPSEC_INTEGRITY_NONE` 0, `_MD5` 1, `_SHA` 2 (SHA-1).
//!
//! **Emulator extension (not in any Windows header):** v1 has no identifiers for AES, SHA-256,
//! GCM or GMAC, so an identifier with [`OFFLOAD_IPSEC_EXT_FLAG`] (`0x8000_0000`) set carries the
//! single v2 bit of the algorithm (§4.7) in its low bits: `FLAG | IPSEC_OFFLOAD_V2_ENCRYPTION_x`
//! for `ConfAlgo` (x = AES_GCM_128/192/256, AES_CBC_128/192/256) and
//! `FLAG | IPSEC_OFFLOAD_V2_AUTHENTICATION_x` for `IntegrityAlgo` (x = SHA_256,
//! AES_GCM_128/192/256, the latter meaning AES-GMAC integrity).
//!
//! Key lengths are fixed per algorithm and checked: AES-GCM/GMAC = AES key + 4-byte salt
//! (20/28/36), AES-CBC 16/24/32, HMAC-SHA-1 20, HMAC-SHA-256 32, HMAC-MD5 16, DES 8, 3DES 24,
//! NONE 0. This crate parses every identifier it knows; whether a NIC *supports* an algorithm
//! (DES, 3DES and MD5 are parsed but not advertised) is the miniport's decision.

use crate::abi::*;
use crate::error::{OidError, SecretKey};

/// A confidentiality (encryption) algorithm (`ConfAlgo` / v2 `EncryptionAlgorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfAlgorithm {
    /// No confidentiality: NULL encryption for ESP (RFC 2410); the only value for AH.
    #[doc(alias = "OFFLOAD_IPSEC_CONF_NONE")]
    #[doc(alias = "IPSEC_OFFLOAD_V2_ENCRYPTION_NONE")]
    None,
    /// DES-CBC (parsed, never advertised).
    #[doc(alias = "OFFLOAD_IPSEC_CONF_DES")]
    Des,
    /// 3DES-CBC (parsed, never advertised).
    #[doc(alias = "OFFLOAD_IPSEC_CONF_3_DES")]
    TripleDes,
    /// AES-GCM-128 with 16-byte ICV (RFC 4106), key = 16 + 4 salt.
    AesGcm128,
    /// AES-GCM-192 with 16-byte ICV, key = 24 + 4 salt.
    AesGcm192,
    /// AES-GCM-256 with 16-byte ICV, key = 32 + 4 salt.
    AesGcm256,
    /// AES-CBC-128 (RFC 3602).
    AesCbc128,
    /// AES-CBC-192.
    AesCbc192,
    /// AES-CBC-256.
    AesCbc256,
}

impl ConfAlgorithm {
    /// Every value.
    pub const ALL: [ConfAlgorithm; 9] = [
        Self::None,
        Self::Des,
        Self::TripleDes,
        Self::AesGcm128,
        Self::AesGcm192,
        Self::AesGcm256,
        Self::AesCbc128,
        Self::AesCbc192,
        Self::AesCbc256,
    ];

    /// The v1 `algoIdentifier` (documented value or the emulator extension).
    pub fn v1_identifier(self) -> u32 {
        match self {
            Self::None => OFFLOAD_IPSEC_CONF_NONE,
            Self::Des => OFFLOAD_IPSEC_CONF_DES,
            Self::TripleDes => OFFLOAD_IPSEC_CONF_3_DES,
            other => OFFLOAD_IPSEC_EXT_FLAG | other.v2_identifier(),
        }
    }

    /// Parse a v1 `algoIdentifier`; `None` for unknown values (including
    /// `OFFLOAD_IPSEC_CONF_RESERVED`).
    pub fn from_v1_identifier(id: u32) -> Option<Self> {
        match id {
            OFFLOAD_IPSEC_CONF_NONE => Some(Self::None),
            OFFLOAD_IPSEC_CONF_DES => Some(Self::Des),
            OFFLOAD_IPSEC_CONF_3_DES => Some(Self::TripleDes),
            _ if id & OFFLOAD_IPSEC_EXT_FLAG != 0 => {
                match Self::from_v2_identifier(id & !OFFLOAD_IPSEC_EXT_FLAG)? {
                    Self::None | Self::Des | Self::TripleDes => None,
                    a => Some(a),
                }
            }
            _ => None,
        }
    }

    /// The v2 `IPSEC_OFFLOAD_V2_ENCRYPTION_*` bit.
    pub fn v2_identifier(self) -> u32 {
        match self {
            Self::None => IPSEC_OFFLOAD_V2_ENCRYPTION_NONE,
            Self::Des => IPSEC_OFFLOAD_V2_ENCRYPTION_DES_CBC,
            Self::TripleDes => IPSEC_OFFLOAD_V2_ENCRYPTION_3_DES_CBC,
            Self::AesGcm128 => IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128,
            Self::AesGcm192 => IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_192,
            Self::AesGcm256 => IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_256,
            Self::AesCbc128 => IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_128,
            Self::AesCbc192 => IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_192,
            Self::AesCbc256 => IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_256,
        }
    }

    /// Parse a single v2 `IPSEC_OFFLOAD_V2_ENCRYPTION_*` bit.
    pub fn from_v2_identifier(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.v2_identifier() == id)
    }

    /// The key length in bytes (AES-GCM includes the 4-byte salt).
    pub fn key_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::Des => 8,
            Self::TripleDes => 24,
            Self::AesGcm128 => 20,
            Self::AesGcm192 => 28,
            Self::AesGcm256 => 36,
            Self::AesCbc128 => 16,
            Self::AesCbc192 => 24,
            Self::AesCbc256 => 32,
        }
    }

    /// True for the combined-mode (AEAD) algorithms, which need no integrity algorithm.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::AesGcm128 | Self::AesGcm192 | Self::AesGcm256)
    }
}

/// An integrity algorithm (`IntegrityAlgo` / v2 `AuthenticationAlgorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntegrityAlgorithm {
    /// No integrity algorithm.
    #[doc(alias = "OFFLOAD_IPSEC_INTEGRITY_NONE")]
    None,
    /// HMAC-MD5-96 (parsed, never advertised).
    #[doc(alias = "OFFLOAD_IPSEC_INTEGRITY_MD5")]
    Md5,
    /// HMAC-SHA1-96 (RFC 2404).
    #[doc(alias = "OFFLOAD_IPSEC_INTEGRITY_SHA")]
    Sha1,
    /// HMAC-SHA-256-128 (RFC 4868).
    Sha256,
    /// AES-GMAC-128 (RFC 4543), key = 16 + 4 salt.
    AesGmac128,
    /// AES-GMAC-192, key = 24 + 4 salt.
    AesGmac192,
    /// AES-GMAC-256, key = 32 + 4 salt.
    AesGmac256,
}

impl IntegrityAlgorithm {
    /// Every value.
    pub const ALL: [IntegrityAlgorithm; 7] = [
        Self::None,
        Self::Md5,
        Self::Sha1,
        Self::Sha256,
        Self::AesGmac128,
        Self::AesGmac192,
        Self::AesGmac256,
    ];

    /// The v1 `algoIdentifier` (documented value or the emulator extension).
    pub fn v1_identifier(self) -> u32 {
        match self {
            Self::None => OFFLOAD_IPSEC_INTEGRITY_NONE,
            Self::Md5 => OFFLOAD_IPSEC_INTEGRITY_MD5,
            Self::Sha1 => OFFLOAD_IPSEC_INTEGRITY_SHA,
            other => OFFLOAD_IPSEC_EXT_FLAG | other.v2_identifier(),
        }
    }

    /// Parse a v1 `algoIdentifier`; `None` for unknown values.
    pub fn from_v1_identifier(id: u32) -> Option<Self> {
        match id {
            OFFLOAD_IPSEC_INTEGRITY_NONE => Some(Self::None),
            OFFLOAD_IPSEC_INTEGRITY_MD5 => Some(Self::Md5),
            OFFLOAD_IPSEC_INTEGRITY_SHA => Some(Self::Sha1),
            _ if id & OFFLOAD_IPSEC_EXT_FLAG != 0 => {
                match Self::from_v2_identifier(id & !OFFLOAD_IPSEC_EXT_FLAG)? {
                    Self::None | Self::Md5 | Self::Sha1 => None,
                    a => Some(a),
                }
            }
            _ => None,
        }
    }

    /// The v2 `IPSEC_OFFLOAD_V2_AUTHENTICATION_*` bit (0 for `None`).
    pub fn v2_identifier(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Md5 => IPSEC_OFFLOAD_V2_AUTHENTICATION_MD5,
            Self::Sha1 => IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_1,
            Self::Sha256 => IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256,
            Self::AesGmac128 => IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128,
            Self::AesGmac192 => IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_192,
            Self::AesGmac256 => IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_256,
        }
    }

    /// Parse a v2 `IPSEC_OFFLOAD_V2_AUTHENTICATION_*` bit (0 = `None`).
    pub fn from_v2_identifier(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.v2_identifier() == id)
    }

    /// The key length in bytes (AES-GMAC includes the 4-byte salt).
    pub fn key_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::AesGmac128 => 20,
            Self::AesGmac192 => 28,
            Self::AesGmac256 => 36,
        }
    }

    /// True for AES-GMAC.
    pub fn is_gmac(self) -> bool {
        matches!(self, Self::AesGmac128 | Self::AesGmac192 | Self::AesGmac256)
    }
}

/// Which IPsec protocol an SA is for (`OFFLOAD_OPERATION_E` / `IPSEC_OFFLOAD_V2_OPERATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaProtocol {
    /// AH (`AUTHENTICATE` = 1 / `IPsecOffloadV2Ah` = 1).
    #[doc(alias = "AUTHENTICATE")]
    Ah,
    /// ESP (`ENCRYPT` = 2 / `IPsecOffloadV2Esp` = 2).
    #[doc(alias = "ENCRYPT")]
    Esp,
}

impl SaProtocol {
    /// The operation value (the same numbers in v1 and v2).
    pub fn operation(self) -> i32 {
        match self {
            Self::Ah => AUTHENTICATE,
            Self::Esp => ENCRYPT,
        }
    }

    /// Parse an operation value; `None` for anything but 1 and 2.
    pub fn from_operation(op: i32) -> Option<Self> {
        match op {
            AUTHENTICATE => Some(Self::Ah),
            ENCRYPT => Some(Self::Esp),
            _ => None,
        }
    }
}

/// The direction of an SA (`OFFLOAD_INBOUND_SA` / `OFFLOAD_OUTBOUND_SA`,
/// `IPSEC_OFFLOAD_V2_INBOUND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received traffic.
    #[doc(alias = "OFFLOAD_INBOUND_SA")]
    Inbound,
    /// Sent traffic.
    #[doc(alias = "OFFLOAD_OUTBOUND_SA")]
    Outbound,
}

/// Per-SA options that exist in only one OID version.
///
/// v1 carries `algoRounds` (not interpreted); v2 carries the ESN flag and the high-order
/// sequence bits. Emitting a v1 buffer with v2 options set (or the reverse) is refused with
/// `NDIS_STATUS_INVALID_DATA`, so nothing is silently lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaOptions {
    /// v1 `IntegrityAlgo.algoRounds`.
    pub integrity_rounds: u32,
    /// v1 `ConfAlgo.algoRounds`.
    pub conf_rounds: u32,
    /// v2 `IPSEC_OFFLOAD_V2_ESN_SA`.
    pub esn: bool,
    /// v2 `SequenceNumberHighOrder`.
    pub sequence_number_high_order: u32,
}

impl SaOptions {
    pub(crate) fn has_v1_only(&self) -> bool {
        self.integrity_rounds != 0 || self.conf_rounds != 0
    }

    pub(crate) fn has_v2_only(&self) -> bool {
        self.esn || self.sequence_number_high_order != 0
    }
}

/// An AH SA: integrity only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AhSa {
    /// The SPI (host-order number).
    pub spi: u32,
    /// The integrity algorithm (never `None`).
    pub integrity: IntegrityAlgorithm,
    /// Its key (`integrity.key_len()` bytes).
    pub integrity_key: SecretKey,
    /// Version-specific options.
    pub options: SaOptions,
}

/// An ESP SA: confidentiality and/or integrity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EspSa {
    /// The SPI (host-order number).
    pub spi: u32,
    /// The cipher (`None` = NULL encryption).
    pub cipher: ConfAlgorithm,
    /// Its key (`cipher.key_len()` bytes; AES-GCM includes the salt).
    pub cipher_key: SecretKey,
    /// The integrity algorithm (`None` with an AEAD cipher).
    pub integrity: IntegrityAlgorithm,
    /// Its key (`integrity.key_len()` bytes).
    pub integrity_key: SecretKey,
    /// Version-specific options.
    pub options: SaOptions,
}

/// The SAs of one ADD_SA request, in processing order.
///
/// The only supported pair is ESP then AH (ndis-wfp-abi.md §8.2, §4.7 `NumExtHdrs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaBundle {
    /// One AH SA.
    Ah(AhSa),
    /// One ESP SA.
    Esp(EspSa),
    /// ESP processed first, then AH (outbound: ESP inside, AH outside).
    EspThenAh(EspSa, AhSa),
}

impl SaBundle {
    /// Number of SAs (1 or 2).
    pub fn len(&self) -> usize {
        match self {
            Self::EspThenAh(..) => 2,
            _ => 1,
        }
    }

    /// Always false: a bundle holds at least one SA.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ESP SA, if any.
    pub fn esp(&self) -> Option<&EspSa> {
        match self {
            Self::Esp(e) | Self::EspThenAh(e, _) => Some(e),
            Self::Ah(_) => None,
        }
    }

    /// The AH SA, if any.
    pub fn ah(&self) -> Option<&AhSa> {
        match self {
            Self::Ah(a) | Self::EspThenAh(_, a) => Some(a),
            Self::Esp(_) => None,
        }
    }

    /// Check what every parser checks: algorithm/key consistency and the authentication rule.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` or `NDIS_STATUS_NOT_SUPPORTED` as documented on the parsers.
    pub fn validate(&self) -> Result<(), OidError> {
        if let Some(e) = self.esp() {
            validate_esp(e)?;
        }
        if let Some(a) = self.ah() {
            validate_ah(a)?;
        }
        Ok(())
    }
}

pub(crate) fn validate_ah(a: &AhSa) -> Result<(), OidError> {
    if a.integrity == IntegrityAlgorithm::None {
        return Err(OidError::invalid_data(
            "AH SA without an integrity algorithm",
        ));
    }
    if a.integrity_key.len() != a.integrity.key_len() {
        return Err(OidError::invalid_data(
            "integrity key length does not match the algorithm",
        ));
    }
    Ok(())
}

pub(crate) fn validate_esp(e: &EspSa) -> Result<(), OidError> {
    if e.cipher_key.len() != e.cipher.key_len() {
        return Err(OidError::invalid_data(
            "cipher key length does not match the algorithm",
        ));
    }
    if e.integrity_key.len() != e.integrity.key_len() {
        return Err(OidError::invalid_data(
            "integrity key length does not match the algorithm",
        ));
    }
    if e.cipher.is_aead() && e.integrity != IntegrityAlgorithm::None {
        return Err(OidError::not_supported(
            "AEAD cipher combined with an integrity algorithm",
        ));
    }
    if !e.cipher.is_aead() && e.integrity == IntegrityAlgorithm::None {
        return Err(OidError::not_supported("ESP SA without authentication"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_identifiers_round_trip() {
        for a in ConfAlgorithm::ALL {
            assert_eq!(
                ConfAlgorithm::from_v1_identifier(a.v1_identifier()),
                Some(a)
            );
            assert_eq!(
                ConfAlgorithm::from_v2_identifier(a.v2_identifier()),
                Some(a)
            );
        }
        for a in IntegrityAlgorithm::ALL {
            assert_eq!(
                IntegrityAlgorithm::from_v1_identifier(a.v1_identifier()),
                Some(a)
            );
            assert_eq!(
                IntegrityAlgorithm::from_v2_identifier(a.v2_identifier()),
                Some(a)
            );
        }
    }

    #[test]
    fn documented_and_extension_values() {
        assert_eq!(ConfAlgorithm::TripleDes.v1_identifier(), 3);
        assert_eq!(ConfAlgorithm::AesGcm128.v1_identifier(), 0x8000_0008);
        assert_eq!(ConfAlgorithm::AesCbc256.v1_identifier(), 0x8000_0100);
        assert_eq!(IntegrityAlgorithm::Sha1.v1_identifier(), 2);
        assert_eq!(IntegrityAlgorithm::Sha256.v1_identifier(), 0x8000_0004);
        assert_eq!(IntegrityAlgorithm::AesGmac256.v1_identifier(), 0x8000_0020);
    }

    #[test]
    fn unknown_identifiers_are_refused() {
        assert_eq!(
            ConfAlgorithm::from_v1_identifier(OFFLOAD_IPSEC_CONF_RESERVED),
            None
        );
        assert_eq!(ConfAlgorithm::from_v1_identifier(4), None);
        // The extension only covers the AES algorithms, never the documented ones again.
        assert_eq!(
            ConfAlgorithm::from_v1_identifier(OFFLOAD_IPSEC_EXT_FLAG | 0x002),
            None
        );
        assert_eq!(
            ConfAlgorithm::from_v1_identifier(OFFLOAD_IPSEC_EXT_FLAG | 0x001),
            None
        );
        assert_eq!(
            ConfAlgorithm::from_v1_identifier(OFFLOAD_IPSEC_EXT_FLAG | 0x018),
            None
        );
        assert_eq!(IntegrityAlgorithm::from_v1_identifier(3), None);
        assert_eq!(
            IntegrityAlgorithm::from_v1_identifier(OFFLOAD_IPSEC_EXT_FLAG),
            None
        );
        assert_eq!(
            IntegrityAlgorithm::from_v1_identifier(OFFLOAD_IPSEC_EXT_FLAG | 2),
            None
        );
        assert_eq!(IntegrityAlgorithm::from_v2_identifier(0x40), None);
    }

    #[test]
    fn key_lengths() {
        assert_eq!(ConfAlgorithm::AesGcm192.key_len(), 28);
        assert_eq!(ConfAlgorithm::AesCbc192.key_len(), 24);
        assert_eq!(IntegrityAlgorithm::Sha256.key_len(), 32);
        assert_eq!(IntegrityAlgorithm::AesGmac128.key_len(), 20);
        assert!(ConfAlgorithm::AesGcm256.is_aead() && !ConfAlgorithm::AesCbc256.is_aead());
    }

    #[test]
    fn operations() {
        assert_eq!(SaProtocol::from_operation(1), Some(SaProtocol::Ah));
        assert_eq!(SaProtocol::from_operation(2), Some(SaProtocol::Esp));
        assert_eq!(SaProtocol::from_operation(3), None);
        assert_eq!(SaProtocol::Esp.operation(), ENCRYPT);
    }
}
