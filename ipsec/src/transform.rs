//! One keyed SA: the cryptographic transform of ESP (RFC 4303) or AH (RFC 4302).
//!
//! A [`Transform`] is built once per SA ([`Transform::new`]): the provider expands the keys
//! then, never per packet. It seals/opens one ESP packet in place ([`Transform::seal_esp`],
//! [`Transform::open_esp`]) and computes/verifies the AH ICV over a whole IP packet
//! ([`Transform::seal_ah`], [`Transform::open_ah`]). Framing is done elsewhere
//! ([`crate::Bundle::encapsulate`]).

use core::fmt;
use core::ops::Range;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{AeadKey, CbcKey, MacKey, ProviderKind, provider};
use crate::error::CryptoError;
use crate::params::{
    Encryption, Integrity, Mode, ParamError, Protocol, SaParams, TunnelEndpoints, UdpEncap,
};
use crate::wire::{ah, esp, get_u8, get_u32, ipv4, ipv6, set_bytes, set_u8};

/// Largest IP packet an AH SA with AES-GMAC *and* ESN can protect: its AAD (the packet followed
/// by the high sequence bits, RFC 4302 §3.3.3.2.2) is not contiguous in the packet, so it is
/// assembled in a bounded stack scratch buffer of this size (jumbo frame) plus 4 bytes.
pub const MAX_AH_GMAC_ESN_PACKET: usize = 9216;

/// The 4-byte GCM/GMAC salt (RFC 4106 §8.1, RFC 4543 §3.2); zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Salt([u8; 4]);

/// The keyed primitives of one SA.
enum Keys {
    /// ESP AES-GCM (RFC 4106).
    Gcm { aead: Box<dyn AeadKey>, salt: Salt },
    /// AES-GMAC (RFC 4543), ESP or AH.
    Gmac { aead: Box<dyn AeadKey>, salt: Salt },
    /// ESP AES-CBC (RFC 3602) with an HMAC; `mac` is `None` only for the published
    /// confidentiality-only vectors (RFC 3602 §4), never through [`Transform::new`].
    Cbc {
        cbc: Box<dyn CbcKey>,
        mac: Option<Box<dyn MacKey>>,
    },
    /// ESP NULL encryption (RFC 2410) with an HMAC, or AH with an HMAC.
    Hmac { mac: Box<dyn MacKey> },
}

/// Which of the two operations a shared routine performs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Seal,
    Open,
}

/// One keyed SA (ESP or AH): [`SaParams`] without the raw keys plus the keyed primitives.
///
/// `Debug` never prints key material; keys are zeroized on drop (the salt here, the expanded
/// keys by the providers).
pub struct Transform {
    spi: u32,
    protocol: Protocol,
    mode: Mode,
    esn: bool,
    encryption: Encryption,
    integrity: Integrity,
    provider: ProviderKind,
    iv_len: usize,
    icv_len: usize,
    block_size: usize,
    tunnel: Option<TunnelEndpoints>,
    udp_encap: Option<UdpEncap>,
    keys: Keys,
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transform")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("protocol", &self.protocol)
            .field("mode", &self.mode)
            .field("encryption", &self.encryption)
            .field("integrity", &self.integrity)
            .field("esn", &self.esn)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// What [`Transform::open_esp`] found in a verified, decrypted ESP packet. Ranges are relative
/// to the start of the ESP header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EspOpened {
    /// The payload (after the IV, before the padding).
    pub payload: Range<usize>,
    /// Pad length.
    pub pad_len: u8,
    /// Next header.
    pub next_header: u8,
}

fn split_salt(material: &[u8]) -> Result<(&[u8], Salt), ParamError> {
    let k = material
        .len()
        .checked_sub(4)
        .ok_or(ParamError::EncryptionKeyLength)?;
    let (key, salt) = material.split_at(k);
    let mut s = [0u8; 4];
    s.copy_from_slice(salt);
    Ok((key, Salt(s)))
}

fn nonce(salt: &Salt, iv: &[u8]) -> Result<[u8; 12], CryptoError> {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&salt.0);
    n[4..].copy_from_slice(iv.get(..8).ok_or(CryptoError::InvalidSyntax)?);
    Ok(n)
}

impl Transform {
    /// Validate `params` and key the SA's primitives with the chosen provider.
    ///
    /// # Errors
    /// Any [`SaParams::validate`] error; [`ParamError::UnsupportedByProvider`] when the provider
    /// is not compiled in; key-length errors from the provider.
    pub fn new(params: &SaParams, provider: ProviderKind) -> Result<Transform, ParamError> {
        params.validate()?;
        Self::build(params, provider, false)
    }

