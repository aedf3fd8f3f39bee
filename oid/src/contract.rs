//! The contract between a protocol driver (the host stack) and a miniport.
//!
//! Shaped after NDIS 6: a protocol issues OID requests ([`OidRequest`]) and sends lists of
//! frames ([`Nbl`], a `NET_BUFFER_LIST` with one `NET_BUFFER`) to a [`Miniport`]; the miniport
//! completes sends and indicates received frames and status changes up to the bound
//! [`Protocol`]. Ownership of a frame moves with it, exactly as in NDIS:
//!
//! - send: protocol --`send_net_buffer_lists`--> miniport --`send_net_buffer_lists_complete`-->
//!   protocol (the protocol reuses the buffer);
//! - receive: miniport --`receive_net_buffer_lists`--> protocol --`return_net_buffer_lists`-->
//!   miniport (the miniport reuses the buffer).
//!
//! Batches travel in a caller-owned `Vec<Nbl>` that the callee drains, so a steady state moves
//! frames without allocating.
//!
//! OID requests complete synchronously: a miniport of this crate's contract never returns
//! `NDIS_STATUS_PENDING`.

use core::fmt;
use core::ops::Range;

use crate::{NdisStatus, Oid};

/// The kind of an OID request (`NDIS_REQUEST_TYPE`).
#[doc(alias = "NDIS_REQUEST_TYPE")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// `NdisRequestQueryInformation`: the miniport writes into the information buffer.
    QueryInformation,
    /// `NdisRequestSetInformation`: the miniport reads the information buffer (and, for the
    /// IPsec ADD_SA OIDs, writes the `OffloadHandle` back into it).
    SetInformation,
}

/// One OID request (`NDIS_OID_REQUEST`), over an untrusted information buffer.
///
/// The miniport fills in `bytes_read` (set), `bytes_written` (query) and, when the buffer is
/// too short, `bytes_needed`.
#[doc(alias = "NDIS_OID_REQUEST")]
#[derive(Debug)]
pub struct OidRequest<'a> {
    /// Query or set.
    pub request_type: RequestType,
    /// The OID.
    pub oid: Oid,
    /// `InformationBuffer` with its `InformationBufferLength`.
    pub information_buffer: &'a mut [u8],
    /// `BytesRead`: bytes of the buffer the miniport consumed (set requests).
    pub bytes_read: u32,
    /// `BytesWritten`: bytes of the buffer the miniport wrote (query requests).
    pub bytes_written: u32,
    /// `BytesNeeded`: the buffer length the request needs when it was too short.
    pub bytes_needed: u32,
}

impl<'a> OidRequest<'a> {
    /// A set request over `buffer`.
    pub fn set(oid: Oid, buffer: &'a mut [u8]) -> Self {
        Self::new(RequestType::SetInformation, oid, buffer)
    }

    /// A query request whose answer is written into `buffer`.
    pub fn query(oid: Oid, buffer: &'a mut [u8]) -> Self {
        Self::new(RequestType::QueryInformation, oid, buffer)
    }

    fn new(request_type: RequestType, oid: Oid, buffer: &'a mut [u8]) -> Self {
        OidRequest {
            request_type,
            oid,
            information_buffer: buffer,
            bytes_read: 0,
            bytes_written: 0,
            bytes_needed: 0,
        }
    }
}

/// The handle a miniport gives an offloaded SA (`OffloadHandle`, an `NDIS_HANDLE`).
///
/// Zero means "no SA": a frame sent with handle zero gets no IPsec offload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct OffloadHandle(pub u64);

impl OffloadHandle {
    /// The NULL handle.
    pub const NULL: OffloadHandle = OffloadHandle(0);

    /// True for the NULL handle.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for OffloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OffloadHandle({:#x})", self.0)
    }
}

/// Receive-side `CryptoStatus` (ndis-wfp-abi.md §4.4; WDK `CRYPTO_*` defines).
///
/// Not to be confused with Linux's same-named bit flags in `include/net/xfrm.h`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CryptoStatus(pub u16);

impl CryptoStatus {
    /// `CRYPTO_SUCCESS`: decryption (if any) and the ICV check(s) succeeded; also written for
    /// frames the NIC did not process.
    pub const SUCCESS: CryptoStatus = CryptoStatus(0);
    /// `CRYPTO_GENERIC_ERROR`.
    pub const GENERIC_ERROR: CryptoStatus = CryptoStatus(1);
    /// `CRYPTO_TRANSPORT_AH_AUTH_FAILED`.
    pub const TRANSPORT_AH_AUTH_FAILED: CryptoStatus = CryptoStatus(2);
    /// `CRYPTO_TRANSPORT_ESP_AUTH_FAILED`.
    pub const TRANSPORT_ESP_AUTH_FAILED: CryptoStatus = CryptoStatus(3);
    /// `CRYPTO_TUNNEL_AH_AUTH_FAILED`.
    pub const TUNNEL_AH_AUTH_FAILED: CryptoStatus = CryptoStatus(4);
    /// `CRYPTO_TUNNEL_ESP_AUTH_FAILED`.
    pub const TUNNEL_ESP_AUTH_FAILED: CryptoStatus = CryptoStatus(5);
    /// `CRYPTO_INVALID_PACKET_SYNTAX`: e.g. an invalid length.
    pub const INVALID_PACKET_SYNTAX: CryptoStatus = CryptoStatus(6);
    /// `CRYPTO_INVALID_PROTOCOL`: the IPsec protocol in the packet differs from the SA's.
    pub const INVALID_PROTOCOL: CryptoStatus = CryptoStatus(7);

