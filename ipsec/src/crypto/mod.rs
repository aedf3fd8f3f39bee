//! Crypto providers: the primitives ESP and AH need, behind one trait, with two
//! implementations (RustCrypto and aws-lc-rs).
//!
//! Keys are expanded once, when an SA's transform is built ([`CryptoProvider::aes_gcm`] etc.),
//! never per packet. Every primitive works in place on caller-owned buffers and allocates
//! nothing per call.
//!
//! # The providers
//!
//! | | [`RustCryptoProvider`] | `AwsLcProvider` (feature `aws-lc`, on by default) |
//! |---|---|---|
//! | code | pure Rust: `aes-gcm`, `aes`, `cbc`, `hmac`, `sha1`, `sha2` | AWS-LC (C and assembly) via `aws-lc-rs` |
//! | AES-GCM | 128/192/256 | 128/192/256 |
//! | AES-CBC, one-block AES | 128/192/256 | 128/192/256 |
//! | HMAC | SHA1, SHA-256 | SHA1, SHA-256 |
//! | key state | expanded once; GCM also derives the GHASH key once; HMAC keeps the two pre-keyed hash states and clones them (on the stack) per call | `EVP_AEAD_CTX`, AES key schedules and a pre-keyed `HMAC_CTX`, built once; each HMAC call copies that flat context |
//! | zeroization | `zeroize` features of the crates: round keys, GHASH key, hash states (and their per-call clones) are wiped on drop | AWS-LC cleanses its contexts itself (`OPENSSL_free`/`OPENSSL_cleanse`, `HMAC_CTX_cleanup`), aws-lc-rs zeroizes AES keys and key-byte copies |
//! | Debug | no key bytes, only the algorithm | same |
//!
//! Both produce identical bytes (they are tested against the same published vectors and
//! against each other with random inputs). aws-lc-rs is several times faster at AES-GCM (see
//! `/work/shared/spec/performance.md`), so [`ProviderKind::fastest`] picks it when it is
//! compiled in, and the CLI and the benchmarks default to it; RustCrypto remains the portable
//! fallback (no C toolchain) and the differential reference.
//!
//! Use [`provider`] to get the shared `&'static` instance of a [`ProviderKind`]; parse a kind
//! from `"rustcrypto"` or `"aws-lc"` with [`str::parse`].
//!
//! ICV checks are constant time: `aes-gcm` and AWS-LC compare GCM tags in constant time, and
//! [`MacKey::verify`] uses `subtle` (RustCrypto) or `aws_lc_rs::constant_time` (aws-lc).

use core::fmt;
use core::str::FromStr;

use crate::params::ParamError;

#[cfg(feature = "aws-lc")]
mod awslc;
mod rustcrypto;

#[cfg(feature = "aws-lc")]
pub use awslc::AwsLcProvider;
pub use rustcrypto::RustCryptoProvider;

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

impl fmt::Debug for dyn AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl fmt::Debug for dyn CbcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CbcKey(<redacted>)")
    }
}

impl fmt::Debug for dyn MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacKey(<redacted>, output_len: {})", self.output_len())
    }
}

static RUSTCRYPTO: RustCryptoProvider = RustCryptoProvider::new();
#[cfg(feature = "aws-lc")]
static AWS_LC: AwsLcProvider = AwsLcProvider::new();

/// The shared instance of a provider.
///
/// # Errors
/// [`ParamError::UnsupportedByProvider`] for [`ProviderKind::AwsLc`] when the crate was built
/// without the `aws-lc` feature.
pub fn provider(kind: ProviderKind) -> Result<&'static dyn CryptoProvider, ParamError> {
    match kind {
        ProviderKind::RustCrypto => Ok(&RUSTCRYPTO),
        #[cfg(feature = "aws-lc")]
        ProviderKind::AwsLc => Ok(&AWS_LC),
        #[cfg(not(feature = "aws-lc"))]
        ProviderKind::AwsLc => Err(ParamError::UnsupportedByProvider),
    }
}