    /// Key a transform without [`SaParams::validate`] (reserved SPIs, ESP without integrity).
    /// Only for running published test vectors through the same code path.
    #[cfg(test)]
    pub(crate) fn new_for_vectors(
        params: &SaParams,
        kind: ProviderKind,
    ) -> Result<Transform, ParamError> {
        Self::build(params, kind, true)
    }

    fn build(
        params: &SaParams,
        kind: ProviderKind,
        allow_unauthenticated: bool,
    ) -> Result<Transform, ParamError> {
        let p = provider(kind)?;
        let ekey = params.encryption_key.expose();
        let ikey = params.integrity_key.expose();
        let hmac = |i: Integrity| -> Result<Box<dyn MacKey>, ParamError> {
            match i {
                Integrity::HmacSha1_96 => p.hmac(false, ikey),
                Integrity::HmacSha256_128 => p.hmac(true, ikey),
                _ => Err(ParamError::InvalidCombination),
            }
        };
        let keys = match (params.protocol, params.encryption, params.integrity) {
            (Protocol::Esp, e, Integrity::None) if e.is_aead() => {
                let (key, salt) = split_salt(ekey)?;
                Keys::Gcm {
                    aead: p.aes_gcm(key)?,
                    salt,
                }
            }
            (Protocol::Esp | Protocol::Ah, Encryption::None, i) if i.is_gmac() => {
                let (key, salt) = split_salt(ikey).map_err(|_| ParamError::IntegrityKeyLength)?;
                Keys::Gmac {
                    aead: p.aes_gcm(key)?,
                    salt,
                }
            }
            (
                Protocol::Esp,
                Encryption::AesCbc128 | Encryption::AesCbc192 | Encryption::AesCbc256,
                i,
            ) => {
                let mac = match i {
                    Integrity::None if allow_unauthenticated => None,
                    Integrity::None => return Err(ParamError::NoIntegrity),
                    i => Some(hmac(i)?),
                };
                Keys::Cbc {
                    cbc: p.aes_cbc(ekey)?,
                    mac,
                }
            }
            (Protocol::Esp, Encryption::Null, i) | (Protocol::Ah, Encryption::None, i) => {
                Keys::Hmac { mac: hmac(i)? }
            }
            _ => return Err(ParamError::InvalidCombination),
        };
        let iv_len = match &keys {
            Keys::Gcm { .. } | Keys::Gmac { .. } => 8,
            Keys::Cbc { .. } => 16,
            Keys::Hmac { .. } => 0,
        };
        Ok(Transform {
            spi: params.spi,
            protocol: params.protocol,
            mode: params.mode,
            esn: params.esn,
            encryption: params.encryption,
            integrity: params.integrity,
            provider: kind,
            iv_len,
            icv_len: match &keys {
                Keys::Cbc { mac: None, .. } => 0,
                _ => params.icv_len(),
            },
            block_size: params.block_size(),
            tunnel: params.tunnel,
            udp_encap: params.udp_encap,
            keys,
        })
    }

    /// The SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// ESP or AH.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Transport or tunnel.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Extended sequence numbers in use.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The crypto provider the keys were built with.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// The ESP cipher.
    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    /// The integrity algorithm.
    pub fn integrity(&self) -> Integrity {
        self.integrity
    }

    /// Bytes of IV per packet: 8 (GCM, GMAC), 16 (CBC), 0 (NULL, AH with HMAC). For AH with
    /// GMAC the IV sits at the start of the AH ICV field (RFC 4543 §4).
    pub fn iv_len(&self) -> usize {
        self.iv_len
    }

    /// Bytes of ICV (authentication tag) per packet, without AH alignment padding.
    pub fn icv_len(&self) -> usize {
        self.icv_len
    }

    /// ESP payload alignment: the cipher block size, at least 4 (RFC 4303 §2.4).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Tunnel endpoints (tunnel mode).
    pub fn tunnel(&self) -> Option<TunnelEndpoints> {
        self.tunnel
    }

    /// UDP encapsulation (ESP).
    pub fn udp_encap(&self) -> Option<UdpEncap> {
        self.udp_encap
    }

    /// Length of the AH ICV field (IV + tag for GMAC), with the padding the outer IP family
    /// needs (RFC 4302 §2.6).
    pub fn ah_icv_field_len(&self, ipv6: bool) -> usize {
        ah::icv_field_len(self.iv_len + self.icv_len, ipv6)
    }

    fn auth_failed(&self) -> CryptoError {
        CryptoError::AuthFailed {
            protocol: self.protocol,
            mode: self.mode,
        }
    }

