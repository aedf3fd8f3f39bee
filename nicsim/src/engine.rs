//! The crypto engine: NDIS crypto-offload semantics on Ethernet frames, in place.
//!
//! * **Transmit.** The host has already framed ESP/AH (headers, padding, trailer, sequence
//!   numbers, room for the ICV). For a frame whose metadata names an outbound SA the engine
//!   finds the IP packet (EtherType, one 802.1Q tag allowed), derives the offsets from the SA
//!   and the packet and encrypts / computes the ICV in place ([`ipsec::Bundle::protect`]).
//!   Transport-in-tunnel frames (`next_handle` = the tunnel SA) get their inner transport
//!   packet (located with the tunnel bundle's `inner_packet`) protected first, then the tunnel.
//!   Handle 0 means "send as is"; an unknown or stale handle fails the frame
//!   ([`TxStatus::UnknownHandle`]). ESN: an outbound SA infers the high-order bits from the low
//!   bits it sees, or takes them from [`crate::Nic::set_esn_high`].
//! * **Receive.** Every frame goes up. The engine classifies the IP packet
//!   ([`ipsec::classify`]), finds the SA by SPI + destination (+ protocol, + UDP encapsulation
//!   port), verifies and decrypts in place ([`ipsec::Bundle::unprotect`], with the SA's highest
//!   verified sequence number for ESN inference, updated only after success) and records
//!   `crypto_done` / `next_crypto_done` / [`CryptoStatus`]. No SA: unprocessed, status success.
//!   Tunnel SAs whose inner packet is ESP/AH of a known transport SA get it processed too.
//!   Replay checks and header removal are the host's job.
//!
//! Nothing here allocates, does I/O or reads a clock; bad frames get a status and a counter.

use core::ops::Range;

use ipsec::{Bundle, BundleSeq, BundleSeqHi, Classified, CryptoError, Mode, Protocol};

use crate::frame::{CryptoStatus, Frame, RxMeta, SaHandle, TxStatus};
use crate::stats::{NicCounters, add, bump};
use crate::table::{AH, Direction, ESP, SaEntry, SaTable};

/// The NIC's table: SAs compiled into `ipsec` bundles.
pub(crate) type Table = SaTable<Bundle>;

const ETH_HEADER: usize = 14;
const VLAN_TAG: usize = 4;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// Where the IP packet lives inside an Ethernet frame (Ethernet padding excluded).
pub(crate) fn ip_range(frame: &[u8]) -> Option<Range<usize>> {
    let mut ethertype = be16(frame, 12)?;
    let mut start = ETH_HEADER;
    if ethertype == ETHERTYPE_VLAN {
        ethertype = be16(frame, 16)?;
        start = ETH_HEADER + VLAN_TAG;
    }
    let ip = frame.get(start..)?;
    let len = match ethertype {
        ETHERTYPE_IPV4 if ip.first()? >> 4 == 4 => usize::from(be16(ip, 2)?),
        ETHERTYPE_IPV6 if ip.first()? >> 4 == 6 => usize::from(be16(ip, 4)?).checked_add(40)?,
        _ => return None,
    };
    if len > ip.len() {
        return None;
    }
    Some(start..start.checked_add(len)?)
}

/// The NDIS receive status for a crypto error.
pub(crate) fn status_of(e: CryptoError) -> CryptoStatus {
    match e {
        CryptoError::InvalidSyntax | CryptoError::BadPadding => CryptoStatus::InvalidPacketSyntax,
        CryptoError::ProtocolMismatch => CryptoStatus::InvalidProtocol,
        CryptoError::AuthFailed { protocol, mode } => match (protocol, mode) {
            (Protocol::Ah, Mode::Transport) => CryptoStatus::TransportAhAuthFailed,
            (Protocol::Esp, Mode::Transport) => CryptoStatus::TransportEspAuthFailed,
            (Protocol::Ah, Mode::Tunnel) => CryptoStatus::TunnelAhAuthFailed,
            (Protocol::Esp, Mode::Tunnel) => CryptoStatus::TunnelEspAuthFailed,
        },
        _ => CryptoStatus::GenericError,
    }
}

/// One batch's view of the NIC: the table (under the caller's read lock) and the counters.
pub(crate) struct Engine<'a> {
    pub(crate) table: &'a Table,
    pub(crate) counters: &'a NicCounters,
    pub(crate) now_ns: u64,
    /// Raw handle of the inbound SA to ask the host to delete (0 = none).
    pub(crate) victim: u64,
}

