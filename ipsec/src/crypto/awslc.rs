//! The aws-lc-rs provider: AWS-LC's assembly AES-GCM (AES-NI + PCLMULQDQ/VAES, stitched),
//! AES and SHA. Built only with the crate feature `aws-lc`.
//!
//! # Key expansion
//!
//! Every key object is built once by [`AwsLcProvider`]'s constructors:
//! - AES-GCM holds an `aead::LessSafeKey` (an `EVP_AEAD_CTX` with the AES round keys and the
//!   GHASH table). Sealing uses `seal_in_place_separate_tag`, opening uses
//!   `open_in_place_separate_tag` (`EVP_AEAD_CTX_open_gather` with the tag passed
//!   separately), so ciphertext and tag never need to be contiguous and nothing is copied.
//! - AES-CBC holds a `cipher::EncryptingKey` and a `cipher::DecryptingKey` in CBC mode (no
//!   padding: AWS-LC's `AES_cbc_encrypt` over whole blocks, in place). The single-block forward
//!   cipher reuses the CBC encrypting key with an all-zero IV, because one CBC block under a
//!   zero IV is exactly `AES(K, block)`.
//! - HMAC holds an `hmac::Key` (an `HMAC_CTX` that has already absorbed `K ^ ipad` and
//!   `K ^ opad`, RFC 2104 section 2). Each call starts an `hmac::Context` from it, which is a
//!   flat `memcpy` of that `HMAC_CTX` (`HMAC_CTX_copy_ex`), never a new key schedule.
//!
//! The per-call values (`aead::Nonce`, `aead::Aad`, the CBC IV context, the HMAC context) live on
//! the stack: nothing is allocated per call.
//!
//! # Zeroization
//!
//! aws-lc-rs frees and cleanses its key material itself: the `EVP_AEAD_CTX` is released
//! with `EVP_AEAD_CTX_free` (AWS-LC's `OPENSSL_free` overwrites every allocation before
//! freeing it), the AES round keys of the CBC keys are zeroized on drop, every `HMAC_CTX`
//! (the key's and each per-call copy) is wiped with `OPENSSL_cleanse` by `HMAC_CTX_cleanup`,
//! and the temporary copy of the key bytes taken by `cipher::UnboundCipherKey` is zeroized
//! when it is consumed.
//!
//! # Panics inside aws-lc-rs
//!
//! `hmac::Key::new`, `hmac::Context::update` and `hmac::Context::sign` `expect()` on AWS-LC
//! return codes that only fail on internal errors (the context is flat and `HMAC_Update` has
//! no failure mode for a correctly initialised context); there is no fallible variant in the
//! public API. No packet-dependent input can make them fail.
//!
//! # Debug output
//!
//! [`AwsLcProvider`] holds no key; the key objects print only their algorithm.

use core::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::constant_time;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use super::{AeadKey, CbcKey, CryptoFailure, CryptoProvider, MacKey, ProviderKind};
use crate::params::ParamError;

/// The aws-lc-rs implementation of [`CryptoProvider`]. Stateless; copy it freely.
///
/// Supports AES-GCM-128/192/256 (aws-lc-rs has `AES_192_GCM`), AES-CBC-128/192/256 and
/// HMAC-SHA1 / HMAC-SHA-256.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AwsLcProvider;

impl AwsLcProvider {
    /// The provider (it has no state).
    pub const fn new() -> Self {
        AwsLcProvider
    }
}

impl CryptoProvider for AwsLcProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::AwsLc
    }

    fn aes_gcm(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, ParamError> {
        let algorithm = match key.len() {
            16 => &aead::AES_128_GCM,
            24 => &aead::AES_192_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(ParamError::EncryptionKeyLength),
        };
        let unbound =
            UnboundKey::new(algorithm, key).map_err(|_| ParamError::EncryptionKeyLength)?;
        Ok(Box::new(Gcm {
            key: LessSafeKey::new(unbound),
        }))
    }

    fn aes_cbc(&self, key: &[u8]) -> Result<Box<dyn CbcKey>, ParamError> {
        let algorithm = match key.len() {
            16 => &cipher::AES_128,
            24 => &cipher::AES_192,
            32 => &cipher::AES_256,
            _ => return Err(ParamError::EncryptionKeyLength),
        };
        let unbound =
            || UnboundCipherKey::new(algorithm, key).map_err(|_| ParamError::EncryptionKeyLength);
        let encrypt =
            EncryptingKey::cbc(unbound()?).map_err(|_| ParamError::UnsupportedByProvider)?;
        let decrypt =
            DecryptingKey::cbc(unbound()?).map_err(|_| ParamError::UnsupportedByProvider)?;
        Ok(Box::new(Cbc { encrypt, decrypt }))
    }

    fn hmac(&self, sha256: bool, key: &[u8]) -> Result<Box<dyn MacKey>, ParamError> {
        if key.is_empty() {
            return Err(ParamError::IntegrityKeyLength);
        }
        let algorithm = if sha256 {
            hmac::HMAC_SHA256
        } else {
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY
        };
        Ok(Box::new(Hmac {
            key: hmac::Key::new(algorithm, key),
        }))
    }
}

/// AES-GCM with a 96-bit nonce and 128-bit tag.
struct Gcm {
    key: LessSafeKey,
}