    /// The per-packet IV for sequence number `seq`, written to `out[..iv_len]`.
    ///
    /// GCM / GMAC (RFC 4106 §3.1, RFC 4543 §3.1): the 64-bit sequence number, big-endian:
    /// unique per packet under one key, which is all a counter-mode IV needs.
    /// CBC (RFC 3602 §3 wants it unpredictable): `AES_K(0^64 || seq)`, the forward cipher
    /// applied to a counter nonce under the SA's key (NIST SP 800-38A Appendix C), so it is
    /// unpredictable to others yet the NIC and the software path produce the same bytes.
    pub fn derive_iv(&self, seq: u64, out: &mut [u8; 16]) -> usize {
        *out = [0; 16];
        match &self.keys {
            Keys::Gcm { .. } | Keys::Gmac { .. } => {
                out[..8].copy_from_slice(&seq.to_be_bytes());
                8
            }
            Keys::Cbc { cbc, .. } => {
                out[8..].copy_from_slice(&seq.to_be_bytes());
                cbc.encrypt_block(out);
                16
            }
            Keys::Hmac { .. } => 0,
        }
    }

    /// Split an ESP packet into (IV start, body range, ICV start) after checking lengths and the
    /// header's SPI/low sequence bits against `seq`.
    fn esp_layout(&self, esp: &[u8], seq: u64) -> Result<Range<usize>, CryptoError> {
        if self.protocol != Protocol::Esp {
            return Err(CryptoError::ProtocolMismatch);
        }
        let body_start = esp::HEADER_LEN + self.iv_len;
        let body_end = esp
            .len()
            .checked_sub(self.icv_len)
            .ok_or(CryptoError::InvalidSyntax)?;
        if body_end < body_start + esp::TRAILER_LEN {
            return Err(CryptoError::InvalidSyntax);
        }
        if matches!(self.keys, Keys::Cbc { .. }) && !(body_end - body_start).is_multiple_of(16) {
            return Err(CryptoError::InvalidSyntax);
        }
        if get_u32(esp, 4) != seq as u32 || (!self.esn && seq > u64::from(u32::MAX)) {
            return Err(CryptoError::InvalidSyntax);
        }
        Ok(body_start..body_end)
    }