    /// The Windows name of a known value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "CRYPTO_SUCCESS",
            1 => "CRYPTO_GENERIC_ERROR",
            2 => "CRYPTO_TRANSPORT_AH_AUTH_FAILED",
            3 => "CRYPTO_TRANSPORT_ESP_AUTH_FAILED",
            4 => "CRYPTO_TUNNEL_AH_AUTH_FAILED",
            5 => "CRYPTO_TUNNEL_ESP_AUTH_FAILED",
            6 => "CRYPTO_INVALID_PACKET_SYNTAX",
            7 => "CRYPTO_INVALID_PROTOCOL",
            _ => return None,
        })
    }
}

impl fmt::Debug for CryptoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "CryptoStatus({})", self.0),
        }
    }
}

/// Send-side per-packet IPsec information (`NDIS_IPSEC_PACKET_INFO.Transmit`;
/// NBL slot `IPsecOffloadV1NetBufferListInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IpsecSendInfo {
    /// The outbound SA (the transport-mode SA when tunnelled). NULL: no offload.
    pub offload_handle: OffloadHandle,
    /// The outbound tunnel SA when the packet is transport-in-tunnel (NDIS 5.1
    /// `NextOffloadHandle`; v2 `TunnelHandle`). NULL otherwise.
    pub next_offload_handle: OffloadHandle,
}

/// Receive-side per-packet IPsec information (`NDIS_IPSEC_PACKET_INFO.Receive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IpsecReceiveInfo {
    /// `SA_DELETE_REQ`: the NIC asks the transport to delete the SA this frame arrived on
    /// (and its outbound partner) to make room. Independent of `crypto_done`.
    pub sa_delete_req: bool,
    /// `CRYPTO_DONE`: at least one IPsec payload of this frame was processed by the NIC.
    pub crypto_done: bool,
    /// `NEXT_CRYPTO_DONE`: both the tunnel and the transport payload were processed.
    pub next_crypto_done: bool,
    /// `CryptoStatus`: the outcome; `SUCCESS` when nothing was processed.
    pub crypto_status: CryptoStatus,
}

/// A frame in flight: an NDIS `NET_BUFFER_LIST` holding one `NET_BUFFER`.
///
/// `buffer` is the whole allocation; the frame's bytes are `buffer[data]`. Space before
/// `data.start` is headroom and space after `data.end` is tailroom, so headers can be
/// prepended and trailers appended in place.
#[doc(alias = "NET_BUFFER_LIST")]
pub struct Nbl {
    /// The backing storage (its length is the capacity for headroom + frame + tailroom).
    pub buffer: Vec<u8>,
    /// Where the frame (starting with its Ethernet header) lives inside `buffer`.
    pub data: Range<usize>,
    /// Send-side IPsec info (meaningful on the send path).
    pub send_info: IpsecSendInfo,
    /// Receive-side IPsec info (meaningful on the receive path).
    pub receive_info: IpsecReceiveInfo,
    /// Completion status, set by the miniport on send completion (`NblCompletionStatus`).
    pub status: NdisStatus,
    /// Opaque value for the owner (e.g. a sequence number or flow id); carried untouched.
    pub cookie: u64,
}

impl Nbl {
    /// A frame buffer of `capacity` bytes whose (empty) data starts at `headroom`.
    ///
    /// `headroom` is clamped to `capacity`.
    pub fn with_capacity(capacity: usize, headroom: usize) -> Self {
        let start = headroom.min(capacity);
        Nbl {
            buffer: vec![0; capacity],
            data: start..start,
            send_info: IpsecSendInfo::default(),
            receive_info: IpsecReceiveInfo::default(),
            status: NdisStatus::SUCCESS,
            cookie: 0,
        }
    }

    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        self.buffer.get(self.data.clone()).unwrap_or(&[])
    }

    /// The frame's bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let r = self.data.clone();
        self.buffer.get_mut(r).unwrap_or(&mut [])
    }

    /// Replace the frame with `bytes`, placed after `headroom` bytes of headroom.
    ///
    /// Returns false (and leaves the frame unchanged) when the buffer is too small.
    pub fn fill(&mut self, headroom: usize, bytes: &[u8]) -> bool {
        let Some(end) = headroom.checked_add(bytes.len()) else {
            return false;
        };
        let Some(dst) = self.buffer.get_mut(headroom..end) else {
            return false;
        };
        dst.copy_from_slice(bytes);
        self.data = headroom..end;
        true
    }

    /// Clear metadata so the buffer can be reused for another frame.
    pub fn reset(&mut self, headroom: usize) {
        let start = headroom.min(self.buffer.len());
        self.data = start..start;
        self.send_info = IpsecSendInfo::default();
        self.receive_info = IpsecReceiveInfo::default();
        self.status = NdisStatus::SUCCESS;
        self.cookie = 0;
    }
}

