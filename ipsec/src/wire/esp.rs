//! ESP header and trailer (RFC 4303 §2).
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Security Parameters Index (SPI)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Sequence Number                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        IV (if any) | Payload Data ... | Padding (0-255 bytes)  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |  Pad Length   | Next Header   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Integrity Check Value (variable)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The header view covers SPI and sequence number; everything after is the (encrypted)
//! payload. The trailer ([`TrailerRepr`]) is parsed from the *decrypted* payload.

use super::{get_u8, get_u32, set_u8, set_u32};
use crate::error::FrameError;

/// Length of the ESP header (SPI + sequence number).
pub const HEADER_LEN: usize = 8;
/// Length of the fixed trailer fields (pad length + next header).
pub const TRAILER_LEN: usize = 2;

/// A read/write view of an ESP packet (header + opaque payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and check that the header is present.
    ///
    /// # Errors
    /// [`FrameError::Truncated`].
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the 8-byte header is present.
    ///
    /// # Errors
    /// [`FrameError::Truncated`].
    pub fn check_len(&self) -> Result<(), FrameError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(FrameError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Security Parameters Index.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0)
    }

    /// Sequence number (the low 32 bits with ESN).
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }

    /// Everything after the header (IV, payload, trailer, ICV).
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the SPI.
    pub fn set_spi(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 0, v);
    }

    /// Set the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 4, v);
    }

    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

/// A parsed ESP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number (low 32 bits with ESN).
    pub seq_number: u32,
}

impl Repr {
    /// Parse a view.
    ///
    /// # Errors
    /// [`FrameError::Truncated`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, FrameError> {
        p.check_len()?;
        Ok(Repr {
            spi: p.spi(),
            seq_number: p.seq_number(),
        })
    }

    /// Bytes `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_spi(self.spi);
        p.set_seq_number(self.seq_number);
    }
}

/// The ESP trailer: padding, pad length and next header (RFC 4303 §2.4-2.6).
///
/// RFC 4303 §2.4: the default padding is the monotonic sequence 1, 2, 3, ... and a receiver
/// must check it when no other padding scheme was negotiated; [`TrailerRepr::parse`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrailerRepr {
    /// Number of padding bytes before the pad length byte.
    pub pad_len: u8,
    /// Protocol of the payload (4 / 41 for an inner IPv4 / IPv6 packet in tunnel mode).
    pub next_header: u8,
}

impl TrailerRepr {
    /// The padding needed after `payload_len` bytes so that payload + padding + 2 is a multiple
    /// of `align` (the cipher block size, at least 4: RFC 4303 §2.4). `align` must be a power
    /// of two between 1 and 256; other values are treated as 4.
    pub fn padding_for(payload_len: usize, align: usize) -> u8 {
        let a = if align.is_power_of_two() && align <= 256 {
            align
        } else {
            4
        };
        let rem = payload_len.wrapping_add(TRAILER_LEN) & (a - 1);
        // INVARIANT: rem < a <= 256, so (a - rem) % a < 256.
        u8::try_from((a - rem) & (a - 1)).unwrap_or(0)
    }

    /// Parse the trailer at the end of a decrypted `payload || padding || pad_len || next_header`
    /// and check the default monotonic padding.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when shorter than 2 bytes or than the pad length says,
    /// [`FrameError::Malformed`] when a padding byte is not 1, 2, 3, ...
    pub fn parse(decrypted: &[u8]) -> Result<TrailerRepr, FrameError> {
        let n = decrypted.len();
        let (rest, tail) = match n.checked_sub(TRAILER_LEN) {
            Some(k) => decrypted.split_at(k),
            None => return Err(FrameError::Truncated),
        };
        let pad_len = get_u8(tail, 0);
        let next_header = get_u8(tail, 1);
        let start = rest
            .len()
            .checked_sub(usize::from(pad_len))
            .ok_or(FrameError::Truncated)?;
        let padding = rest.get(start..).ok_or(FrameError::Truncated)?;
        // Constant pattern check; accumulate so the timing does not depend on where it differs.
        let mut diff = 0u8;
        for (i, b) in padding.iter().enumerate() {
            diff |= b ^ ((i + 1) & 0xff) as u8;
        }
        if diff != 0 {
            return Err(FrameError::Malformed);
        }
        Ok(TrailerRepr {
            pad_len,
            next_header,
        })
    }

