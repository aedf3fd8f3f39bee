//! The frame that moves through the NIC, with its per-frame IPsec metadata.
//!
//! A [`Frame`] mirrors the miniport's NBL: the miniport moves the NBL's `Vec<u8>` into a frame
//! and back without copying. The frame's bytes are `buf[data]` (an Ethernet frame); space before
//! `data.start` is headroom, space after `data.end` is tailroom.

use core::fmt;
use core::ops::Range;

/// The opaque handle of an SA programmed into the NIC (the miniport's `OffloadHandle`).
///
/// A handle issued by the table is never 0: bit 63 is a valid bit (as in Linux netdevsim,
/// whose comment says the stack "doesn't like offload_handle == 0"), bits 32..63 hold the slot's
/// generation and bits 0..32 the slot index. [`SaHandle::NONE`] (0) on a transmitted frame means
/// "no offload". A handle whose SA was deleted is never honoured again: the slot's generation
/// changes on every delete.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SaHandle(pub u64);

impl SaHandle {
    /// No SA: a frame sent with this handle is transmitted as is.
    pub const NONE: SaHandle = SaHandle(0);

    /// The valid bit carried by every handle the table issues.
    pub const VALID_BIT: u64 = 1 << 63;

    /// The raw value (what the miniport stores in `OffloadHandle`).
    pub fn raw(self) -> u64 {
        self.0
    }

    /// True for [`SaHandle::NONE`].
    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn new(index: u32, generation: u32) -> Self {
        SaHandle(Self::VALID_BIT | (u64::from(generation & 0x7fff_ffff) << 32) | u64::from(index))
    }

    /// The slot index, if the valid bit is set.
    pub(crate) fn index(self) -> Option<u32> {
        if self.0 & Self::VALID_BIT == 0 {
            return None;
        }
        Some((self.0 & 0xffff_ffff) as u32)
    }

    pub(crate) fn generation(self) -> u32 {
        ((self.0 >> 32) & 0x7fff_ffff) as u32
    }
}

impl fmt::Debug for SaHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SaHandle({:#018x})", self.0)
    }
}

impl fmt::Display for SaHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Receive status of a frame, the NIC's view of NDIS `CryptoStatus` (values equal the WDK
/// `CRYPTO_*` defines, so the miniport maps them 1:1, see [`CryptoStatus::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CryptoStatus {
    /// `CRYPTO_SUCCESS`: decryption and ICV checks succeeded, or nothing was processed.
    #[default]
    Success,
    /// `CRYPTO_GENERIC_ERROR`: failed for another reason.
    GenericError,
    /// `CRYPTO_TRANSPORT_AH_AUTH_FAILED`.
    TransportAhAuthFailed,
    /// `CRYPTO_TRANSPORT_ESP_AUTH_FAILED`.
    TransportEspAuthFailed,
    /// `CRYPTO_TUNNEL_AH_AUTH_FAILED`.
    TunnelAhAuthFailed,
    /// `CRYPTO_TUNNEL_ESP_AUTH_FAILED`.
    TunnelEspAuthFailed,
    /// `CRYPTO_INVALID_PACKET_SYNTAX`: bad lengths, padding or structure.
    InvalidPacketSyntax,
    /// `CRYPTO_INVALID_PROTOCOL`: the IPsec protocol in the packet differs from the SA's.
    InvalidProtocol,
}

impl CryptoStatus {
    /// The NDIS `CRYPTO_*` value (0..=7).
    pub fn code(self) -> u16 {
        match self {
            CryptoStatus::Success => 0,
            CryptoStatus::GenericError => 1,
            CryptoStatus::TransportAhAuthFailed => 2,
            CryptoStatus::TransportEspAuthFailed => 3,
            CryptoStatus::TunnelAhAuthFailed => 4,
            CryptoStatus::TunnelEspAuthFailed => 5,
            CryptoStatus::InvalidPacketSyntax => 6,
            CryptoStatus::InvalidProtocol => 7,
        }
    }

    /// True for every status but [`CryptoStatus::Success`].
    pub fn is_failure(self) -> bool {
        self != CryptoStatus::Success
    }
}

/// Transmit outcome of a frame (set by the NIC before it completes the frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TxStatus {
    /// Not yet processed.
    #[default]
    Pending,
    /// Handed to the wire (protected, or as is for handle 0).
    Sent,
    /// The frame's handle names no SA (never issued, or deleted): NDIS `NDIS_STATUS_FAILURE`.
    UnknownHandle,
    /// The handle names an inbound SA.
    WrongDirection,
    /// The frame could not be parsed or does not match its SA's framing.
    Malformed,
    /// The crypto engine refused the packet (e.g. bad padding for the cipher).
    CryptoError,
    /// The wire refused the frame (e.g. a TAP write error).
    WireError,
}

