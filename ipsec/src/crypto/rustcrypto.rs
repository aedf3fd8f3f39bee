//! The pure-Rust provider, built on the RustCrypto crates `aes-gcm`, `aes`, `cbc`, `hmac`,
//! `sha1` and `sha2`.
//!
//! # Key expansion
//!
//! Every key object is built once by [`RustCryptoProvider`]'s constructors:
//! - AES-GCM holds an `aes_gcm::AesGcm` (the AES round keys plus the GHASH key `H`, derived
//!   once);
//! - AES-CBC holds one `aes` block cipher (encryption and decryption round keys) and borrows it
//!   into a fresh `cbc::Encryptor`/`cbc::Decryptor` per call, which only copies the 16-byte IV;
//! - HMAC holds a `hmac::Hmac` whose inner and outer hash states have already absorbed
//!   `K ^ ipad` and `K ^ opad` (RFC 2104 section 2); each call clones that stack value and
//!   continues from it, so the key is never hashed again.
//!
//! Nothing is allocated per call.
//!
//! # Zeroization
//!
//! The crates are built with their `zeroize` features, so the AES round keys, the GHASH key,
//! the HMAC hash states (including each per-call clone) and the CBC chaining value are
//! overwritten with zeros when dropped. Not covered: the temporary `K ^ pad` block that `hmac`
//! builds on its own stack while a key is being set up, and copies the compiler may leave in
//! registers or spilled stack slots.
//!
//! # Debug output
//!
//! [`RustCryptoProvider`] holds no key; the key objects print only their algorithm.

use core::fmt;

use aes::cipher::array::Array;
use aes::cipher::consts::{U12, U16};
use aes::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, BlockSizeUser,
    InnerIvInit, KeyInit,
};
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::AesGcm;
use aes_gcm::aead::AeadInOut;
use hmac::digest::block_api::EagerHash;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use super::{AeadKey, CbcKey, CryptoFailure, CryptoProvider, MacKey, ProviderKind};
use crate::params::ParamError;

/// The RustCrypto implementation of [`CryptoProvider`]. Stateless; copy it freely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustCryptoProvider;

impl RustCryptoProvider {
    /// The provider (it has no state).
    pub const fn new() -> Self {
        RustCryptoProvider
    }
}

impl CryptoProvider for RustCryptoProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::RustCrypto
    }

    fn aes_gcm(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, ParamError> {
        match key.len() {
            16 => Gcm::<Aes128>::boxed(key, "AES-128-GCM"),
            24 => Gcm::<Aes192>::boxed(key, "AES-192-GCM"),
            32 => Gcm::<Aes256>::boxed(key, "AES-256-GCM"),
            _ => Err(ParamError::EncryptionKeyLength),
        }
    }

    fn aes_cbc(&self, key: &[u8]) -> Result<Box<dyn CbcKey>, ParamError> {
        match key.len() {
            16 => Cbc::<Aes128>::boxed(key, "AES-128-CBC"),
            24 => Cbc::<Aes192>::boxed(key, "AES-192-CBC"),
            32 => Cbc::<Aes256>::boxed(key, "AES-256-CBC"),
            _ => Err(ParamError::EncryptionKeyLength),
        }
    }

    fn hmac(&self, sha256: bool, key: &[u8]) -> Result<Box<dyn MacKey>, ParamError> {
        if key.is_empty() {
            return Err(ParamError::IntegrityKeyLength);
        }
        if sha256 {
            HmacKey::<sha2::Sha256>::boxed(key, "HMAC-SHA-256")
        } else {
            HmacKey::<sha1::Sha1>::boxed(key, "HMAC-SHA1")
        }
    }
}

/// AES-GCM with a 96-bit nonce and 128-bit tag (the only sizes RFC 4106 and RFC 4543 use).
struct Gcm<C> {
    aead: AesGcm<C, U12>,
    name: &'static str,
}

impl<C> Gcm<C>
where
    C: BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt + KeyInit + Send + Sync + 'static,
{
    fn boxed(key: &[u8], name: &'static str) -> Result<Box<dyn AeadKey>, ParamError> {
        let aead =
            AesGcm::<C, U12>::new_from_slice(key).map_err(|_| ParamError::EncryptionKeyLength)?;
        Ok(Box::new(Gcm { aead, name }))
    }
}

impl<C> AeadKey for Gcm<C>
where
    C: BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt + Send + Sync,
{
    fn seal_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; 16],
    ) -> Result<(), CryptoFailure> {
        let nonce: &Array<u8, U12> = nonce.into();
        let computed = self
            .aead
            .encrypt_inout_detached(nonce, aad, in_out.into())
            .map_err(|_| CryptoFailure)?;
        *tag = computed.into();
        Ok(())
    }

    fn open_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoFailure> {
        let nonce: &Array<u8, U12> = nonce.into();
        let tag: &Array<u8, U16> = tag.into();
        // aes-gcm compares the tag in constant time and leaves `in_out` untouched on failure.
        self.aead
            .decrypt_inout_detached(nonce, aad, in_out.into(), tag)
            .map_err(|_| CryptoFailure)
    }
}

impl<C> fmt::Debug for Gcm<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustCryptoAead")
            .field("algorithm", &self.name)
            .finish_non_exhaustive()
    }
}

/// AES-CBC without padding (RFC 3602), plus the raw forward cipher for one block.
struct Cbc<C> {
    cipher: C,
    name: &'static str,
}

impl<C> Cbc<C>
where
    C: BlockSizeUser<BlockSize = U16>
        + BlockCipherEncrypt
        + BlockCipherDecrypt
        + KeyInit
        + Send
        + Sync
        + 'static,
{
    fn boxed(key: &[u8], name: &'static str) -> Result<Box<dyn CbcKey>, ParamError> {
        let cipher = C::new_from_slice(key).map_err(|_| ParamError::EncryptionKeyLength)?;
        Ok(Box::new(Cbc { cipher, name }))
    }
}