    /// Bytes `emit` writes (padding + 2).
    pub const fn buffer_len(&self) -> usize {
        self.pad_len as usize + TRAILER_LEN
    }

    /// Write padding 1, 2, 3, ..., the pad length and the next header into the last
    /// [`TrailerRepr::buffer_len`] bytes of `buf`.
    ///
    /// # Errors
    /// [`FrameError::NoRoom`] when `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), FrameError> {
        let n = buf.len();
        let start = n.checked_sub(self.buffer_len()).ok_or(FrameError::NoRoom)?;
        let t = buf.get_mut(start..).ok_or(FrameError::NoRoom)?;
        let pad = usize::from(self.pad_len);
        for (i, b) in t.iter_mut().enumerate().take(pad) {
            *b = ((i + 1) & 0xff) as u8;
        }
        set_u8(t, pad, self.pad_len);
        set_u8(t, pad + 1, self.next_header);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // Source: draft-mcgrew-gcm-test-01 §4 case 2 (SPI 0x0000a5f8, seq 10), header and IV.
    const PACKET: [u8; 16] = hex!("0000a5f8 0000000a facedbaddecaf888");

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.spi(), 0xa5f8);
        assert_eq!(p.seq_number(), 10);
        assert_eq!(p.payload(), &hex!("facedbaddecaf888"));
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 16];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_spi(0xa5f8);
        p.set_seq_number(10);
        p.payload_mut().copy_from_slice(&hex!("facedbaddecaf888"));
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn check_len() {
        assert_eq!(
            Packet::new_checked(&PACKET[..7]).unwrap_err(),
            FrameError::Truncated
        );
        assert!(
            Packet::new_checked(&PACKET[..8])
                .unwrap()
                .payload()
                .is_empty()
        );
        assert_eq!(Packet::new_unchecked(&PACKET[..6]).seq_number(), 0);
    }

    #[test]
    fn parse() {
        let r = Repr::parse(&Packet::new_checked(&PACKET[..]).unwrap()).unwrap();
        assert_eq!(
            r,
            Repr {
                spi: 0xa5f8,
                seq_number: 10
            }
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 16];
        buf[8..].copy_from_slice(&hex!("facedbaddecaf888"));
        let r = Repr {
            spi: 0xa5f8,
            seq_number: 10,
        };
        assert_eq!(r.buffer_len(), 8);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn padding_lengths() {
        // RFC 4303 §2.4: payload + padding + 2 aligned to the block (at least 4).
        assert_eq!(TrailerRepr::padding_for(0, 4), 2);
        assert_eq!(TrailerRepr::padding_for(2, 4), 0);
        assert_eq!(TrailerRepr::padding_for(3, 4), 3);
        assert_eq!(TrailerRepr::padding_for(14, 16), 0);
        assert_eq!(TrailerRepr::padding_for(15, 16), 15);
        assert_eq!(TrailerRepr::padding_for(0, 16), 14);
        for len in 0..100 {
            for a in [4usize, 8, 16] {
                let p = usize::from(TrailerRepr::padding_for(len, a));
                assert_eq!((len + p + 2) % a, 0);
                assert!(p < a);
            }
        }
    }

    #[test]
    fn trailer_parse_emit() {
        // Source: draft-mcgrew-gcm-test-01 case 12 plaintext: empty payload, 01 02 | 02 | 01.
        let t = TrailerRepr::parse(&hex!("01020201")).unwrap();
        assert_eq!(
            t,
            TrailerRepr {
                pad_len: 2,
                next_header: 1
            }
        );
        let mut buf = [0xeeu8; 6];
        t.emit(&mut buf).unwrap();
        assert_eq!(buf, hex!("eeee01020201"));
        assert_eq!(t.buffer_len(), 4);
        assert_eq!(t.emit(&mut [0u8; 3]), Err(FrameError::NoRoom));
        // Bad padding byte, pad length beyond the data, too short.
        assert_eq!(
            TrailerRepr::parse(&hex!("01030201")),
            Err(FrameError::Malformed)
        );
        assert_eq!(
            TrailerRepr::parse(&hex!("01020401")),
            Err(FrameError::Truncated)
        );
        assert_eq!(TrailerRepr::parse(&hex!("01")), Err(FrameError::Truncated));
        assert_eq!(TrailerRepr::parse(&hex!("0001")).unwrap().pad_len, 0);
    }
}