impl fmt::Debug for Nbl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Frame bytes are deliberately not printed: they may be cleartext payload.
        f.debug_struct("Nbl")
            .field("capacity", &self.buffer.len())
            .field("data", &self.data)
            .field("send_info", &self.send_info)
            .field("receive_info", &self.receive_info)
            .field("status", &self.status)
            .field("cookie", &self.cookie)
            .finish()
    }
}

/// A status indication from a miniport (`NDIS_STATUS_INDICATION`).
#[doc(alias = "NDIS_STATUS_INDICATION")]
#[derive(Debug, Clone, Copy)]
pub struct StatusIndication<'a> {
    /// `StatusCode`, e.g. [`NdisStatus::TASK_OFFLOAD_CURRENT_CONFIG`].
    pub status: NdisStatus,
    /// `StatusBuffer`, e.g. an `NDIS_OFFLOAD` structure.
    pub buffer: &'a [u8],
}

/// What a miniport offers its bound protocol (the `MiniportXxx` entry points NDIS calls on a
/// protocol's behalf).
///
/// Every method may be called from any thread, concurrently with traffic.
pub trait Miniport: Send + Sync {
    /// `MiniportOidRequest`: handle one query or set request synchronously and return its
    /// status (never `NDIS_STATUS_PENDING`).
    fn oid_request(&self, request: &mut OidRequest<'_>) -> NdisStatus;

    /// `MiniportSendNetBufferLists`: take the frames (draining `nbls`). Each one comes back
    /// through [`Protocol::send_net_buffer_lists_complete`] with its `status` set.
    fn send_net_buffer_lists(&self, nbls: &mut Vec<Nbl>);

    /// `MiniportReturnNetBufferLists`: give received frames back for reuse (draining `nbls`).
    fn return_net_buffer_lists(&self, nbls: &mut Vec<Nbl>);
}

/// What a protocol offers the miniport it is bound to (the `ProtocolXxx` entry points).
///
/// Every method may be called from any thread.
pub trait Protocol: Send + Sync {
    /// `ProtocolReceiveNetBufferLists`: received frames with their receive-side IPsec info.
    /// The protocol takes them (draining `nbls`) and later returns them with
    /// [`Miniport::return_net_buffer_lists`].
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>);

    /// `ProtocolSendNetBufferListsComplete`: sent frames coming back, each with its `status`.
    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>);

    /// `ProtocolStatusEx`: a status indication, e.g. a changed offload configuration.
    fn status_indication(&self, indication: &StatusIndication<'_>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbl_fill_and_reset() {
        let mut nbl = Nbl::with_capacity(64, 16);
        assert!(nbl.data().is_empty());
        assert!(nbl.fill(16, &[1, 2, 3]));
        assert_eq!(nbl.data(), &[1, 2, 3]);
        assert!(!nbl.fill(60, &[0; 8]), "too long for the buffer");
        assert_eq!(nbl.data(), &[1, 2, 3], "unchanged on failure");
        nbl.send_info.offload_handle = OffloadHandle(5);
        nbl.reset(8);
        assert_eq!(nbl.data, 8..8);
        assert!(nbl.send_info.offload_handle.is_null());
    }

    #[test]
    fn nbl_data_out_of_range_is_empty_not_a_panic() {
        let mut nbl = Nbl::with_capacity(8, 0);
        nbl.data = 4..100;
        assert!(nbl.data().is_empty());
        assert!(nbl.data_mut().is_empty());
    }

    #[test]
    fn crypto_status_names() {
        assert_eq!(CryptoStatus::INVALID_PROTOCOL.0, 7);
        assert_eq!(
            format!("{:?}", CryptoStatus::TUNNEL_ESP_AUTH_FAILED),
            "CRYPTO_TUNNEL_ESP_AUTH_FAILED"
        );
        assert_eq!(format!("{:?}", CryptoStatus(9)), "CryptoStatus(9)");
    }

    #[test]
    fn requests() {
        let mut buf = [0u8; 8];
        let r = OidRequest::set(Oid::TCP_TASK_IPSEC_DELETE_SA, &mut buf);
        assert_eq!(r.request_type, RequestType::SetInformation);
        assert_eq!(r.bytes_needed, 0);
    }
}