impl AeadKey for Gcm {
    fn seal_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; 16],
    ) -> Result<(), CryptoFailure> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        let computed = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
            .map_err(|_| CryptoFailure)?;
        *tag = computed.as_ref().try_into().map_err(|_| CryptoFailure)?;
        Ok(())
    }

    fn open_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoFailure> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        // AWS-LC checks the tag in constant time (CRYPTO_memcmp).
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, in_out)
            .map(|_| ())
            .map_err(|_| CryptoFailure)
    }
}

impl fmt::Debug for Gcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // LessSafeKey's own Debug prints only the algorithm.
        f.debug_struct("AwsLcAead").field("key", &self.key).finish()
    }
}

/// AES-CBC without padding.
struct Cbc {
    encrypt: EncryptingKey,
    decrypt: DecryptingKey,
}

impl CbcKey for Cbc {
    fn encrypt_in_place(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure> {
        if !data.len().is_multiple_of(16) {
            return Err(CryptoFailure);
        }
        let context = EncryptionContext::Iv128(FixedLength::from(iv));
        self.encrypt
            .less_safe_encrypt(data, context)
            .map(|_| ())
            .map_err(|_| CryptoFailure)
    }

    fn decrypt_in_place(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure> {
        if !data.len().is_multiple_of(16) {
            return Err(CryptoFailure);
        }
        let context = DecryptionContext::Iv128(FixedLength::from(iv));
        self.decrypt
            .decrypt(data, context)
            .map(|_| ())
            .map_err(|_| CryptoFailure)
    }

    fn encrypt_block(&self, block: &mut [u8; 16]) {
        // CBC over one block with a zero IV is the forward cipher: C = AES(K, P XOR 0).
        let context = EncryptionContext::Iv128(FixedLength::from([0u8; 16]));
        let result = self.encrypt.less_safe_encrypt(block, context);
        // INVARIANT: `less_safe_encrypt` fails only for a length that is not a multiple of the
        // block size or an IV context of the wrong kind; here the length is exactly 16 and the
        // context is the 128-bit IV CBC requires. Panicking is safer than silently returning
        // an unencrypted (predictable) block.
        #[allow(clippy::expect_used)]
        result.expect("one-block CBC encryption cannot fail");
    }
}

impl fmt::Debug for Cbc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // EncryptingKey's own Debug prints only the algorithm and mode.
        f.debug_struct("AwsLcCbc")
            .field("encrypt", &self.encrypt)
            .finish_non_exhaustive()
    }
}

/// HMAC keyed once; each call copies the pre-keyed `HMAC_CTX`.
struct Hmac {
    key: hmac::Key,
}

impl Hmac {
    fn full_mac(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(part);
        }
        context.sign()
    }
}

impl MacKey for Hmac {
    fn output_len(&self) -> usize {
        self.key.algorithm().tag_len()
    }

    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) {
        let full = self.full_mac(parts);
        // Bytes of `out` beyond the MAC length (a caller error) are zeroed.
        let mut source = full.as_ref().iter();
        for byte in out.iter_mut() {
            *byte = source.next().copied().unwrap_or(0);
        }
    }

    fn verify(&self, parts: &[&[u8]], expected: &[u8]) -> bool {
        if expected.is_empty() || expected.len() > self.output_len() {
            return false;
        }
        let full = self.full_mac(parts);
        match full.as_ref().get(..expected.len()) {
            Some(truncated) => constant_time::verify_slices_are_equal(truncated, expected).is_ok(),
            None => false,
        }
    }
}

impl fmt::Debug for Hmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // hmac::Key's own Debug prints only the digest algorithm.
        f.debug_struct("AwsLcHmac").field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_192_gcm_is_supported() {
        let key = AwsLcProvider::new().aes_gcm(&[7; 24]).unwrap();
        let mut tag = [0; 16];
        key.seal_in_place_detached(&[0; 12], b"", &mut [], &mut tag)
            .unwrap();
        key.open_in_place_detached(&[0; 12], b"", &mut [], &tag)
            .unwrap();
    }

    #[test]
    fn key_objects_debug_shows_no_key() {
        let p = AwsLcProvider::new();
        let key = [0x5cu8; 32];
        let gcm = Gcm {
            key: LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &key).unwrap()),
        };
        let texts = [
            format!("{gcm:?}"),
            format!(
                "{:?}",
                Cbc {
                    encrypt: EncryptingKey::cbc(
                        UnboundCipherKey::new(&cipher::AES_256, &key).unwrap()
                    )
                    .unwrap(),
                    decrypt: DecryptingKey::cbc(
                        UnboundCipherKey::new(&cipher::AES_256, &key).unwrap()
                    )
                    .unwrap(),
                }
            ),
            format!(
                "{:?}",
                Hmac {
                    key: hmac::Key::new(hmac::HMAC_SHA256, &key)
                }
            ),
            format!("{p:?}"),
        ];
        for text in texts {
            let lower = text.to_lowercase();
            assert!(!lower.contains("5c") && !lower.contains("92"), "{text}");
        }
    }

    #[test]
    fn output_lengths() {
        let p = AwsLcProvider::new();
        assert_eq!(p.hmac(false, b"k").unwrap().output_len(), 20);
        assert_eq!(p.hmac(true, b"k").unwrap().output_len(), 32);
    }
}
