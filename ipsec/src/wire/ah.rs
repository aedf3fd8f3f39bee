//! Authentication Header (RFC 4302 §2).
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Header   |  Payload Len  |          RESERVED             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Security Parameters Index (SPI)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Sequence Number Field                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Integrity Check Value-ICV (variable)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! RFC 4302 §2.2: Payload Len is the AH length in 32-bit words minus 2; the header is a
//! multiple of 4 bytes (IPv4) or 8 bytes (IPv6, §2.6 ICV padding).

use super::{get_u8, get_u16, get_u32, set_u8, set_u16, set_u32};
use crate::error::FrameError;

/// Length of the fixed part of AH (before the ICV).
pub const FIXED_LEN: usize = 12;

/// Length of the AH ICV field (with padding) for an ICV (or GMAC IV + tag) of `auth_len`
/// bytes: padded to make the whole header a multiple of 4 (IPv4) or 8 (IPv6) bytes
/// (RFC 4302 §2.6, §3.3.3.2.1).
pub fn icv_field_len(auth_len: usize, ipv6: bool) -> usize {
    let align = if ipv6 { 8 } else { 4 };
    let total = FIXED_LEN + auth_len;
    total.div_ceil(align) * align - FIXED_LEN
}

/// A read/write view of an AH header and what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and check its lengths.
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the fixed part is present, the header is at least 12 bytes and fits.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] or [`FrameError::Malformed`] (Payload Len 0).
    pub fn check_len(&self) -> Result<(), FrameError> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN {
            return Err(FrameError::Truncated);
        }
        if self.header_len() < FIXED_LEN {
            return Err(FrameError::Malformed);
        }
        if len < self.header_len() {
            return Err(FrameError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next header (protocol of what follows AH).
    pub fn next_header(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0)
    }

    /// The raw Payload Len field.
    pub fn payload_len(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 1)
    }

    /// AH length in bytes: (Payload Len + 2) * 4.
    pub fn header_len(&self) -> usize {
        (usize::from(self.payload_len()) + 2) * 4
    }

    /// The reserved field (zero when sent).
    pub fn reserved(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Security Parameters Index.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }

    /// Sequence number (the low 32 bits with ESN).
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 8)
    }

    /// The ICV field, including any padding.
    pub fn icv(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(FIXED_LEN..self.header_len())
            .unwrap_or(&[])
    }

    /// What follows the AH header.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the next header.
    pub fn set_next_header(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 0, v);
    }

    /// Set the raw Payload Len field.
    pub fn set_payload_len(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 1, v);
    }

    /// Set the reserved field.
    pub fn set_reserved(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Set the SPI.
    pub fn set_spi(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 4, v);
    }

    /// Set the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 8, v);
    }

    /// The ICV field, writable.
    pub fn icv_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(FIXED_LEN..hl)
            .unwrap_or(&mut [])
    }

    /// What follows the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or(&mut [])
    }
}

/// A parsed AH header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Next header.
    pub next_header: u8,
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number (low 32 bits with ESN).
    pub seq_number: u32,
    /// Length of the ICV field including padding (a multiple of 4).
    pub icv_len: usize,
}

impl Repr {
    /// Parse a view.
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, FrameError> {
        p.check_len()?;
        Ok(Repr {
            next_header: p.next_header(),
            spi: p.spi(),
            seq_number: p.seq_number(),
            icv_len: p.header_len() - FIXED_LEN,
        })
    }

    /// Bytes `emit` writes (12 + ICV field).
    pub const fn buffer_len(&self) -> usize {
        FIXED_LEN + self.icv_len
    }

    /// Write the header with a zeroed ICV field.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] when `icv_len` is not a multiple of 4 or too long (> 1012).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<(), FrameError> {
        if !self.icv_len.is_multiple_of(4) {
            return Err(FrameError::Malformed);
        }
        let words = u8::try_from(self.buffer_len() / 4 - 2).map_err(|_| FrameError::Malformed)?;
        p.set_next_header(self.next_header);
        p.set_payload_len(words);
        p.set_reserved(0);
        p.set_spi(self.spi);
        p.set_seq_number(self.seq_number);
        p.icv_mut().fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // AH with HMAC-SHA1-96 (RFC 4302 §2.2 example: Payload Len 4 for a 96-bit ICV).
    const PACKET: [u8; 28] = hex!(
        "32 04 0000 00001001 00000007"
        "0102030405060708090a0b0c"
        "deadbeef"
    );

    fn repr() -> Repr {
        Repr {
            next_header: 50,
            spi: 0x1001,
            seq_number: 7,
            icv_len: 12,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.next_header(), 50);
        assert_eq!(p.payload_len(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.reserved(), 0);
        assert_eq!(p.spi(), 0x1001);
        assert_eq!(p.seq_number(), 7);
        assert_eq!(p.icv(), &hex!("0102030405060708090a0b0c"));
        assert_eq!(p.payload(), &hex!("deadbeef"));
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_next_header(50);
        p.set_payload_len(4);
        p.set_reserved(0);
        p.set_spi(0x1001);
        p.set_seq_number(7);
        p.icv_mut()
            .copy_from_slice(&hex!("0102030405060708090a0b0c"));
        p.payload_mut().copy_from_slice(&hex!("deadbeef"));
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn check_len() {
        assert_eq!(
            Packet::new_checked(&PACKET[..11]).unwrap_err(),
            FrameError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&PACKET[..23]).unwrap_err(),
            FrameError::Truncated
        );
        assert!(Packet::new_checked(&PACKET[..24]).is_ok());
        let mut bad = PACKET;
        bad[1] = 0; // 8-byte header: shorter than the fixed part
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            FrameError::Malformed
        );
        assert!(Packet::new_unchecked(&PACKET[..13]).icv().is_empty());
    }

    #[test]
    fn parse() {
        assert_eq!(
            Repr::parse(&Packet::new_checked(&PACKET[..]).unwrap()).unwrap(),
            repr()
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0xffu8; 28];
        buf[24..].copy_from_slice(&hex!("deadbeef"));
        let r = repr();
        assert_eq!(r.buffer_len(), 24);
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let mut expect = PACKET;
        expect[12..24].fill(0);
        assert_eq!(buf, expect);
        let bad = Repr { icv_len: 10, ..r };
        assert_eq!(
            bad.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(FrameError::Malformed)
        );
    }

    #[test]
    fn icv_padding() {
        // RFC 4302 §2.6: 96-bit ICV needs no padding; 128-bit needs 4 bytes under IPv6;
        // RFC 4543 §4 (erratum 3643): GMAC IV + tag = 24 bytes, 4 bytes of padding in IPv6.
        assert_eq!(icv_field_len(12, false), 12);
        assert_eq!(icv_field_len(12, true), 12);
        assert_eq!(icv_field_len(16, false), 16);
        assert_eq!(icv_field_len(16, true), 20);
        assert_eq!(icv_field_len(24, false), 24);
        assert_eq!(icv_field_len(24, true), 28);
    }
}