    /// AAD of ESP with AES-GCM (RFC 4106 §5): SPI | seq (32 bits), or SPI | seq_hi | seq_lo
    /// with ESN. Returns the buffer and its length.
    fn gcm_aad(&self, esp: &[u8], seq: u64) -> ([u8; 12], usize) {
        let mut aad = [0u8; 12];
        let spi = get_u32(esp, 0).to_be_bytes();
        aad[..4].copy_from_slice(&spi);
        if self.esn {
            aad[4..8].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
            aad[8..].copy_from_slice(&(seq as u32).to_be_bytes());
            (aad, 12)
        } else {
            aad[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
            (aad, 8)
        }
    }

    /// ESP with AES-GMAC (RFC 4543 §3.2-3.3): the tag over AAD = SPI | [seq_hi |] seq_lo | IV |
    /// payload | padding | pad length | next header, with an empty plaintext.
    ///
    /// Without ESN the AAD is the contiguous `esp[..body_end]`. With ESN the 4 high bytes must
    /// sit between SPI and seq_lo: this uses an in-place save/restore trick instead of a
    /// scratch copy: the ICV area (16 bytes after `body_end`) is saved, `esp[4..body_end]` is
    /// moved 4 bytes right into it, seq_hi is written at `esp[4..8]`, the tag is computed over
    /// `esp[..body_end + 4]`, then the bytes are moved back and the ICV area restored.
    fn gmac_esp(
        &self,
        aead: &dyn AeadKey,
        salt: &Salt,
        esp: &mut [u8],
        body_end: usize,
        seq: u64,
        op: Op,
    ) -> Result<(), CryptoError> {
        let n = nonce(salt, esp.get(8..16).ok_or(CryptoError::InvalidSyntax)?)?;
        let mut tag = [0u8; 16];
        tag.copy_from_slice(
            esp.get(body_end..body_end + 16)
                .ok_or(CryptoError::InvalidSyntax)?,
        );
        let result = if self.esn {
            let saved = tag;
            // INVARIANT: body_end + 16 <= esp.len() (the ICV was read above) and
            // body_end >= 8, so both moves stay inside `esp`.
            esp.copy_within(4..body_end, 8);
            crate::wire::set_bytes(esp, 4, &((seq >> 32) as u32).to_be_bytes());
            let aad = esp.get(..body_end + 4).ok_or(CryptoError::InvalidSyntax)?;
            let r = match op {
                Op::Seal => aead.seal_in_place_detached(&n, aad, &mut [], &mut tag),
                Op::Open => aead.open_in_place_detached(&n, aad, &mut [], &tag),
            };
            esp.copy_within(8..body_end + 4, 4);
            if op == Op::Open {
                tag = saved;
            }
            r
        } else {
            let aad = esp.get(..body_end).ok_or(CryptoError::InvalidSyntax)?;
            match op {
                Op::Seal => aead.seal_in_place_detached(&n, aad, &mut [], &mut tag),
                Op::Open => aead.open_in_place_detached(&n, aad, &mut [], &tag),
            }
        };
        // Seal: the new tag; open: restore the received tag (the ESN trick overwrote it).
        if let Some(icv) = esp.get_mut(body_end..body_end + 16) {
            icv.copy_from_slice(&tag);
        }
        match (result, op) {
            (Ok(()), _) => Ok(()),
            (Err(_), Op::Open) => Err(self.auth_failed()),
            (Err(_), Op::Seal) => Err(CryptoError::InvalidSyntax),
        }
    }

    /// Seal one framed ESP packet in place with a caller-given IV: write `iv`, encrypt the
    /// payload + trailer, write the ICV.
    ///
    /// `esp` runs from the ESP header to the end of the ICV; the header (SPI, low 32 bits of
    /// `seq`) and the plaintext trailer must already be there (see
    /// [`crate::Bundle::encapsulate`]). `seq` is the full sequence number (its high half only
    /// matters with ESN, RFC 4303 §2.2.1). [`crate::Bundle::protect`] calls this with the IV of
    /// [`Transform::derive_iv`]; tests call it with the published vectors' IVs.
    ///
    /// # Errors
    /// [`CryptoError::InvalidSyntax`] for lengths (too short, not a block multiple, IV length)
    /// or a header sequence number other than `seq`'s low bits;
    /// [`CryptoError::ProtocolMismatch`] on an AH transform.
    pub fn seal_esp(&self, esp: &mut [u8], seq: u64, iv: &[u8]) -> Result<(), CryptoError> {
        let body = self.esp_layout(esp, seq)?;
        if iv.len() != self.iv_len {
            return Err(CryptoError::InvalidSyntax);
        }
        esp.get_mut(esp::HEADER_LEN..body.start)
            .ok_or(CryptoError::InvalidSyntax)?
            .copy_from_slice(iv);
        self.crypt_esp(esp, body, seq, Op::Seal)
    }

    /// Verify and decrypt one ESP packet in place and check its trailer (RFC 4303 §3.4.4:
    /// integrity first, then decryption, then the padding of §2.4).
    ///
    /// `esp` runs from the ESP header to the end of the ICV; `seq` is the full (ESN-inferred)
    /// sequence number whose low 32 bits must match the header.
    ///
    /// # Errors
    /// [`CryptoError::AuthFailed`], [`CryptoError::BadPadding`], [`CryptoError::InvalidSyntax`],
    /// [`CryptoError::ProtocolMismatch`].
    pub fn open_esp(&self, esp: &mut [u8], seq: u64) -> Result<EspOpened, CryptoError> {
        let body = self.esp_layout(esp, seq)?;
        self.crypt_esp(esp, body.clone(), seq, Op::Open)?;
        let plain = esp.get(body.clone()).ok_or(CryptoError::InvalidSyntax)?;
        let t = esp::TrailerRepr::parse(plain).map_err(|_| CryptoError::BadPadding)?;
        let payload_end = body.end - t.buffer_len();
        Ok(EspOpened {
            payload: body.start..payload_end,
            pad_len: t.pad_len,
            next_header: t.next_header,
        })
    }

    fn crypt_esp(
        &self,
        esp: &mut [u8],
        body: Range<usize>,
        seq: u64,
        op: Op,
    ) -> Result<(), CryptoError> {
        let hi = ((seq >> 32) as u32).to_be_bytes();
        let esn_tail: &[u8] = if self.esn { &hi } else { &[] };
        match &self.keys {
            Keys::Gcm { aead, salt } => {
                let n = nonce(salt, esp.get(8..16).ok_or(CryptoError::InvalidSyntax)?)?;
                let (aad, aad_len) = self.gcm_aad(esp, seq);
                let (_, rest) = esp.split_at_mut(body.start);
                let (data, icv) = rest.split_at_mut(body.end - body.start);
                let tag: &mut [u8; 16] = icv.try_into().map_err(|_| CryptoError::InvalidSyntax)?;
                let aad = aad.get(..aad_len).ok_or(CryptoError::InvalidSyntax)?;
                match op {
                    Op::Seal => aead
                        .seal_in_place_detached(&n, aad, data, tag)
                        .map_err(|_| CryptoError::InvalidSyntax),
                    Op::Open => aead
                        .open_in_place_detached(&n, aad, data, tag)
                        .map_err(|_| self.auth_failed()),
                }
            }
            Keys::Gmac { aead, salt } => self.gmac_esp(aead.as_ref(), salt, esp, body.end, seq, op),
            Keys::Cbc { cbc, mac } => {
                let mut iv = [0u8; 16];
                iv.copy_from_slice(esp.get(8..24).ok_or(CryptoError::InvalidSyntax)?);
                match op {
                    Op::Seal => {
                        let data = esp
                            .get_mut(body.clone())
                            .ok_or(CryptoError::InvalidSyntax)?;
                        cbc.encrypt_in_place(&iv, data)
                            .map_err(|_| CryptoError::InvalidSyntax)?;
                        if let Some(mac) = mac {
                            // RFC 4303 §2.2.1 / §3.3.2: ICV over SPI..Next Header, then seq_hi.
                            let (covered, icv) = esp.split_at_mut(body.end);
                            mac.compute(&[covered, esn_tail], icv);
                        }
                        Ok(())
                    }
                    Op::Open => {
                        if let Some(mac) = mac {
                            let (covered, icv) = esp.split_at(body.end);
                            if !mac.verify(&[covered, esn_tail], icv) {
                                return Err(self.auth_failed());
                            }
                        }
                        let data = esp.get_mut(body).ok_or(CryptoError::InvalidSyntax)?;
                        cbc.decrypt_in_place(&iv, data)
                            .map_err(|_| CryptoError::InvalidSyntax)
                    }
                }
            }
            Keys::Hmac { mac } => {
                let (covered, icv) = esp.split_at_mut(body.end);
                match op {
                    Op::Seal => {
                        mac.compute(&[covered, esn_tail], icv);
                        Ok(())
                    }
                    Op::Open if mac.verify(&[covered, esn_tail], icv) => Ok(()),
                    Op::Open => Err(self.auth_failed()),
                }
            }
        }
    }

    /// Compute and write the AH ICV of a framed IP packet (RFC 4302 §3.3.3): `packet` is the
    /// whole IP packet (its length the IP length), `ah_off` the offset of the AH header.
    /// With GMAC the IV (the sequence number, big-endian) is written first (RFC 4543 §4).
    ///
    /// # Errors
    /// [`CryptoError::InvalidSyntax`], [`CryptoError::Unsupported`] (IPv4 source-route options,
    /// an AES-GMAC ESN packet over [`MAX_AH_GMAC_ESN_PACKET`]).
    pub fn seal_ah(&self, packet: &mut [u8], ah_off: usize, seq: u64) -> Result<(), CryptoError> {
        self.ah_icv(packet, ah_off, seq, Op::Seal)
    }

    /// Verify the AH ICV of an IP packet (RFC 4302 §3.4.4). The packet is left unchanged.
    ///
    /// # Errors
    /// [`CryptoError::AuthFailed`] and as [`Transform::seal_ah`].
    pub fn open_ah(&self, packet: &mut [u8], ah_off: usize, seq: u64) -> Result<(), CryptoError> {
        self.ah_icv(packet, ah_off, seq, Op::Open)
    }

    fn ah_icv(
        &self,
        packet: &mut [u8],
        ah_off: usize,
        seq: u64,
        op: Op,
    ) -> Result<(), CryptoError> {
        if self.protocol != Protocol::Ah {
            return Err(CryptoError::ProtocolMismatch);
        }
        let view = ah::Packet::new_checked(packet.get(ah_off..).ok_or(CryptoError::InvalidSyntax)?)
            .map_err(|_| CryptoError::InvalidSyntax)?;
        if view.seq_number() != seq as u32 || (!self.esn && seq > u64::from(u32::MAX)) {
            return Err(CryptoError::InvalidSyntax);
        }
        if view.header_len() < ah::FIXED_LEN + self.iv_len + self.icv_len {
            return Err(CryptoError::InvalidSyntax);
        }
        let iv_at = ah_off + ah::FIXED_LEN;
        let tag_at = iv_at + self.iv_len;
        let tag_range = tag_at..tag_at + self.icv_len;
        if op == Op::Seal && self.iv_len == 8 {
            packet
                .get_mut(iv_at..tag_at)
                .ok_or(CryptoError::InvalidSyntax)?
                .copy_from_slice(&seq.to_be_bytes());
        }
        // Save the received ICV, then zero it for the computation (RFC 4302 §3.3.3.1).
        let mut received = [0u8; 16];
        let icv = packet
            .get_mut(tag_range.clone())
            .ok_or(CryptoError::InvalidSyntax)?;
        received
            .get_mut(..icv.len())
            .ok_or(CryptoError::InvalidSyntax)?
            .copy_from_slice(icv);
        icv.fill(0);
        let saved = MutableFields::zero(packet)?;
        let result = self.ah_tag(packet, seq, op, &received);
        saved.restore(packet);
        let icv = packet
            .get_mut(tag_range)
            .ok_or(CryptoError::InvalidSyntax)?;
        match (op, result) {
            (Op::Seal, Ok(tag)) => {
                icv.copy_from_slice(tag.get(..icv.len()).ok_or(CryptoError::InvalidSyntax)?);
                Ok(())
            }
            (Op::Open, r) => {
                let n = icv.len();
                icv.copy_from_slice(received.get(..n).ok_or(CryptoError::InvalidSyntax)?);
                r.map(|_| ())
            }
            (Op::Seal, Err(e)) => Err(e),
        }
    }

    /// The AH tag over the prepared (mutable fields and ICV zeroed) packet; on open, verified
    /// against `received`.
    fn ah_tag(
        &self,
        packet: &[u8],
        seq: u64,
        op: Op,
        received: &[u8; 16],
    ) -> Result<[u8; 16], CryptoError> {
        // RFC 4302 §3.3.3.2.2: with ESN the high 32 bits are appended after the packet.
        let hi = ((seq >> 32) as u32).to_be_bytes();
        let esn_tail: &[u8] = if self.esn { &hi } else { &[] };
        let mut tag = [0u8; 16];
        match &self.keys {
            Keys::Hmac { mac } => match op {
                Op::Seal => {
                    let out = tag
                        .get_mut(..self.icv_len)
                        .ok_or(CryptoError::InvalidSyntax)?;
                    mac.compute(&[packet, esn_tail], out);
                    Ok(tag)
                }
                Op::Open => {
                    let exp = received
                        .get(..self.icv_len)
                        .ok_or(CryptoError::InvalidSyntax)?;
                    if mac.verify(&[packet, esn_tail], exp) {
                        Ok(tag)
                    } else {
                        Err(self.auth_failed())
                    }
                }
            },
            Keys::Gmac { aead, salt } => {
                // RFC 4543 §4: AH Authentication Data = IV | tag; nonce = salt | IV; the AAD
                // is the whole packet as AH defines it (mutable fields and tag zeroed; the IV
                // is an input and stays).
                let ah_iv = self.find_ah_iv(packet)?;
                let n = nonce(salt, &ah_iv)?;
                let mut scratch = [0u8; MAX_AH_GMAC_ESN_PACKET + 4];
                let aad: &[u8] = if self.esn {
                    let len = packet.len();
                    let s = scratch.get_mut(..len + 4).ok_or(CryptoError::Unsupported)?;
                    s[..len].copy_from_slice(packet);
                    s[len..].copy_from_slice(&hi);
                    s
                } else {
                    packet
                };
                match op {
                    Op::Seal => aead
                        .seal_in_place_detached(&n, aad, &mut [], &mut tag)
                        .map(|_| tag)
                        .map_err(|_| CryptoError::InvalidSyntax),
                    Op::Open => aead
                        .open_in_place_detached(&n, aad, &mut [], received)
                        .map(|_| tag)
                        .map_err(|_| self.auth_failed()),
                }
            }
            _ => Err(CryptoError::Unsupported),
        }
    }

    /// The GMAC IV inside the AH header of `packet` (located again from the IP header).
    fn find_ah_iv(&self, packet: &[u8]) -> Result<[u8; 8], CryptoError> {
        let off = match get_u8(packet, 0) >> 4 {
            4 => usize::from(get_u8(packet, 0) & 0x0f) * 4,
            6 => ipv6::HEADER_LEN,
            _ => return Err(CryptoError::InvalidSyntax),
        };
        let mut iv = [0u8; 8];
        iv.copy_from_slice(
            packet
                .get(off + ah::FIXED_LEN..off + ah::FIXED_LEN + 8)
                .ok_or(CryptoError::InvalidSyntax)?,
        );
        Ok(iv)
    }
}

/// The mutable IP header fields saved while they are zeroed for the AH ICV (RFC 4302
/// §3.3.3.1): the whole IPv4 header (≤ 60 bytes) or the first 8 bytes of the IPv6 header.
struct MutableFields {
    saved: [u8; ipv4::MAX_HEADER_LEN],
    len: usize,
}

impl MutableFields {
    /// Zero the mutable fields of the outer IP header in place and return the saved bytes.
    ///
    /// IPv4 (RFC 4302 §3.3.3.1.1): TOS, flags + fragment offset, TTL and header checksum are
    /// zeroed; options listed as immutable in RFC 4302 Appendix A.1 (EOL, NOP, Security,
    /// Extended Security, Commercial Security, Router Alert, Sender Directed Multi-Destination
    /// Delivery) are kept, every other option is zeroed entirely; the "mutable but predictable"
    /// source routes (LSRR, SSRR) are refused.
    /// IPv6 (§3.3.3.1.2): traffic class, flow label and hop limit are zeroed. Extension headers
    /// are not supported (the framing refuses them).
    fn zero(packet: &mut [u8]) -> Result<MutableFields, CryptoError> {
        let mut s = MutableFields {
            saved: [0; ipv4::MAX_HEADER_LEN],
            len: 0,
        };
        match get_u8(packet, 0) >> 4 {
            4 => {
                let hl = usize::from(get_u8(packet, 0) & 0x0f) * 4;
                let h = packet.get_mut(..hl).ok_or(CryptoError::InvalidSyntax)?;
                if hl < ipv4::HEADER_LEN {
                    return Err(CryptoError::InvalidSyntax);
                }
                // INVARIANT: hl = IHL * 4 <= 60 = saved.len().
                s.saved[..hl].copy_from_slice(h);
                s.len = hl;
                set_u8(h, 1, 0);
                set_bytes(h, 6, &[0, 0, 0]);
                set_bytes(h, 10, &[0, 0]);
                let mut i = ipv4::HEADER_LEN;
                while i < hl {
                    let kind = get_u8(h, i);
                    match kind {
                        0 => break,
                        1 => i += 1,
                        _ => {
                            let len = usize::from(get_u8(h, i + 1));
                            let opt = match h.get_mut(i..i + len) {
                                Some(o) if len >= 2 => o,
                                _ => {
                                    s.restore(packet);
                                    return Err(CryptoError::InvalidSyntax);
                                }
                            };
                            match kind {
                                130 | 133 | 134 | 148 | 149 => {}
                                131 | 137 => {
                                    s.restore(packet);
                                    return Err(CryptoError::Unsupported);
                                }
                                _ => opt.fill(0),
                            }
                            i += len;
                        }
                    }
                }
            }
            6 => {
                let h = packet.get_mut(..8).ok_or(CryptoError::InvalidSyntax)?;
                s.saved[..8].copy_from_slice(h);
                s.len = 8;
                set_u8(h, 0, 0x60);
                set_bytes(h, 1, &[0, 0, 0]);
                set_u8(h, 7, 0);
            }
            _ => return Err(CryptoError::InvalidSyntax),
        }
        Ok(s)
    }

