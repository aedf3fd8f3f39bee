//! Minimal IPv4/IPv6, UDP and ICMP/ICMPv6 echo building and parsing for the application
//! endpoints (no options, no extension headers, no fragments).

use core::net::{IpAddr, SocketAddr};
use core::ops::Range;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// The fields the transport layers classify on, parsed from a cleartext IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol / IPv6 next header.
    pub protocol: u8,
    /// Source port (0 without ports; for ICMP the type is not used as a port).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// A parsed cleartext IP packet: its five-tuple and where the transport segment lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedIp {
    /// The five-tuple.
    pub tuple: FiveTuple,
    /// The transport segment inside the packet.
    pub l4: Range<usize>,
    /// The IP packet's total length (the slice may be longer: Ethernet padding).
    pub total: usize,
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// Parse an IPv4 or IPv6 packet; `None` when malformed, fragmented or truncated.
pub fn parse_ip(pkt: &[u8]) -> Option<ParsedIp> {
    let (src, dst, protocol, l4) = match pkt.first()? >> 4 {
        4 => {
            let hl = usize::from(pkt.first()? & 0x0F) * 4;
            let total = usize::from(be16(pkt, 2)?);
            if hl < 20 || total < hl || total > pkt.len() {
                return None;
            }
            let frag = be16(pkt, 6)?;
            if frag & 0x3FFF != 0 {
                return None;
            }
            let s: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), *pkt.get(9)?, hl..total)
        }
        6 => {
            let total = 40 + usize::from(be16(pkt, 4)?);
            if total > pkt.len() {
                return None;
            }
            let s: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), *pkt.get(6)?, 40..total)
        }
        _ => return None,
    };
    let seg = pkt.get(l4.clone())?;
    let (src_port, dst_port) = match protocol {
        PROTO_UDP | 6 => (be16(seg, 0)?, be16(seg, 2)?),
        _ => (0, 0),
    };
    Some(ParsedIp {
        tuple: FiveTuple {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        },
        total: l4.end,
        l4,
    })
}

/// One's-complement sum accumulator (RFC 1071).
struct Sum(u32);

impl Sum {
    /// Add `data` as big-endian 16-bit words (an odd last byte padded with zero).
    ///
    /// RFC 1071 §2 (B) and (C): the one's-complement sum is independent of byte order and
    /// can be computed in wider words, folding the carries once at the end. `data` is read as
    /// little-endian 64-bit words whose two 32-bit halves go to separate 64-bit lanes (eight
    /// lanes per 32-byte chunk: no byte swap and no carry chain, so the loop vectorizes with
    /// baseline SSE2), per block of at most 2^17 chunks (each lane then stays below 2^49:
    /// no overflow); block sums are added with end-around carry, folded to 16 bits and
    /// byte-swapped once, which gives the big-endian sum (B). The result equals the 16-bit
    /// word-by-word sum for any length (tested).
    fn add(&mut self, data: &[u8]) {
        const BLOCK: usize = 4 << 20;
        let mut acc = 0u64;
        let mut add = |x: u64| {
            let (sum, carry) = acc.overflowing_add(x);
            acc = sum + u64::from(carry);
        };
        for block in data.chunks(BLOCK) {
            let mut chunks = block.chunks_exact(32);
            let mut lanes = [0u64; 8];
            for c in &mut chunks {
                for (pair, w) in lanes.chunks_exact_mut(2).zip(c.chunks_exact(8)) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(w);
                    let x = u64::from_le_bytes(b);
                    if let [lo, hi] = pair {
                        *lo += x & 0xFFFF_FFFF;
                        *hi += x >> 32;
                    }
                }
            }
            let mut s: u64 = lanes.iter().sum();
            let mut words = chunks.remainder().chunks_exact(4);
            for c in &mut words {
                let mut w = [0u8; 4];
                w.copy_from_slice(c);
                s += u64::from(u32::from_le_bytes(w));
            }
            add(s);
            let mut pairs = words.remainder().chunks_exact(2);
            for c in &mut pairs {
                if let &[a, b] = c {
                    add(u64::from(u16::from_le_bytes([a, b])));
                }
            }
            if let &[a] = pairs.remainder() {
                add(u64::from(u16::from_le_bytes([a, 0])));
            }
        }
        while acc > 0xFFFF {
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
        // INVARIANT: the loop above left `acc` <= 0xFFFF, and `self.0` is <= 0xFFFF.
        let mut total = self.0 + u32::from((acc as u16).swap_bytes());
        if total > 0xFFFF {
            total = (total & 0xFFFF) + (total >> 16);
        }
        self.0 = total;
    }
    fn finish(self) -> u16 {
        !(self.0 as u16)
    }
}