/// Split `data` into whole 16-byte blocks, refusing a partial trailing block.
fn whole_blocks(data: &mut [u8]) -> Result<&mut [Array<u8, U16>], CryptoFailure> {
    let (blocks, tail) = Array::<u8, U16>::slice_as_chunks_mut(data);
    if tail.is_empty() {
        Ok(blocks)
    } else {
        Err(CryptoFailure)
    }
}

impl<C> CbcKey for Cbc<C>
where
    C: BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt + BlockCipherDecrypt + Send + Sync,
{
    fn encrypt_in_place(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure> {
        let blocks = whole_blocks(data)?;
        // Borrows the expanded key; only the IV is copied.
        let mut mode = cbc::Encryptor::<&C>::inner_iv_init(&self.cipher, iv.into());
        mode.encrypt_blocks(blocks);
        Ok(())
    }

    fn decrypt_in_place(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure> {
        let blocks = whole_blocks(data)?;
        let mut mode = cbc::Decryptor::<&C>::inner_iv_init(&self.cipher, iv.into());
        mode.decrypt_blocks(blocks);
        Ok(())
    }

    fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.cipher.encrypt_block(block.into());
    }
}

impl<C> fmt::Debug for Cbc<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustCryptoCbc")
            .field("algorithm", &self.name)
            .finish_non_exhaustive()
    }
}

/// HMAC keyed once; each call clones the pre-keyed state.
struct HmacKey<D: EagerHash> {
    keyed: Hmac<D>,
    name: &'static str,
}

impl<D> HmacKey<D>
where
    D: EagerHash + 'static,
    Hmac<D>: Mac + KeyInit + Clone + Send + Sync,
{
    fn boxed(key: &[u8], name: &'static str) -> Result<Box<dyn MacKey>, ParamError> {
        // RFC 2104 section 2: keys of any length are accepted (longer than the block size
        // are hashed first); hmac never rejects a length.
        let keyed = <Hmac<D> as KeyInit>::new_from_slice(key)
            .map_err(|_| ParamError::IntegrityKeyLength)?;
        Ok(Box::new(HmacKey { keyed, name }))
    }
}

impl<D> HmacKey<D>
where
    D: EagerHash,
    Hmac<D>: Mac + Clone,
{
    /// Run `f` over the full (untruncated) MAC of `parts`.
    fn with_full_mac<R>(&self, parts: &[&[u8]], f: impl FnOnce(&[u8]) -> R) -> R {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        let full = mac.finalize().into_bytes();
        f(full.as_slice())
    }
}

impl<D> MacKey for HmacKey<D>
where
    D: EagerHash,
    Hmac<D>: Mac + Clone + Send + Sync,
{
    fn output_len(&self) -> usize {
        <Hmac<D> as hmac::digest::OutputSizeUser>::output_size()
    }

    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) {
        self.with_full_mac(parts, |full| {
            // Bytes of `out` beyond the MAC length (a caller error) are zeroed.
            let mut source = full.iter();
            for byte in out.iter_mut() {
                *byte = source.next().copied().unwrap_or(0);
            }
        });
    }

    fn verify(&self, parts: &[&[u8]], expected: &[u8]) -> bool {
        if expected.is_empty() || expected.len() > self.output_len() {
            return false;
        }
        self.with_full_mac(parts, |full| match full.get(..expected.len()) {
            Some(truncated) => bool::from(truncated.ct_eq(expected)),
            None => false,
        })
    }
}

impl<D: EagerHash> fmt::Debug for HmacKey<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustCryptoHmac")
            .field("algorithm", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_are_checked() {
        let p = RustCryptoProvider::new();
        for len in [0, 15, 17, 20, 31, 33] {
            assert_eq!(
                p.aes_gcm(&vec![0; len]).err(),
                Some(ParamError::EncryptionKeyLength)
            );
            assert_eq!(
                p.aes_cbc(&vec![0; len]).err(),
                Some(ParamError::EncryptionKeyLength)
            );
        }
        assert_eq!(
            p.hmac(true, &[]).err(),
            Some(ParamError::IntegrityKeyLength)
        );
        assert_eq!(
            p.hmac(false, &[]).err(),
            Some(ParamError::IntegrityKeyLength)
        );
        assert!(p.hmac(false, &[1; 200]).is_ok());
    }

    #[test]
    fn key_objects_debug_shows_no_key() {
        let key = [0xa5u8; 32];
        let gcm = Gcm::<Aes256> {
            aead: AesGcm::new_from_slice(&key).unwrap(),
            name: "AES-256-GCM",
        };
        let cbc = Cbc::<Aes256> {
            cipher: Aes256::new_from_slice(&key).unwrap(),
            name: "x",
        };
        let mac = HmacKey::<sha2::Sha256> {
            keyed: <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap(),
            name: "HMAC-SHA-256",
        };
        for text in [format!("{gcm:?}"), format!("{cbc:?}"), format!("{mac:?}")] {
            assert!(!text.to_lowercase().contains("a5"), "{text}");
            assert!(!text.contains("165"), "{text}");
        }
    }

    #[test]
    fn compute_into_long_buffer_zero_fills() {
        let mac = RustCryptoProvider.hmac(false, b"key").unwrap();
        let mut out = [0xffu8; 24];
        mac.compute(&[b"data"], &mut out);
        assert_eq!(&out[20..], &[0; 4]);
        let mut short = [0u8; 12];
        mac.compute(&[b"da", b"ta"], &mut short);
        assert_eq!(&out[..12], &short);
    }
}
