//! SA parameters: what an SA is, independent of who holds it (host stack or NIC).

use core::fmt;
use core::net::IpAddr;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The IPsec protocol of an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Encapsulating Security Payload (RFC 4303), IP protocol 50.
    Esp,
    /// Authentication Header (RFC 4302), IP protocol 51.
    Ah,
}

impl Protocol {
    /// The IP protocol number (50 or 51).
    pub fn ip_protocol(self) -> u8 {
        match self {
            Protocol::Esp => 50,
            Protocol::Ah => 51,
        }
    }
}

/// Transport or tunnel mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The IPsec header sits between the IP header and its payload.
    Transport,
    /// The whole inner IP packet is carried inside a new outer IP header.
    Tunnel,
}

/// The ESP confidentiality transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// No ESP cipher: used for AH SAs and for ESP with AES-GMAC integrity (RFC 4543), whose
    /// payload is authenticated but not encrypted.
    None,
    /// NULL encryption (RFC 2410): no IV, payload in clear; needs an HMAC integrity transform.
    Null,
    /// AES-GCM with a 16-byte ICV (RFC 4106), 128-bit key; key material = key || 4-byte salt.
    AesGcm128,
    /// AES-GCM-192, 16-byte ICV (RFC 4106).
    AesGcm192,
    /// AES-GCM-256, 16-byte ICV (RFC 4106).
    AesGcm256,
    /// AES-CBC with a 128-bit key (RFC 3602); needs an HMAC integrity transform.
    AesCbc128,
    /// AES-CBC-192 (RFC 3602).
    AesCbc192,
    /// AES-CBC-256 (RFC 3602).
    AesCbc256,
}

impl Encryption {
    /// Key material length in bytes (GCM includes the 4-byte salt).
    pub fn key_len(self) -> usize {
        match self {
            Encryption::None | Encryption::Null => 0,
            Encryption::AesGcm128 => 16 + 4,
            Encryption::AesGcm192 => 24 + 4,
            Encryption::AesGcm256 => 32 + 4,
            Encryption::AesCbc128 => 16,
            Encryption::AesCbc192 => 24,
            Encryption::AesCbc256 => 32,
        }
    }

    /// True for the AES-GCM combined-mode transforms (they need no integrity transform).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Encryption::AesGcm128 | Encryption::AesGcm192 | Encryption::AesGcm256
        )
    }
}

/// The integrity (authentication) transform, for ESP or AH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// No separate integrity transform (only valid with AES-GCM, which has its own ICV).
    None,
    /// HMAC-SHA1-96 (RFC 2404): 20-byte key, 12-byte ICV.
    HmacSha1_96,
    /// HMAC-SHA-256-128 (RFC 4868): 32-byte key, 16-byte ICV.
    HmacSha256_128,
    /// AES-GMAC (RFC 4543), 128-bit key; key material = key || 4-byte salt; 16-byte ICV.
    AesGmac128,
    /// AES-GMAC-192 (RFC 4543).
    AesGmac192,
    /// AES-GMAC-256 (RFC 4543).
    AesGmac256,
}

impl Integrity {
    /// Key material length in bytes (GMAC includes the 4-byte salt).
    pub fn key_len(self) -> usize {
        match self {
            Integrity::None => 0,
            Integrity::HmacSha1_96 => 20,
            Integrity::HmacSha256_128 => 32,
            Integrity::AesGmac128 => 16 + 4,
            Integrity::AesGmac192 => 24 + 4,
            Integrity::AesGmac256 => 32 + 4,
        }
    }

    /// ICV length in bytes.
    pub fn icv_len(self) -> usize {
        match self {
            Integrity::None => 0,
            Integrity::HmacSha1_96 => 12,
            Integrity::HmacSha256_128 => 16,
            Integrity::AesGmac128 | Integrity::AesGmac192 | Integrity::AesGmac256 => 16,
        }
    }

    /// True for the AES-GMAC transforms.
    pub fn is_gmac(self) -> bool {
        matches!(
            self,
            Integrity::AesGmac128 | Integrity::AesGmac192 | Integrity::AesGmac256
        )
    }
}

/// Secret key material. Zeroized on drop; `Debug` shows only the length.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key(Vec<u8>);