/// Sum of an address's big-endian 32-bit words (at most four words below 2^32 each).
fn addr_words(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(v) => u64::from(v.to_bits()),
        IpAddr::V6(v) => {
            let x = v.to_bits();
            (0..4).map(|i| (x >> (32 * i)) as u32).map(u64::from).sum()
        }
    }
}

/// The transport checksum of `seg` (checksum field included as is) under the pseudo header
/// of `src`, `dst`, `protocol`. A correct segment sums to 0.
///
/// The pseudo header (RFC 768 / RFC 8200 §8.1: addresses, upper-layer length, protocol) is
/// summed as big-endian 32-bit words in integer arithmetic (its 16-bit word sum folds to the
/// same value), then the segment in one `Sum::add` pass.
pub fn l4_checksum(src: IpAddr, dst: IpAddr, protocol: u8, seg: &[u8]) -> u16 {
    let pseudo =
        addr_words(src) + addr_words(dst) + u64::from(seg.len() as u32) + u64::from(protocol);
    let mut s = Sum(fold16(pseudo));
    s.add(seg);
    s.finish()
}

/// `x` folded with end-around carry to 16 bits (one's-complement sum of its 16-bit words).
fn fold16(mut x: u64) -> u32 {
    while x > 0xFFFF {
        x = (x & 0xFFFF) + (x >> 16);
    }
    // INVARIANT: the loop above left `x` <= 0xFFFF.
    x as u32
}

/// Write an IP header (v4 or v6 by `src`; TTL/hop limit 64) for a payload of `payload_len`
/// bytes at the start of `buf`; returns the header length. `None` when the families differ,
/// the buffer is short or the packet would exceed 65535 bytes.
pub fn write_ip_header(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload_len: usize,
) -> Option<usize> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + payload_len).ok()?;
            let h = buf.get_mut(..20)?;
            // INVARIANT: `h` is exactly 20 bytes (the `get_mut(..20)` above succeeded); every
            // index below is < 20.
            h.fill(0);
            h[0] = 0x45;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[6] = 0x40; // DF
            h[8] = 64;
            h[9] = protocol;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let mut sum = Sum(0);
            sum.add(h);
            let c = sum.finish();
            // INVARIANT: `h` is still the 20-byte header slice.
            h[10..12].copy_from_slice(&c.to_be_bytes());
            Some(20)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(payload_len).ok()?;
            let h = buf.get_mut(..40)?;
            // INVARIANT: `h` is exactly 40 bytes (the `get_mut(..40)` above succeeded); every
            // index below is < 40.
            h.fill(0);
            h[0] = 0x60;
            h[4..6].copy_from_slice(&plen.to_be_bytes());
            h[6] = protocol;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            Some(40)
        }
        _ => None,
    }
}