impl<'a> Engine<'a> {
    pub(crate) fn new(table: &'a Table, counters: &'a NicCounters, now_ns: u64) -> Self {
        let victim = table.delete_request_victim(now_ns);
        Engine {
            table,
            counters,
            now_ns,
            victim,
        }
    }

    /// Process one frame for transmission; sets `frame.tx.status`.
    pub(crate) fn transmit(&self, frame: &mut Frame) {
        bump(&self.counters.tx_frames);
        add(&self.counters.tx_bytes, frame.len());
        let status = self.protect_frame(frame);
        let c = match status {
            TxStatus::Pending | TxStatus::Sent => None,
            TxStatus::UnknownHandle => Some(&self.counters.tx_unknown_handle),
            TxStatus::WrongDirection => Some(&self.counters.tx_wrong_direction),
            TxStatus::Malformed => Some(&self.counters.tx_malformed),
            TxStatus::CryptoError => Some(&self.counters.tx_crypto_error),
            TxStatus::WireError => Some(&self.counters.tx_wire_error),
        };
        if let Some(c) = c {
            bump(c);
        }
        // Pending: the wire marks it sent.
        frame.tx.status = status;
    }

    fn outbound(&self, h: SaHandle) -> Result<&'a SaEntry<Bundle>, TxStatus> {
        let e = self.table.get(h).ok_or(TxStatus::UnknownHandle)?;
        if e.info.direction != Direction::Outbound {
            return Err(TxStatus::WrongDirection);
        }
        Ok(e)
    }

    fn protect_frame(&self, frame: &mut Frame) -> TxStatus {
        let (h, next) = (frame.tx.handle, frame.tx.next_handle);
        if h.is_none() && next.is_none() {
            bump(&self.counters.tx_clear);
            return TxStatus::Pending;
        }
        // A single-payload frame may carry its (tunnel) SA in either slot.
        let (first, tunnel) = match (h.is_none(), next.is_none()) {
            (false, true) => (h, None),
            (true, false) => (next, None),
            _ => (h, Some(next)),
        };
        let inner = match self.outbound(first) {
            Ok(e) => e,
            Err(s) => return s,
        };
        let outer = match tunnel.map(|t| self.outbound(t)).transpose() {
            Ok(o) => o,
            Err(s) => return s,
        };
        let bytes = frame.bytes_mut();
        let Some(ip) = ip_range(bytes) else {
            bump(&inner.counters.tx_errors);
            return TxStatus::Malformed;
        };
        let Some(packet) = bytes.get_mut(ip) else {
            return TxStatus::Malformed;
        };
        let len = packet.len();
        let result = match outer {
            None => protect_one(inner, packet),
            Some(outer) => match outer.crypto.inner_packet(packet) {
                Err(_) => Err(TxStatus::Malformed),
                Ok(r) => match packet.get_mut(r) {
                    None => Err(TxStatus::Malformed),
                    Some(inner_packet) => {
                        protect_one(inner, inner_packet).and_then(|()| protect_one(outer, packet))
                    }
                },
            },
        };
        match result {
            Ok(()) => {
                for e in core::iter::once(inner).chain(outer) {
                    bump(&e.counters.packets);
                    add(&e.counters.bytes, len);
                }
                bump(&self.counters.tx_protected);
                TxStatus::Pending
            }
            Err(s) => {
                bump(&inner.counters.tx_errors);
                s
            }
        }
    }

    /// Process one received frame; fills `frame.rx`.
    pub(crate) fn receive(&self, frame: &mut Frame) {
        frame.rx = Default::default();
        bump(&self.counters.rx_frames);
        let frame_len = frame.len();
        add(&self.counters.rx_bytes, frame_len);
        let Frame { buf, data, rx, .. } = frame;
        let Some(bytes) = buf.get_mut(data.clone()) else {
            bump(&self.counters.rx_clear);
            return;
        };
        let Some(packet) = ip_range(bytes).and_then(|r| bytes.get_mut(r)) else {
            bump(&self.counters.rx_clear);
            return;
        };
        let ports = self.table.encap_ports();
        let key = match ipsec::classify(packet, ports) {
            Ok(Classified::Esp(k)) => (k, Protocol::Esp),
            Ok(Classified::Ah(k)) => (k, Protocol::Ah),
            Ok(_) => {
                bump(&self.counters.rx_clear);
                return;
            }
            Err(_) => {
                bump(&self.counters.rx_unparsed);
                return;
            }
        };
        let (k, proto) = key;
        let port = k.udp_encap.map(|u| u.local_port);
        let Some(sa) = self
            .table
            .lookup_inbound(k.spi, proto.ip_protocol(), k.dst, port)
        else {
            // An SA for the same SPI and destination but the other protocol: the packet's
            // protocol differs from the SA's.
            let other = match proto {
                Protocol::Esp => Protocol::Ah,
                Protocol::Ah => Protocol::Esp,
            };
            if let Some(sa) = self
                .table
                .lookup_inbound(k.spi, other.ip_protocol(), k.dst, port)
            {
                rx.crypto_done = true;
                rx.sa = Some(sa.info.handle);
                self.finish(rx, sa, CryptoStatus::InvalidProtocol, frame_len);
            } else {
                bump(&self.counters.rx_no_sa);
            }
            return;
        };
        sa.touch(self.now_ns);
        rx.crypto_done = true;
        rx.sa = Some(sa.info.handle);
        let mut status = unprotect_one(sa, packet);
        if status == CryptoStatus::Success && sa.info.mode() == Mode::Tunnel {
            status = self.receive_inner(sa, packet, frame_len, rx);
        }
        self.finish(rx, sa, status, frame_len);
    }

    /// Tunnel SA verified: process an inner transport ESP/AH packet with a known SA.
    fn receive_inner(
        &self,
        tunnel: &SaEntry<Bundle>,
        packet: &mut [u8],
        frame_len: usize,
        rx: &mut RxMeta,
    ) -> CryptoStatus {
        let Ok(r) = tunnel.crypto.inner_packet(packet) else {
            return CryptoStatus::Success;
        };
        let Some(inner) = packet.get_mut(r) else {
            return CryptoStatus::Success;
        };
        let (k, proto) = match ipsec::classify(inner, self.table.encap_ports()) {
            Ok(Classified::Esp(k)) => (k, Protocol::Esp),
            Ok(Classified::Ah(k)) => (k, Protocol::Ah),
            _ => return CryptoStatus::Success,
        };
        let port = k.udp_encap.map(|u| u.local_port);
        let Some(sa) = self
            .table
            .lookup_inbound(k.spi, proto.ip_protocol(), k.dst, port)
        else {
            return CryptoStatus::Success;
        };
        if sa.info.mode() != Mode::Transport {
            return CryptoStatus::Success;
        }
        sa.touch(self.now_ns);
        rx.next_crypto_done = true;
        rx.next_sa = Some(sa.info.handle);
        let status = unprotect_one(sa, inner);
        if status == CryptoStatus::Success {
            bump(&sa.counters.packets);
            add(&sa.counters.bytes, frame_len);
        } else {
            sa.counters.failure(status);
        }
        if self.victim != 0 && self.victim == sa.info.handle.raw() {
            rx.sa_delete_req = true;
        }
        status
    }

    fn finish(&self, rx: &mut RxMeta, sa: &SaEntry<Bundle>, status: CryptoStatus, len: usize) {
        rx.status = status;
        if status == CryptoStatus::Success {
            bump(&sa.counters.packets);
            add(&sa.counters.bytes, len);
        } else {
            sa.counters.failure(status);
        }
        self.counters.rx_status(status);
        if rx.next_crypto_done {
            bump(&self.counters.rx_nested);
        }
        if self.victim != 0 && self.victim == sa.info.handle.raw() {
            rx.sa_delete_req = true;
        }
        if rx.sa_delete_req {
            bump(&self.counters.rx_sa_delete_req);
            bump(&sa.counters.delete_requests);
        }
    }
}