    fn restore(&self, packet: &mut [u8]) {
        if let (Some(dst), Some(src)) = (packet.get_mut(..self.len), self.saved.get(..self.len)) {
            dst.copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Key;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn esp_params(
        enc: Encryption,
        ekey: &[u8],
        integ: Integrity,
        ikey: &[u8],
        esn: bool,
    ) -> SaParams {
        SaParams {
            spi: 0x1001,
            protocol: Protocol::Esp,
            mode: Mode::Transport,
            encryption: enc,
            encryption_key: Key::new(ekey),
            integrity: integ,
            integrity_key: Key::new(ikey),
            esn,
            tunnel: None,
            udp_encap: None,
        }
    }

    /// Every published ESP packet (draft-mcgrew-gcm-test-01 §4, RFC 3602 §4) through both
    /// providers: open the published packet (ICV, decryption, padding), compare the payload,
    /// then seal the plaintext again with the published IV and compare every byte.
    #[test]
    fn published_esp_vectors_both_providers() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/ipsec-rfc-vectors.json")).unwrap();
        let packets = v["esp_packets"].as_array().unwrap();
        assert_eq!(packets.len(), 21);
        let mut runs = 0;
        for kind in ProviderKind::available() {
            for t in packets {
                let id = t["id"].as_str().unwrap();
                let key = hex(t["key"].as_str().unwrap());
                let salt = hex(t["salt"].as_str().unwrap_or(""));
                let mut material = key.clone();
                material.extend_from_slice(&salt);
                let suite = t["suite"].as_str().unwrap();
                let (enc, integ) = match suite {
                    "AES-GCM-128" => (Encryption::AesGcm128, Integrity::None),
                    "AES-GCM-192" => (Encryption::AesGcm192, Integrity::None),
                    "AES-GCM-256" => (Encryption::AesGcm256, Integrity::None),
                    "AES-GMAC-128" => (Encryption::None, Integrity::AesGmac128),
                    "AES-CBC-128" => (Encryption::AesCbc128, Integrity::None),
                    s => panic!("unknown suite {s}"),
                };
                let esn = t["esn"].as_bool().unwrap();
                let seq = u64::from_str_radix(t["seq"].as_str().unwrap(), 16).unwrap();
                let mut p = if integ.is_gmac() {
                    esp_params(enc, &[], integ, &material, esn)
                } else {
                    esp_params(enc, &material, integ, &[], esn)
                };
                p.spi = u32::from_str_radix(t["spi"].as_str().unwrap(), 16).unwrap();
                let tr = Transform::new_for_vectors(&p, *kind).unwrap();
                let published = hex(t["esp_packet"].as_str().unwrap());
                let iv = hex(t["iv"].as_str().unwrap());

                let mut pkt = published.clone();
                let opened = tr
                    .open_esp(&mut pkt, seq)
                    .unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert_eq!(
                    &pkt[opened.payload.clone()],
                    &hex(t["payload"].as_str().unwrap())[..],
                    "{id} payload"
                );
                assert_eq!(
                    u64::from(opened.pad_len),
                    t["pad_len"].as_u64().unwrap(),
                    "{id}"
                );
                assert_eq!(
                    u64::from(opened.next_header),
                    t["next_header"].as_u64().unwrap()
                );

                // Re-seal the decrypted packet with the published IV: the exact bytes.
                tr.seal_esp(&mut pkt, seq, &iv).unwrap();
                assert_eq!(pkt, published, "{id} ({kind:?}) re-encryption differs");

                // One flipped bit in the ICV-covered part is rejected (authenticated suites).
                if tr.icv_len() > 0 {
                    let mut bad = published.clone();
                    bad[9] ^= 0x80;
                    assert!(matches!(
                        tr.open_esp(&mut bad, seq),
                        Err(CryptoError::AuthFailed { .. })
                    ));
                    if esn {
                        // The wrong high half fails too: it is in the ICV.
                        let mut bad = published.clone();
                        let wrong = seq ^ (1u64 << 40);
                        assert!(matches!(
                            tr.open_esp(&mut bad, wrong),
                            Err(CryptoError::AuthFailed { .. })
                        ));
                    }
                }
                runs += 1;
            }
        }
        assert_eq!(runs, 21 * ProviderKind::available().len());
    }

    #[test]
    fn debug_hides_keys() {
        let p = esp_params(
            Encryption::AesGcm128,
            &[0xAB; 20],
            Integrity::None,
            &[],
            false,
        );
        let t = Transform::new(&p, ProviderKind::RustCrypto).unwrap();
        let s = format!("{t:?}");
        assert!(s.contains("0x00001001") && s.contains("AesGcm128"), "{s}");
        assert!(!s.to_lowercase().contains("abab"), "{s}");
    }

    #[test]
    fn refused_params() {
        let p = esp_params(Encryption::AesCbc128, &[1; 16], Integrity::None, &[], false);
        assert_eq!(
            Transform::new(&p, ProviderKind::RustCrypto).unwrap_err(),
            ParamError::NoIntegrity
        );
        let p = esp_params(Encryption::AesGcm128, &[1; 16], Integrity::None, &[], false);
        assert_eq!(
            Transform::new(&p, ProviderKind::RustCrypto).unwrap_err(),
            ParamError::EncryptionKeyLength
        );
    }

    #[test]
    fn iv_rules() {
        let p = esp_params(Encryption::AesGcm128, &[1; 20], Integrity::None, &[], false);
        let t = Transform::new(&p, ProviderKind::RustCrypto).unwrap();
        let mut iv = [0u8; 16];
        assert_eq!(t.derive_iv(0x0102_0304_0506_0708, &mut iv), 8);
        assert_eq!(&iv[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        // CBC: AES_K(0^64 || seq), checked against the raw block cipher of the provider.
        let p = esp_params(
            Encryption::AesCbc128,
            &[7; 16],
            Integrity::HmacSha1_96,
            &[9; 20],
            false,
        );
        for kind in ProviderKind::available() {
            let t = Transform::new(&p, *kind).unwrap();
            assert_eq!(t.derive_iv(5, &mut iv), 16);
            let mut block = [0u8; 16];
            block[15] = 5;
            provider(*kind)
                .unwrap()
                .aes_cbc(&[7; 16])
                .unwrap()
                .encrypt_block(&mut block);
            assert_eq!(iv, block);
            let mut iv6 = [0u8; 16];
            t.derive_iv(6, &mut iv6);
            assert_ne!(iv, iv6);
        }
    }

    #[test]
    fn transform_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Transform>();
    }
}