/// Build a UDP datagram in an IP packet at the start of `buf`; returns the packet length.
pub fn build_udp(
    buf: &mut [u8],
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Option<usize> {
    let ulen = 8 + payload.len();
    let hl = write_ip_header(buf, src.ip(), dst.ip(), PROTO_UDP, ulen)?;
    let seg = buf.get_mut(hl..hl + ulen)?;
    // INVARIANT: `seg` is exactly `ulen = 8 + payload.len()` bytes (the `get_mut` above
    // succeeded): the header indices are < 8 and `seg[8..]` has `payload.len()` bytes.
    seg[0..2].copy_from_slice(&src.port().to_be_bytes());
    seg[2..4].copy_from_slice(&dst.port().to_be_bytes());
    seg[4..6].copy_from_slice(&u16::try_from(ulen).ok()?.to_be_bytes());
    seg[6..8].fill(0);
    seg[8..].copy_from_slice(payload);
    let mut c = l4_checksum(src.ip(), dst.ip(), PROTO_UDP, seg);
    if c == 0 {
        c = 0xFFFF;
    }
    // INVARIANT: `seg` is still `8 + payload.len()` bytes long.
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    Some(hl + ulen)
}

/// Build an ICMP (IPv4) or ICMPv6 echo message (`reply` selects the type) at the start of
/// `buf`; returns the packet length.
pub fn build_echo(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    reply: bool,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Option<usize> {
    let (proto, ty) = match (src.is_ipv6(), reply) {
        (false, false) => (PROTO_ICMP, 8),
        (false, true) => (PROTO_ICMP, 0),
        (true, false) => (PROTO_ICMPV6, 128),
        (true, true) => (PROTO_ICMPV6, 129),
    };
    let len = 8 + payload.len();
    let hl = write_ip_header(buf, src, dst, proto, len)?;
    let seg = buf.get_mut(hl..hl + len)?;
    // INVARIANT: `seg` is exactly `len = 8 + payload.len()` bytes (the `get_mut` above
    // succeeded): the header indices are < 8 and `seg[8..]` has `payload.len()` bytes.
    seg[0] = ty;
    seg[1] = 0;
    seg[2..4].fill(0);
    seg[4..6].copy_from_slice(&id.to_be_bytes());
    seg[6..8].copy_from_slice(&seq.to_be_bytes());
    seg[8..].copy_from_slice(payload);
    let c = if proto == PROTO_ICMP {
        let mut s = Sum(0);
        s.add(seg);
        s.finish()
    } else {
        l4_checksum(src, dst, proto, seg)
    };
    // INVARIANT: `seg` is still `8 + payload.len()` bytes long.
    seg[2..4].copy_from_slice(&c.to_be_bytes());
    Some(hl + len)
}

/// An ICMP/ICMPv6 echo message parsed from a transport segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    /// True for an echo reply.
    pub reply: bool,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
}

/// Parse and checksum-verify an echo request/reply; `None` for anything else.
pub fn parse_echo(t: &FiveTuple, seg: &[u8]) -> Option<Echo> {
    let ok = match t.protocol {
        PROTO_ICMP => {
            let mut s = Sum(0);
            s.add(seg);
            s.finish() == 0
        }
        PROTO_ICMPV6 => l4_checksum(t.src, t.dst, t.protocol, seg) == 0,
        _ => false,
    };
    if !ok || seg.len() < 8 {
        return None;
    }
    let reply = match (t.protocol, *seg.first()?) {
        (PROTO_ICMP, 8) | (PROTO_ICMPV6, 128) => false,
        (PROTO_ICMP, 0) | (PROTO_ICMPV6, 129) => true,
        _ => return None,
    };
    Some(Echo {
        reply,
        id: be16(seg, 4)?,
        seq: be16(seg, 6)?,
    })
}

/// Verify a UDP segment's checksum (0 = none, accepted for IPv4 only).
pub fn udp_checksum_ok(t: &FiveTuple, seg: &[u8]) -> bool {
    match be16(seg, 6) {
        Some(0) => t.src.is_ipv4(),
        Some(_) => l4_checksum(t.src, t.dst, PROTO_UDP, seg) == 0,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 1071 word by word, folding after every word: the reference for `Sum::add`.
    fn reference_sum(start: u32, data: &[u8]) -> u32 {
        let mut s = start;
        for c in data.chunks(2) {
            let w = u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]);
            s += u32::from(w);
            while s > 0xFFFF {
                s = (s & 0xFFFF) + (s >> 16);
            }
        }
        s
    }

    #[test]
    fn wide_sum_equals_the_word_by_word_sum() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for len in 0..300usize {
            for fill in [None, Some(0xFFu8), Some(0u8)] {
                let data: Vec<u8> = (0..len).map(|_| fill.unwrap_or_else(&mut next)).collect();
                for start in [0u32, 1, 0xFFFF] {
                    let mut s = Sum(start);
                    s.add(&data);
                    let want = reference_sum(start, &data);
                    // 0x0000 and 0xFFFF are both zero in one's complement; the reference
                    // never folds to 0 from a non-zero start, nor does `add`.
                    assert_eq!(s.0, want, "len {len} fill {fill:?} start {start:#x}");
                }
            }
        }
        // A long all-ones input exercises the block sums and their end-around carry.
        // Longer than one block (4 MiB), with an odd tail.
        let big = vec![0xFFu8; (4 << 20) + 7];
        let mut s = Sum(0);
        s.add(&big);
        assert_eq!(s.0, reference_sum(0, &big));
    }

    /// `l4_checksum` against RFC 1071 word by word over the pseudo header written out as
    /// bytes (RFC 768 for IPv4, RFC 8200 §8.1 for IPv6).
    #[test]
    fn l4_checksum_equals_the_pseudo_header_reference() {
        let pairs: [(IpAddr, IpAddr); 3] = [
            (
                "192.0.2.1".parse().unwrap(),
                "198.51.100.254".parse().unwrap(),
            ),
            (
                "255.255.255.255".parse().unwrap(),
                "203.0.113.9".parse().unwrap(),
            ),
            (
                "2001:db8::ffff:1".parse().unwrap(),
                "2001:db8:ffff:ffff:ffff:ffff:ffff:2".parse().unwrap(),
            ),
        ];
        for (src, dst) in pairs {
            for len in [0usize, 1, 8, 33, 1420, 9000] {
                let seg: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
                let mut ph = Vec::new();
                match (src, dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        ph.extend_from_slice(&s.octets());
                        ph.extend_from_slice(&d.octets());
                        ph.extend_from_slice(&[0, 17]);
                        ph.extend_from_slice(&(len as u16).to_be_bytes());
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        ph.extend_from_slice(&s.octets());
                        ph.extend_from_slice(&d.octets());
                        ph.extend_from_slice(&(len as u32).to_be_bytes());
                        ph.extend_from_slice(&[0, 0, 0, 17]);
                    }
                    _ => unreachable!(),
                }
                let want = !(reference_sum(reference_sum(0, &ph), &seg) as u16);
                assert_eq!(l4_checksum(src, dst, 17, &seg), want, "{src} {dst} {len}");
            }
        }
    }

    #[test]
    fn udp_round_trip_v4_v6() {
        for (s, d) in [
            ("192.0.2.1:1000", "192.0.2.2:2000"),
            ("[2001:db8::1]:1000", "[2001:db8::2]:2000"),
        ] {
            let (s, d): (SocketAddr, SocketAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let mut buf = [0u8; 128];
            let n = build_udp(&mut buf, s, d, b"hello").unwrap();
            let p = parse_ip(&buf[..n]).unwrap();
            assert_eq!(p.tuple.src_port, 1000);
            assert_eq!(p.tuple.dst_port, 2000);
            assert!(udp_checksum_ok(&p.tuple, &buf[p.l4.clone()]));
            buf[p.l4.end - 1] ^= 1;
            assert!(!udp_checksum_ok(&p.tuple, &buf[p.l4.clone()]));
        }
    }

    #[test]
    fn echo_round_trip() {
        for (s, d) in [("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "2001:db8::2")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let mut buf = [0u8; 128];
            let n = build_echo(&mut buf, s, d, false, 7, 9, b"ping").unwrap();
            let p = parse_ip(&buf[..n]).unwrap();
            let e = parse_echo(&p.tuple, &buf[p.l4.clone()]).unwrap();
            assert_eq!((e.reply, e.id, e.seq), (false, 7, 9));
        }
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse_ip(&[]).is_none());
        assert!(parse_ip(&[0x45, 0, 0, 10]).is_none());
        assert!(parse_ip(&[0x60; 20]).is_none());
    }
}