/// Send-side metadata (NDIS `NDIS_IPSEC_PACKET_INFO.Transmit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TxMeta {
    /// The outbound SA; the transport-mode SA when the frame is transport-in-tunnel.
    /// [`SaHandle::NONE`]: no offload.
    pub handle: SaHandle,
    /// The outbound tunnel SA of a transport-in-tunnel frame (`NextOffloadHandle`), else NONE.
    pub next_handle: SaHandle,
    /// The outcome, set by the NIC.
    pub status: TxStatus,
}

/// Receive-side metadata (NDIS `NDIS_IPSEC_PACKET_INFO.Receive`), set by the NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RxMeta {
    /// At least one IPsec payload was processed (successfully or not) by the NIC.
    pub crypto_done: bool,
    /// Both the tunnel and the inner transport payload were processed.
    pub next_crypto_done: bool,
    /// The outcome; [`CryptoStatus::Success`] for frames the NIC did not process.
    pub status: CryptoStatus,
    /// The NIC asks the host to delete the SA this frame arrived on (table under pressure).
    pub sa_delete_req: bool,
    /// The SA that processed the outermost IPsec header, if any.
    pub sa: Option<SaHandle>,
    /// The transport SA that processed the inner packet of a tunnel frame, if any.
    pub next_sa: Option<SaHandle>,
}

/// A frame in flight: buffer, data range and metadata.
pub struct Frame {
    /// The whole buffer (headroom + frame + tailroom).
    pub buf: Vec<u8>,
    /// Where the Ethernet frame lives in `buf`.
    pub data: Range<usize>,
    /// Transmit metadata (input: handles; output: status).
    pub tx: TxMeta,
    /// Receive metadata (output).
    pub rx: RxMeta,
    /// Opaque value carried untouched (e.g. the miniport's NBL id).
    pub cookie: u64,
}

impl Frame {
    /// A frame owning `buf` whose data is `data`, with empty metadata.
    pub fn new(buf: Vec<u8>, data: Range<usize>) -> Self {
        Frame {
            buf,
            data,
            tx: TxMeta::default(),
            rx: RxMeta::default(),
            cookie: 0,
        }
    }

    /// A frame holding a copy of `bytes` after `headroom` bytes, with `tailroom` bytes after.
    /// Allocates: for tests and set-up, not the data path.
    pub fn from_bytes(bytes: &[u8], headroom: usize, tailroom: usize) -> Self {
        let mut buf = vec![
            0;
            headroom
                .saturating_add(bytes.len())
                .saturating_add(tailroom)
        ];
        let end = headroom.saturating_add(bytes.len());
        if let Some(dst) = buf.get_mut(headroom..end) {
            dst.copy_from_slice(bytes);
        }
        Frame::new(buf, headroom..end)
    }

    /// The frame's bytes (empty if `data` is out of bounds).
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.data.clone()).unwrap_or(&[])
    }

    /// The frame's bytes, mutable (empty if `data` is out of bounds).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let r = self.data.clone();
        self.buf.get_mut(r).unwrap_or(&mut [])
    }

    /// Length of the frame's data.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// True when the frame has no data.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Reset metadata (not the buffer) for reuse.
    pub fn clear_meta(&mut self) {
        self.tx = TxMeta::default();
        self.rx = RxMeta::default();
        self.cookie = 0;
    }
}

impl Clone for Frame {
    fn clone(&self) -> Self {
        Frame {
            buf: self.buf.clone(),
            data: self.data.clone(),
            tx: self.tx,
            rx: self.rx,
            cookie: self.cookie,
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.len())
            .field("data", &self.data)
            .field("tx", &self.tx)
            .field("rx", &self.rx)
            .field("cookie", &self.cookie)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn handle_layout() {
        let h = SaHandle::new(5, 7);
        assert!(!h.is_none());
        assert_eq!(h.index(), Some(5));
        assert_eq!(h.generation(), 7);
        assert_eq!(h.raw(), (1 << 63) | (7 << 32) | 5);
        assert_eq!(
            SaHandle(5).index(),
            None,
            "no valid bit, not a table handle"
        );
        assert_eq!(SaHandle::new(0, 0).raw(), 1 << 63, "never zero");
    }

    #[test]
    fn status_codes_match_ndis() {
        let all = [
            CryptoStatus::Success,
            CryptoStatus::GenericError,
            CryptoStatus::TransportAhAuthFailed,
            CryptoStatus::TransportEspAuthFailed,
            CryptoStatus::TunnelAhAuthFailed,
            CryptoStatus::TunnelEspAuthFailed,
            CryptoStatus::InvalidPacketSyntax,
            CryptoStatus::InvalidProtocol,
        ];
        for (i, s) in all.iter().enumerate() {
            assert_eq!(usize::from(s.code()), i);
        }
    }

    #[test]
    fn frame_bytes_out_of_range_is_empty() {
        let mut f = Frame::from_bytes(&[1, 2, 3], 4, 2);
        assert_eq!(f.bytes(), &[1, 2, 3]);
        f.data = 7..20;
        assert!(f.bytes().is_empty());
        assert!(f.bytes_mut().is_empty());
    }
}