/// Protect one IP packet with one outbound bundle.
fn protect_one(sa: &SaEntry<Bundle>, packet: &mut [u8]) -> Result<(), TxStatus> {
    let hi = if sa.info.esn() {
        outbound_seq_hi(sa, packet)?
    } else {
        BundleSeqHi { esp: 0, ah: 0 }
    };
    sa.crypto.protect(packet, hi).map_err(|e| match e {
        CryptoError::InvalidSyntax
        | CryptoError::ProtocolMismatch
        | CryptoError::SpiMismatch
        | CryptoError::BadPadding => TxStatus::Malformed,
        _ => TxStatus::CryptoError,
    })
}

/// The ESN high-order bits for an outbound packet, from the low bits it carries.
fn outbound_seq_hi(sa: &SaEntry<Bundle>, packet: &[u8]) -> Result<BundleSeqHi, TxStatus> {
    let ports: [u16; 1];
    let port_list: &[u16] = match sa.info.sas.first().and_then(|s| s.udp_encap) {
        Some(u) => {
            ports = [u.remote_port];
            &ports
        }
        None => &[],
    };
    let mut hi = BundleSeqHi { esp: 0, ah: 0 };
    match ipsec::classify(packet, port_list) {
        Ok(Classified::Esp(k)) => hi.esp = sa.outbound_seq_hi(ESP, k.seq_lo),
        Ok(Classified::Ah(k)) => {
            hi.ah = sa.outbound_seq_hi(AH, k.seq_lo);
            if sa.info.has_esp() {
                // ESP follows AH: AH length = (payload-length field + 2) * 4 (RFC 4302 §2.2).
                let at = k.ip_offset_of_ipsec_header;
                let ah_len = packet
                    .get(at.saturating_add(1))
                    .map(|b| (usize::from(*b) + 2) * 4)
                    .ok_or(TxStatus::Malformed)?;
                let esp_seq = be32(packet, at.saturating_add(ah_len).saturating_add(4))
                    .ok_or(TxStatus::Malformed)?;
                hi.esp = sa.outbound_seq_hi(ESP, esp_seq);
            }
        }
        _ => return Err(TxStatus::Malformed),
    }
    Ok(hi)
}

