//! IPv4 header (RFC 791 §3.1).

use core::net::Ipv4Addr;

use super::{get_array, get_u8, get_u16, internet_checksum, set_bytes, set_u8, set_u16};
use crate::error::FrameError;

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A read/write view of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and check its lengths (see [`Packet::check_len`]).
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the fixed header, the options (IHL) and the total length fit the buffer, and
    /// that IHL >= 5 and total length >= header length. The buffer may be longer than the total
    /// length (link-layer padding).
    ///
    /// # Errors
    /// [`FrameError::Truncated`] or [`FrameError::Malformed`].
    pub fn check_len(&self) -> Result<(), FrameError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(FrameError::Malformed);
        }
        if len < hl {
            return Err(FrameError::Truncated);
        }
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(FrameError::Malformed);
        }
        if len < tl {
            return Err(FrameError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    /// Type of service byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::TOS)
    }

    /// Total length (header + payload).
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) << 3
    }

    /// True when this is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::TTL)
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::PROTOCOL)
    }

    /// Header checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::DST))
    }

    /// The options bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..self.header_len())
            .unwrap_or(&[])
    }

    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        match self.buffer.as_ref().get(..self.header_len()) {
            Some(h) if h.len() >= HEADER_LEN => internet_checksum(h) == 0,
            _ => false,
        }
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(self.header_len()..usize::from(self.total_len()))
            .unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version 4 and the header length in bytes (rounded down to 4-byte words).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        let ihl = u8::try_from(header_len / 4).unwrap_or(0x0f) & 0x0f;
        set_u8(self.buffer.as_mut(), field::VER_IHL, 0x40 | ihl);
    }

    /// Set the type of service byte.
    pub fn set_tos(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), field::TOS, v);
    }

    /// Set the total length.
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Set the identification.
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Set the flags and fragment offset word: DF, MF and an offset in bytes (multiple of 8).
    pub fn set_flags_and_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & 0x1fff;
        if dont_frag {
            v |= 0x4000;
        }
        if more_frags {
            v |= 0x2000;
        }
        set_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Set the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), field::TTL, v);
    }

    /// Set the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), field::PROTOCOL, v);
    }

    /// Store a checksum value.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Set the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        set_bytes(self.buffer.as_mut(), field::SRC, &a.octets());
    }

    /// Set the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        set_bytes(self.buffer.as_mut(), field::DST, &a.octets());
    }

    /// Compute and store the header checksum (RFC 791 §3.1 "Header Checksum").
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = self
            .buffer
            .as_ref()
            .get(..hl)
            .map(internet_checksum)
            .unwrap_or(0);
        self.set_checksum(c);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_mut().get_mut(hl..tl).unwrap_or(&mut [])
    }
}

/// A parsed IPv4 header (options are not represented; `emit` writes none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type of service byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
}

impl Repr {
    /// Parse a view: version 4, valid checksum, lengths consistent, not a fragment.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] (version, checksum), [`FrameError::Truncated`],
    /// [`FrameError::Unsupported`] for fragments.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, FrameError> {
        p.check_len()?;
        if p.version() != 4 || !p.verify_checksum() {
            return Err(FrameError::Malformed);
        }
        if p.is_fragment() {
            return Err(FrameError::Unsupported);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()).saturating_sub(p.header_len()),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    /// Bytes of header `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write a 20-byte header (no options) with a correct checksum.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] when header + payload exceed 65535 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<(), FrameError> {
        let total = self
            .payload_len
            .checked_add(HEADER_LEN)
            .and_then(|t| u16::try_from(t).ok())
            .ok_or(FrameError::TooLarge)?;
        p.set_version_and_header_len(HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_flags_and_frag(self.dont_frag, false, 0);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // Source: RFC 3602 §4 case #5, the original ICMP echo request's IPv4 header, plus 4 bytes
    // of its ICMP payload.
    const PACKET: [u8; 24] = hex!("45000018 08f20000 4001fa3a c0a87b03 c0a87b64 08000ebd");

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(192, 168, 123, 3),
            dst_addr: Ipv4Addr::new(192, 168, 123, 100),
            protocol: 1,
            payload_len: 4,
            ttl: 64,
            tos: 0,
            ident: 0x08f2,
            dont_frag: false,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x08f2);
        assert!(!p.dont_frag() && !p.more_frags() && p.frag_offset() == 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 1);
        assert_eq!(p.checksum(), 0xfa3a);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 123, 3));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 123, 100));
        assert_eq!(p.payload(), &hex!("08000ebd"));
        assert!(p.options().is_empty());
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(20);
        p.set_tos(0);
        p.set_total_len(24);
        p.set_ident(0x08f2);
        p.set_flags_and_frag(false, false, 0);
        p.set_ttl(64);
        p.set_protocol(1);
        p.set_src_addr(Ipv4Addr::new(192, 168, 123, 3));
        p.set_dst_addr(Ipv4Addr::new(192, 168, 123, 100));
        p.fill_checksum();
        p.payload_mut().copy_from_slice(&hex!("08000ebd"));
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn check_len() {
        assert_eq!(
            Packet::new_checked(&PACKET[..19]).unwrap_err(),
            FrameError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&PACKET[..23]).unwrap_err(),
            FrameError::Truncated
        );
        let mut bad = PACKET;
        bad[0] = 0x44; // IHL 4
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            FrameError::Malformed
        );
        let mut bad = PACKET;
        bad[0] = 0x46; // IHL 6 (24 bytes) with total length 24 is fine ...
        assert!(Packet::new_checked(&bad[..]).is_ok());
        bad[0] = 0x47; // ... IHL 7 is longer than the buffer
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            FrameError::Truncated
        );
        let mut bad = PACKET;
        bad[3] = 16; // total length < header length
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            FrameError::Malformed
        );
        // Unchecked short view: accessors do not panic.
        let p = Packet::new_unchecked(&PACKET[..2]);
        assert_eq!(p.total_len(), 0);
        assert!(p.payload().is_empty() && !p.verify_checksum());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        let mut bad = PACKET;
        bad[10] ^= 1;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])),
            Err(FrameError::Malformed)
        );
        let mut frag = PACKET;
        Packet::new_unchecked(&mut frag[..]).set_flags_and_frag(false, true, 0);
        Packet::new_unchecked(&mut frag[..]).fill_checksum();
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&frag[..])),
            Err(FrameError::Unsupported)
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 24];
        buf[20..].copy_from_slice(&hex!("08000ebd"));
        let r = repr();
        assert_eq!(r.buffer_len(), 20);
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(buf, PACKET);
        let big = Repr {
            payload_len: 65516,
            ..r
        };
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(FrameError::TooLarge)
        );
    }
}