impl Key {
    /// Wrap key bytes (copied; the caller should zeroize its own copy).
    pub fn new(bytes: &[u8]) -> Self {
        Key(bytes.to_vec())
    }

    /// An empty key (for transforms that take none).
    pub fn empty() -> Self {
        Key(Vec::new())
    }

    /// The key bytes. Handle with care: never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no key bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes redacted>)", self.0.len())
    }
}

/// Outer addresses of a tunnel-mode SA, from this host's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunnelEndpoints {
    /// This host's tunnel endpoint (outer source for outbound, outer destination for inbound).
    pub local: IpAddr,
    /// The peer's tunnel endpoint.
    pub remote: IpAddr,
}

/// UDP encapsulation of ESP (RFC 3948, NAT traversal), from this host's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// This host's UDP port (usually 4500).
    pub local_port: u16,
    /// The peer's UDP port (usually 4500).
    pub remote_port: u16,
}

/// Everything that defines one SA (one direction, one protocol).
///
/// Addresses are from the SA owner's point of view: `tunnel.local` is the outer source of an
/// outbound SA and the outer destination of an inbound SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaParams {
    /// Security Parameters Index (host byte order).
    pub spi: u32,
    /// ESP or AH.
    pub protocol: Protocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// ESP cipher ([`Encryption::None`] for AH).
    pub encryption: Encryption,
    /// Cipher key material (GCM: key || salt).
    pub encryption_key: Key,
    /// Integrity transform ([`Integrity::None`] with AES-GCM).
    pub integrity: Integrity,
    /// Integrity key material (GMAC: key || salt).
    pub integrity_key: Key,
    /// Extended (64-bit) sequence numbers, RFC 4303 Appendix A.
    pub esn: bool,
    /// Outer addresses; required in tunnel mode, absent in transport mode.
    pub tunnel: Option<TunnelEndpoints>,
    /// UDP encapsulation (ESP only).
    pub udp_encap: Option<UdpEncap>,
}

/// Why a set of SA parameters cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamError {
    /// SPI values 0-255 are reserved (RFC 4303 §2.1).
    ReservedSpi,
    /// The encryption key length does not match the algorithm.
    EncryptionKeyLength,
    /// The integrity key length does not match the algorithm.
    IntegrityKeyLength,
    /// ESP with neither an AEAD cipher nor an integrity transform (RFC 4303 allows
    /// confidentiality-only ESP, this implementation refuses it as Windows does).
    NoIntegrity,
    /// An algorithm combination that makes no sense (e.g. GCM with an HMAC, AH with a cipher,
    /// NULL encryption with GMAC).
    InvalidCombination,
    /// Tunnel mode without tunnel endpoints, transport mode with them, or endpoints of mixed
    /// IP families.
    TunnelEndpoints,
    /// UDP encapsulation on an AH SA.
    UdpEncapOnAh,
    /// A bundle that is not 1 SA, or 2 SAs in the order ESP then AH with the same mode.
    InvalidBundle,
    /// The algorithm exists but the selected crypto provider cannot do it.
    UnsupportedByProvider,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamError::ReservedSpi => "SPI 0-255 is reserved",
            ParamError::EncryptionKeyLength => "encryption key length does not match the algorithm",
            ParamError::IntegrityKeyLength => "integrity key length does not match the algorithm",
            ParamError::NoIntegrity => "ESP without integrity protection is refused",
            ParamError::InvalidCombination => "invalid algorithm combination",
            ParamError::TunnelEndpoints => "tunnel endpoints do not match the mode",
            ParamError::UdpEncapOnAh => "UDP encapsulation applies to ESP only",
            ParamError::InvalidBundle => "a bundle is one SA, or ESP then AH",
            ParamError::UnsupportedByProvider => {
                "the crypto provider does not support this algorithm"
            }
        })
    }
}

impl std::error::Error for ParamError {}