/// Verify and decrypt one IP packet with one inbound bundle.
fn unprotect_one(sa: &SaEntry<Bundle>, packet: &mut [u8]) -> CryptoStatus {
    let highest = BundleSeq {
        esp: sa.highest(ESP),
        ah: sa.highest(AH),
    };
    match sa.crypto.unprotect(packet, highest) {
        Ok(u) => {
            if sa.info.has_esp() {
                sa.verified(ESP, u.seq.esp);
            }
            if sa.info.has_ah() {
                sa.verified(AH, u.seq.ah);
            }
            CryptoStatus::Success
        }
        Err(e) => status_of(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ip_range_parses_ethertypes() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 28];
        ip.resize(28, 0);
        f.extend_from_slice(&ip);
        f.resize(60, 0); // Ethernet padding.
        assert_eq!(ip_range(&f), Some(14..42));
        // One 802.1Q tag.
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x86, 0xdd]);
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 8];
        ip6.resize(48, 0);
        v.extend_from_slice(&ip6);
        assert_eq!(ip_range(&v), Some(18..66));
        // Truncated, wrong version, not IP.
        assert_eq!(ip_range(&f[..30]), None);
        let mut bad = f.clone();
        bad[14] = 0x65;
        assert_eq!(ip_range(&bad), None);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(ip_range(&arp), None);
        assert_eq!(ip_range(&[]), None);
    }

    #[test]
    fn crypto_error_mapping() {
        use CryptoStatus as S;
        let auth = |protocol, mode| CryptoError::AuthFailed { protocol, mode };
        assert_eq!(
            status_of(CryptoError::InvalidSyntax),
            S::InvalidPacketSyntax
        );
        assert_eq!(status_of(CryptoError::BadPadding), S::InvalidPacketSyntax);
        assert_eq!(status_of(CryptoError::ProtocolMismatch), S::InvalidProtocol);
        assert_eq!(status_of(CryptoError::SpiMismatch), S::GenericError);
        assert_eq!(status_of(CryptoError::Unsupported), S::GenericError);
        assert_eq!(
            status_of(auth(Protocol::Ah, Mode::Transport)),
            S::TransportAhAuthFailed
        );
        assert_eq!(
            status_of(auth(Protocol::Esp, Mode::Transport)),
            S::TransportEspAuthFailed
        );
        assert_eq!(
            status_of(auth(Protocol::Ah, Mode::Tunnel)),
            S::TunnelAhAuthFailed
        );
        assert_eq!(
            status_of(auth(Protocol::Esp, Mode::Tunnel)),
            S::TunnelEspAuthFailed
        );
    }
}