impl ProviderKind {
    /// The fastest provider compiled in: [`ProviderKind::AwsLc`] when the `aws-lc` feature is
    /// on, otherwise [`ProviderKind::RustCrypto`]. The CLI and the benchmarks default to it.
    pub fn fastest() -> Self {
        if cfg!(feature = "aws-lc") {
            ProviderKind::AwsLc
        } else {
            ProviderKind::RustCrypto
        }
    }

    /// Every provider compiled into this build, fastest first.
    pub fn available() -> &'static [ProviderKind] {
        #[cfg(feature = "aws-lc")]
        const AVAILABLE: &[ProviderKind] = &[ProviderKind::AwsLc, ProviderKind::RustCrypto];
        #[cfg(not(feature = "aws-lc"))]
        const AVAILABLE: &[ProviderKind] = &[ProviderKind::RustCrypto];
        AVAILABLE
    }

    /// The provider's name as [`FromStr`] accepts it: `"rustcrypto"` or `"aws-lc"`.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::RustCrypto => "rustcrypto",
            ProviderKind::AwsLc => "aws-lc",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider name that [`ProviderKind::from_str`] does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownProvider;

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown crypto provider (expected \"rustcrypto\" or \"aws-lc\")")
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    /// Parse `"rustcrypto"` or `"aws-lc"` (exact, lower case). A name parses even when that
    /// provider is not compiled in; [`provider`] reports that.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rustcrypto" => Ok(ProviderKind::RustCrypto),
            "aws-lc" => Ok(ProviderKind::AwsLc),
            _ => Err(UnknownProvider),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../testdata/ipsec-rfc-vectors.json");

    fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vectors(section: &str) -> Vec<serde_json::Value> {
        let all: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        all[section].as_array().unwrap().clone()
    }

    fn field(v: &serde_json::Value, name: &str) -> Vec<u8> {
        hex(v[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} missing in {}", v["id"])))
    }

    /// Every compiled-in provider.
    fn providers() -> Vec<&'static dyn CryptoProvider> {
        ProviderKind::available()
            .iter()
            .map(|&k| provider(k).unwrap())
            .collect()
    }

    fn nonce12(bytes: &[u8]) -> [u8; 12] {
        bytes.try_into().unwrap()
    }

    fn block16(bytes: &[u8]) -> [u8; 16] {
        bytes.try_into().unwrap()
    }

    #[test]
    fn provider_registry() {
        assert!(!ProviderKind::available().is_empty());
        assert!(ProviderKind::available().contains(&ProviderKind::fastest()));
        assert_eq!(ProviderKind::available()[0], ProviderKind::fastest());
        for &kind in ProviderKind::available() {
            let p = provider(kind).unwrap();
            assert_eq!(p.kind(), kind);
            assert_eq!(kind.name().parse::<ProviderKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!("rustcrypto".parse(), Ok(ProviderKind::RustCrypto));
        assert_eq!("aws-lc".parse(), Ok(ProviderKind::AwsLc));
        assert_eq!("AWS-LC".parse::<ProviderKind>(), Err(UnknownProvider));
        assert_eq!("".parse::<ProviderKind>(), Err(UnknownProvider));
        if cfg!(feature = "aws-lc") {
            assert_eq!(ProviderKind::fastest(), ProviderKind::AwsLc);
            assert_eq!(ProviderKind::available().len(), 2);
        } else {
            assert_eq!(ProviderKind::fastest(), ProviderKind::RustCrypto);
            assert_eq!(
                provider(ProviderKind::AwsLc).err(),
                Some(ParamError::UnsupportedByProvider)
            );
        }
    }

    #[test]
    fn hmac_vectors_full_truncated_multipart() {
        let all = vectors("hmac");
        assert_eq!(all.len(), 17);
        for p in providers() {
            for v in &all {
                let id = &v["id"];
                let sha256 = match v["hash"].as_str().unwrap() {
                    "SHA256" => true,
                    "SHA1" => false,
                    other => panic!("unexpected hash {other}"),
                };
                let (key, data) = (field(v, "key"), field(v, "data"));
                let (full, truncated) = (field(v, "full"), field(v, "truncated"));
                let mac = p.hmac(sha256, &key).unwrap();
                assert_eq!(mac.output_len(), full.len(), "{id}");

                let mut out = vec![0; full.len()];
                mac.compute(&[&data], &mut out);
                assert_eq!(out, full, "{id} {:?}", p.kind());

                let mut out = vec![0; truncated.len()];
                mac.compute(&[&data], &mut out);
                assert_eq!(out, truncated, "{id} {:?}", p.kind());

                // The same MAC over the data cut into uneven parts (and an empty part).
                let cut1 = data.len() / 3;
                let cut2 = data.len() - data.len() / 5;
                let parts: [&[u8]; 4] = [&data[..cut1], &[], &data[cut1..cut2], &data[cut2..]];
                mac.compute(&parts, &mut out);
                assert_eq!(out, truncated, "{id} multipart");

                assert!(mac.verify(&[&data], &full), "{id}");
                assert!(mac.verify(&[&data], &truncated), "{id}");
                assert!(mac.verify(&parts, &truncated), "{id}");
                let mut wrong = truncated.clone();
                wrong[truncated.len() - 1] ^= 1;
                assert!(!mac.verify(&[&data], &wrong), "{id}");
            }
        }
    }

    #[test]
    fn hmac_verify_rejects_empty_overlong_and_wrong() {
        for p in providers() {
            for (sha256, len) in [(false, 20), (true, 32)] {
                let mac = p.hmac(sha256, &[7; 20]).unwrap();
                let mut full = vec![0; len];
                mac.compute(&[b"payload"], &mut full);
                assert!(mac.verify(&[b"payload"], &full));
                assert!(!mac.verify(&[b"payload"], &[]));
                let mut longer = full.clone();
                longer.push(0);
                assert!(!mac.verify(&[b"payload"], &longer));
                assert!(!mac.verify(&[b"payload"], &vec![0; len]));
                assert!(!mac.verify(&[b"payloae"], &full));
                assert!(!mac.verify(&[b"payload", b"x"], &full[..12]));
            }
        }
    }

    #[test]
    fn aes_cbc_rfc3602_cases_1_to_4() {
        let all = vectors("aes_cbc");
        assert_eq!(all.len(), 4);
        for p in providers() {
            for v in &all {
                let id = &v["id"];
                let key = p.aes_cbc(&field(v, "key")).unwrap();
                let iv = block16(&field(v, "iv"));
                let (plain, cipher) = (field(v, "plaintext"), field(v, "ciphertext"));
                let mut buf = plain.clone();
                key.encrypt_in_place(&iv, &mut buf).unwrap();
                assert_eq!(buf, cipher, "{id} {:?}", p.kind());
                key.decrypt_in_place(&iv, &mut buf).unwrap();
                assert_eq!(buf, plain, "{id} {:?}", p.kind());
            }
        }
    }

    #[test]
    fn aes_single_block_fips197_appendix_c() {
        // FIPS 197 Appendix C.1-C.3: key 00 01 .. (16/24/32 bytes), plaintext 00 11 22 .. ff.
        let plain = hex("00112233445566778899aabbccddeeff");
        let cases = [
            (16, "69c4e0d86a7b0430d8cdb78070b4c55a"),
            (24, "dda97ca4864cdfe06eaf70a0ec0d7191"),
            (32, "8ea2b7ca516745bfeafc49904b496089"),
        ];
        for p in providers() {
            for (len, expected) in cases {
                let key_bytes: Vec<u8> = (0..len as u8).collect();
                let key = p.aes_cbc(&key_bytes).unwrap();
                let mut block = block16(&plain);
                key.encrypt_block(&mut block);
                assert_eq!(block.to_vec(), hex(expected), "{len} {:?}", p.kind());
                // One CBC block under a zero IV is the same forward cipher.
                let mut buf = plain.clone();
                key.encrypt_in_place(&[0; 16], &mut buf).unwrap();
                assert_eq!(buf, hex(expected));
            }
        }
    }

    #[test]
    fn aes_cbc_wrong_length_fails_without_panic() {
        for p in providers() {
            for key_len in [16, 24, 32] {
                let key = p.aes_cbc(&vec![3; key_len]).unwrap();
                for len in [1, 8, 15, 17, 31, 33, 1000] {
                    let mut buf = vec![0x5a; len];
                    assert_eq!(key.encrypt_in_place(&[1; 16], &mut buf), Err(CryptoFailure));
                    assert_eq!(key.decrypt_in_place(&[1; 16], &mut buf), Err(CryptoFailure));
                }
                let mut empty: [u8; 0] = [];
                assert_eq!(key.encrypt_in_place(&[1; 16], &mut empty), Ok(()));
                assert_eq!(key.decrypt_in_place(&[1; 16], &mut empty), Ok(()));
            }
        }
    }

    #[test]
    fn key_length_errors() {
        for p in providers() {
            for len in [0, 8, 15, 17, 20, 28, 36, 64] {
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
                p.hmac(false, &[]).err(),
                Some(ParamError::IntegrityKeyLength)
            );
            assert_eq!(
                p.hmac(true, &[]).err(),
                Some(ParamError::IntegrityKeyLength)
            );
        }
    }

    #[test]
    fn aes_gcm_esp_vectors_seal_and_open() {
        let all: Vec<_> = vectors("esp_packets")
            .into_iter()
            .filter(|v| v["algorithm"] == "AES-GCM-ESP")
            .collect();
        assert_eq!(all.len(), 16);
        for p in providers() {
            for v in &all {
                let id = &v["id"];
                let key = p.aes_gcm(&field(v, "key")).unwrap();
                let nonce = nonce12(&field(v, "nonce"));
                assert_eq!(&nonce[..4], field(v, "salt").as_slice(), "{id}");
                let (aad, plain) = (field(v, "aad"), field(v, "plaintext"));
                let expected = field(v, "ciphertext_and_tag");
                let (exp_ct, exp_tag) = expected.split_at(expected.len() - 16);

                let mut buf = plain.clone();
                let mut tag = [0; 16];
                key.seal_in_place_detached(&nonce, &aad, &mut buf, &mut tag)
                    .unwrap();
                assert_eq!(buf, exp_ct, "{id} {:?}", p.kind());
                assert_eq!(tag, exp_tag, "{id} {:?}", p.kind());

                key.open_in_place_detached(&nonce, &aad, &mut buf, &block16(exp_tag))
                    .unwrap();
                assert_eq!(buf, plain, "{id} {:?}", p.kind());
            }
        }
    }

    #[test]
    fn aes_gmac_esp_vector() {
        // RFC 4543 section 3.5 / draft-mcgrew-gcm-test-01 case 15: GMAC is GCM with an empty
        // plaintext; the AAD is SPI || sequence number || IV || payload (everything the ICV
        // covers), and the ICV is the last 16 bytes of the ESP packet.
        let all: Vec<_> = vectors("esp_packets")
            .into_iter()
            .filter(|v| v["algorithm"] == "AES-GMAC-ESP")
            .collect();
        assert_eq!(all.len(), 1);
        for p in providers() {
            for v in &all {
                let packet = field(v, "esp_packet");
                let (covered, icv) = packet.split_at(packet.len() - 16);
                assert_eq!(covered, field(v, "aad").as_slice());
                let key = p.aes_gcm(&field(v, "key")).unwrap();
                let nonce = nonce12(&field(v, "nonce"));
                let mut tag = [0; 16];
                key.seal_in_place_detached(&nonce, covered, &mut [], &mut tag)
                    .unwrap();
                assert_eq!(tag, icv, "{:?}", p.kind());
                key.open_in_place_detached(&nonce, covered, &mut [], &tag)
                    .unwrap();
                let mut bad = covered.to_vec();
                bad[20] ^= 0x80;
                assert_eq!(
                    key.open_in_place_detached(&nonce, &bad, &mut [], &tag),
                    Err(CryptoFailure)
                );
            }
        }
    }

    #[test]
    fn aes_gcm_tampering_is_rejected() {
        for p in providers() {
            for key_len in [16, 24, 32] {
                let key = p.aes_gcm(&vec![0x42; key_len]).unwrap();
                let nonce = [9u8; 12];
                let aad = b"spi+seq".to_vec();
                let plain: Vec<u8> = (0..77u8).collect();
                let mut ct = plain.clone();
                let mut tag = [0; 16];
                key.seal_in_place_detached(&nonce, &aad, &mut ct, &mut tag)
                    .unwrap();

                let open = |nonce: &[u8; 12], aad: &[u8], ct: &[u8], tag: &[u8; 16]| {
                    let mut buf = ct.to_vec();
                    key.open_in_place_detached(nonce, aad, &mut buf, tag)
                        .map(|()| buf)
                };
                assert_eq!(open(&nonce, &aad, &ct, &tag), Ok(plain.clone()));

                let mut bad_tag = tag;
                bad_tag[15] ^= 1;
                assert_eq!(open(&nonce, &aad, &ct, &bad_tag), Err(CryptoFailure));
                let mut bad_ct = ct.clone();
                bad_ct[40] ^= 0x10;
                assert_eq!(open(&nonce, &aad, &bad_ct, &tag), Err(CryptoFailure));
                let mut bad_aad = aad.clone();
                bad_aad[0] ^= 2;
                assert_eq!(open(&nonce, &bad_aad, &ct, &tag), Err(CryptoFailure));
                assert_eq!(open(&nonce, &aad[..6], &ct, &tag), Err(CryptoFailure));
                assert_eq!(open(&nonce, &aad, &ct[..76], &tag), Err(CryptoFailure));
                let mut bad_nonce = nonce;
                bad_nonce[11] ^= 4;
                assert_eq!(open(&bad_nonce, &aad, &ct, &tag), Err(CryptoFailure));
            }
        }
    }

    #[test]
    fn one_key_used_from_two_threads() {
        let v = vectors("esp_packets")
            .into_iter()
            .find(|v| v["algorithm"] == "AES-GCM-ESP")
            .unwrap();
        let (aad, plain, expected) = (
            field(&v, "aad"),
            field(&v, "plaintext"),
            field(&v, "ciphertext_and_tag"),
        );
        let nonce = nonce12(&field(&v, "nonce"));
        for p in providers() {
            let gcm = p.aes_gcm(&field(&v, "key")).unwrap();
            let cbc = p.aes_cbc(&[1; 32]).unwrap();
            let mac = p.hmac(true, &[2; 32]).unwrap();
            let mut reference = [0; 16];
            mac.compute(&[&plain], &mut reference);
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..200 {
                            let mut buf = plain.clone();
                            let mut tag = [0; 16];
                            gcm.seal_in_place_detached(&nonce, &aad, &mut buf, &mut tag)
                                .unwrap();
                            assert_eq!([buf.as_slice(), &tag].concat(), expected);
                            gcm.open_in_place_detached(&nonce, &aad, &mut buf, &tag)
                                .unwrap();
                            assert_eq!(buf, plain);

                            let mut block = [0u8; 64];
                            cbc.encrypt_in_place(&[3; 16], &mut block).unwrap();
                            cbc.decrypt_in_place(&[3; 16], &mut block).unwrap();
                            assert_eq!(block, [0; 64]);

                            assert!(mac.verify(&[&plain], &reference));
                        }
                    });
                }
            });
        }
    }

    #[test]
    fn debug_output_has_no_key_bytes() {
        // A key whose bytes would be recognizable in hex or decimal output.
        let key = [0xc3u8; 32];
        for p in providers() {
            let texts = [
                format!("{p:?}"),
                format!("{:?}", p.aes_gcm(&key[..16]).unwrap()),
                format!("{:?}", p.aes_cbc(&key).unwrap()),
                format!("{:?}", p.hmac(true, &key).unwrap()),
                format!("{:?}", p.hmac(false, &key[..20]).unwrap()),
            ];
            for text in texts {
                let lower = text.to_lowercase();
                assert!(!lower.contains("c3") && !lower.contains("195"), "{text}");
            }
        }
    }

    /// Differential tests: both providers must produce identical bytes for the same inputs.
    #[cfg(feature = "aws-lc")]
    mod differential {
        use proptest::prelude::*;

        use super::super::*;

        fn both() -> [&'static dyn CryptoProvider; 2] {
            [&RustCryptoProvider, &AwsLcProvider]
        }

        fn aes_key() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![Just(16usize), Just(24), Just(32)]
                .prop_flat_map(|len| proptest::collection::vec(any::<u8>(), len))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn gcm_identical(
                key in aes_key(),
                nonce in any::<[u8; 12]>(),
                aad in proptest::collection::vec(any::<u8>(), 0..48),
                data in proptest::collection::vec(any::<u8>(), 0..700),
            ) {
                let mut outputs = Vec::new();
                for p in both() {
                    let k = p.aes_gcm(&key).unwrap();
                    let mut buf = data.clone();
                    let mut tag = [0; 16];
                    k.seal_in_place_detached(&nonce, &aad, &mut buf, &mut tag).unwrap();
                    outputs.push((buf, tag));
                }
                prop_assert_eq!(&outputs[0], &outputs[1]);
                // Each provider opens what the other sealed.
                let (ct, tag) = &outputs[0];
                for p in both() {
                    let k = p.aes_gcm(&key).unwrap();
                    let mut buf = ct.clone();
                    k.open_in_place_detached(&nonce, &aad, &mut buf, tag).unwrap();
                    prop_assert_eq!(&buf, &data);
                    if !ct.is_empty() {
                        let mut bad = ct.clone();
                        let last = bad.len() - 1;
                        bad[last] ^= 0x01;
                        prop_assert!(k.open_in_place_detached(&nonce, &aad, &mut bad, tag).is_err());
                    }
                }
            }

            #[test]
            fn cbc_identical(
                key in aes_key(),
                iv in any::<[u8; 16]>(),
                blocks in proptest::collection::vec(any::<[u8; 16]>(), 0..40),
                len_error in 1usize..16,
            ) {
                let data = blocks.concat();
                let mut outputs = Vec::new();
                for p in both() {
                    let k = p.aes_cbc(&key).unwrap();
                    let mut buf = data.clone();
                    k.encrypt_in_place(&iv, &mut buf).unwrap();
                    let mut block = iv;
                    k.encrypt_block(&mut block);
                    outputs.push((buf, block));
                    let mut odd = vec![0u8; data.len() + len_error];
                    prop_assert_eq!(k.encrypt_in_place(&iv, &mut odd), Err(CryptoFailure));
                    prop_assert_eq!(k.decrypt_in_place(&iv, &mut odd), Err(CryptoFailure));
                }
                prop_assert_eq!(&outputs[0], &outputs[1]);
                for p in both() {
                    let k = p.aes_cbc(&key).unwrap();
                    let mut buf = outputs[0].0.clone();
                    k.decrypt_in_place(&iv, &mut buf).unwrap();
                    prop_assert_eq!(&buf, &data);
                }
            }

            #[test]
            fn hmac_identical(
                sha256 in any::<bool>(),
                key in proptest::collection::vec(any::<u8>(), 1..150),
                data in proptest::collection::vec(any::<u8>(), 0..400),
                cut in any::<prop::sample::Index>(),
                out_len in 1usize..=32,
            ) {
                let cut = cut.index(data.len() + 1);
                let parts: [&[u8]; 2] = [&data[..cut], &data[cut..]];
                let mut outputs = Vec::new();
                for p in both() {
                    let k = p.hmac(sha256, &key).unwrap();
                    let out_len = out_len.min(k.output_len());
                    let mut whole = vec![0; out_len];
                    k.compute(&[&data], &mut whole);
                    let mut split = vec![0; out_len];
                    k.compute(&parts, &mut split);
                    prop_assert_eq!(&whole, &split);
                    prop_assert!(k.verify(&parts, &whole));
                    outputs.push(whole);
                }
                prop_assert_eq!(&outputs[0], &outputs[1]);
            }
        }
    }
}
