//! Crypto providers: the primitives ESP and AH need, behind one trait, with two
//! implementations (RustCrypto and aws-lc-rs).
//!
//! Keys are expanded once, when an SA's transform is built ([`CryptoProvider::aes_gcm`] etc.),
//! never per packet. Every primitive works in place on caller-owned buffers and allocates
//! nothing per call.

use core::fmt;

use crate::params::ParamError;

/// A failed cryptographic operation. Deliberately carries no detail (no oracle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CryptoFailure;

impl fmt::Display for CryptoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cryptographic operation failed")
    }
}

impl std::error::Error for CryptoFailure {}

/// Which implementation of the primitives to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Pure-Rust RustCrypto crates (`aes-gcm`, `aes`, `cbc`, `hmac`, `sha1`, `sha2`).
    RustCrypto,
    /// aws-lc-rs (AWS-LC; much faster AES-GCM). Needs the crate feature `aws-lc`.
    AwsLc,
}

/// A keyed AES-GCM instance (RFC 4106 ESP, and AES-GMAC of RFC 4543 with empty plaintext).
///
/// The 4-byte salt is not part of the key here: callers build the 12-byte nonce
/// (salt || 8-byte IV) themselves.
pub trait AeadKey: Send + Sync {
    /// Encrypt `in_out` in place and write the 16-byte tag to `tag`.
    ///
    /// # Errors
    /// [`CryptoFailure`] if the provider refuses (e.g. input too long).
    fn seal_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; 16],
    ) -> Result<(), CryptoFailure>;

    /// Verify `tag` and decrypt `in_out` in place. On failure `in_out` may hold garbage and
    /// must not be used.
    ///
    /// # Errors
    /// [`CryptoFailure`] when the tag does not verify.
    fn open_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoFailure>;
}

/// A keyed AES-CBC instance without padding (RFC 3602: ESP does its own padding).
pub trait CbcKey: Send + Sync {
    /// Encrypt `data` (a multiple of 16 bytes) in place.
    ///
    /// # Errors
    /// [`CryptoFailure`] when `data.len()` is not a multiple of 16.
    fn encrypt_in_place(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure>;

    /// Decrypt `data` (a multiple of 16 bytes) in place.
    ///
    /// # Errors
    /// [`CryptoFailure`] when `data.len()` is not a multiple of 16.
    fn decrypt_in_place(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure>;

    /// Apply the forward cipher to one block (ECB), e.g. to derive an IV from a counter as
    /// NIST SP 800-38A Appendix C describes.
    fn encrypt_block(&self, block: &mut [u8; 16]);
}

/// A keyed HMAC instance (HMAC-SHA1 or HMAC-SHA-256).
pub trait MacKey: Send + Sync {
    /// Length of the full (untruncated) MAC: 20 or 32.
    fn output_len(&self) -> usize;

    /// MAC over the concatenation of `parts`, written (truncated to `out.len()`, at most
    /// [`MacKey::output_len`]) into `out`.
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]);

    /// Constant-time check that the MAC over `parts`, truncated to `expected.len()`, equals
    /// `expected`. An empty or over-long `expected` never verifies.
    fn verify(&self, parts: &[&[u8]], expected: &[u8]) -> bool;
}

/// Builds keyed primitives. One provider value is cheap to copy and shared by all SAs.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// Which implementation this is.
    fn kind(&self) -> ProviderKind;

    /// AES-GCM with a 16-, 24- or 32-byte key (no salt).
    ///
    /// # Errors
    /// [`ParamError::EncryptionKeyLength`] for another key length.
    fn aes_gcm(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, ParamError>;

    /// AES-CBC with a 16-, 24- or 32-byte key.
    ///
    /// # Errors
    /// [`ParamError::EncryptionKeyLength`] for another key length.
    fn aes_cbc(&self, key: &[u8]) -> Result<Box<dyn CbcKey>, ParamError>;

    /// HMAC-SHA1 (`sha256 == false`) or HMAC-SHA-256 over a key of any length.
    ///
    /// # Errors
    /// [`ParamError::IntegrityKeyLength`] for an empty key.
    fn hmac(&self, sha256: bool, key: &[u8]) -> Result<Box<dyn MacKey>, ParamError>;
}