impl SaParams {
    /// Check the parameters for internal consistency.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.spi < 256 {
            return Err(ParamError::ReservedSpi);
        }
        match self.protocol {
            Protocol::Ah => {
                if self.encryption != Encryption::None {
                    return Err(ParamError::InvalidCombination);
                }
                if self.integrity == Integrity::None {
                    return Err(ParamError::NoIntegrity);
                }
                if self.udp_encap.is_some() {
                    return Err(ParamError::UdpEncapOnAh);
                }
            }
            Protocol::Esp => {
                let aead = self.encryption.is_aead();
                match (aead, self.integrity) {
                    (true, Integrity::None) => {}
                    (true, _) => return Err(ParamError::InvalidCombination),
                    (false, Integrity::None) => return Err(ParamError::NoIntegrity),
                    (false, i) if i.is_gmac() && self.encryption != Encryption::None => {
                        return Err(ParamError::InvalidCombination);
                    }
                    (false, _) => {}
                }
            }
        }
        if self.encryption_key.len() != self.encryption.key_len() {
            return Err(ParamError::EncryptionKeyLength);
        }
        if self.integrity_key.len() != self.integrity.key_len() {
            return Err(ParamError::IntegrityKeyLength);
        }
        match (self.mode, self.tunnel) {
            (Mode::Transport, None) => {}
            (Mode::Tunnel, Some(t)) if t.local.is_ipv4() == t.remote.is_ipv4() => {}
            _ => return Err(ParamError::TunnelEndpoints),
        }
        Ok(())
    }

    /// Bytes of IV carried in each ESP packet (0 for AH and NULL encryption).
    pub fn iv_len(&self) -> usize {
        match self.protocol {
            Protocol::Ah => 0,
            Protocol::Esp => match self.encryption {
                Encryption::Null => 0,
                Encryption::None => {
                    if self.integrity.is_gmac() {
                        8
                    } else {
                        0
                    }
                }
                Encryption::AesGcm128 | Encryption::AesGcm192 | Encryption::AesGcm256 => 8,
                Encryption::AesCbc128 | Encryption::AesCbc192 | Encryption::AesCbc256 => 16,
            },
        }
    }

    /// ICV length in bytes.
    pub fn icv_len(&self) -> usize {
        if self.encryption.is_aead() {
            16
        } else {
            self.integrity.icv_len()
        }
    }

    /// The ESP payload alignment: the cipher block size, at least 4 (RFC 4303 §2.4).
    pub fn block_size(&self) -> usize {
        match self.encryption {
            Encryption::AesCbc128 | Encryption::AesCbc192 | Encryption::AesCbc256 => 16,
            _ => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp_gcm() -> SaParams {
        SaParams {
            spi: 0x1001,
            protocol: Protocol::Esp,
            mode: Mode::Transport,
            encryption: Encryption::AesGcm128,
            encryption_key: Key::new(&[7; 20]),
            integrity: Integrity::None,
            integrity_key: Key::empty(),
            esn: false,
            tunnel: None,
            udp_encap: None,
        }
    }

    #[test]
    fn valid_gcm() {
        assert_eq!(esp_gcm().validate(), Ok(()));
        assert_eq!(esp_gcm().iv_len(), 8);
        assert_eq!(esp_gcm().icv_len(), 16);
    }

    #[test]
    fn refusals() {
        let mut p = esp_gcm();
        p.spi = 255;
        assert_eq!(p.validate(), Err(ParamError::ReservedSpi));
        let mut p = esp_gcm();
        p.encryption_key = Key::new(&[0; 16]);
        assert_eq!(p.validate(), Err(ParamError::EncryptionKeyLength));
        let mut p = esp_gcm();
        p.encryption = Encryption::AesCbc128;
        p.encryption_key = Key::new(&[0; 16]);
        assert_eq!(p.validate(), Err(ParamError::NoIntegrity));
        let mut p = esp_gcm();
        p.integrity = Integrity::HmacSha1_96;
        p.integrity_key = Key::new(&[0; 20]);
        assert_eq!(p.validate(), Err(ParamError::InvalidCombination));
        let mut p = esp_gcm();
        p.mode = Mode::Tunnel;
        assert_eq!(p.validate(), Err(ParamError::TunnelEndpoints));
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = Key::new(&[0xAB; 16]);
        let s = format!("{k:?}");
        assert!(!s.to_lowercase().contains("ab"), "{s}");
        assert!(s.contains("16 bytes"));
    }
}
