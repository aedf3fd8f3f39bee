//! UDP encapsulation of ESP (RFC 3948): what a UDP payload on the encapsulation port is.
//!
//! RFC 3948 §2.2: a payload starting with four zero bytes (the non-ESP marker) is IKE;
//! §2.3: a single 0xFF byte is a NAT-keepalive; otherwise the payload is an ESP packet, whose
//! SPI is never zero.

use super::{get_u8, get_u32, set_bytes, set_u8, set_u32};
use crate::error::FrameError;

/// The IANA port for UDP-encapsulated ESP and IKE (RFC 3948 §2).
pub const PORT: u16 = 4500;
/// The non-ESP marker (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The NAT-keepalive payload byte (RFC 3948 §2.3).
pub const KEEPALIVE: u8 = 0xFF;

/// A view of a UDP payload received on an encapsulation port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and check its length.
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// A keepalive is exactly one byte, the marker four, ESP at least its 8-byte header.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] for an empty payload, 2-3 bytes, or a non-zero first word
    /// without a full ESP header; [`FrameError::Malformed`] for a single byte other than 0xFF.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let b = self.buffer.as_ref();
        match b.len() {
            0 => Err(FrameError::Truncated),
            1 if get_u8(b, 0) == KEEPALIVE => Ok(()),
            1 => Err(FrameError::Malformed),
            2 | 3 => Err(FrameError::Truncated),
            4..=7 if self.is_marker() => Ok(()),
            4..=7 => Err(FrameError::Truncated),
            _ => Ok(()),
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// True for a NAT-keepalive (one byte 0xFF).
    pub fn is_keepalive(&self) -> bool {
        self.buffer.as_ref() == [KEEPALIVE]
    }

    /// True when the payload starts with the non-ESP marker (IKE).
    pub fn is_marker(&self) -> bool {
        self.buffer.as_ref().get(..4) == Some(&NON_ESP_MARKER[..])
    }

    /// The first four bytes as a number: the ESP SPI when not a marker.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0)
    }

    /// The bytes after the non-ESP marker (the IKE message), empty otherwise.
    pub fn ike_payload(&self) -> &[u8] {
        if self.is_marker() {
            self.buffer.as_ref().get(4..).unwrap_or(&[])
        } else {
            &[]
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write the non-ESP marker.
    pub fn set_marker(&mut self) {
        set_bytes(self.buffer.as_mut(), 0, &NON_ESP_MARKER);
    }

    /// Write the keepalive byte.
    pub fn set_keepalive(&mut self) {
        set_u8(self.buffer.as_mut(), 0, KEEPALIVE);
    }

    /// Write an ESP SPI in the first four bytes.
    pub fn set_spi(&mut self, spi: u32) {
        set_u32(self.buffer.as_mut(), 0, spi);
    }
}

/// What a UDP payload on an encapsulation port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Repr {
    /// An ESP packet with this SPI.
    Esp {
        /// The SPI (non-zero).
        spi: u32,
    },
    /// An IKE message behind the non-ESP marker.
    Ike,
    /// A NAT-keepalive.
    Keepalive,
}

impl Repr {
    /// Classify a checked view.
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, FrameError> {
        p.check_len()?;
        Ok(if p.is_keepalive() {
            Repr::Keepalive
        } else if p.is_marker() {
            Repr::Ike
        } else {
            Repr::Esp { spi: p.spi() }
        })
    }

    /// Bytes `emit` writes: 1 (keepalive) or 4 (marker or SPI).
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::Keepalive => 1,
            Repr::Ike | Repr::Esp { .. } => 4,
        }
    }

    /// Write the keepalive byte, the marker or the SPI.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        match *self {
            Repr::Keepalive => p.set_keepalive(),
            Repr::Ike => p.set_marker(),
            Repr::Esp { spi } => p.set_spi(spi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const ESP: [u8; 8] = hex!("00001001 00000001");
    const IKE: [u8; 6] = hex!("00000000 abcd");

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&ESP[..]).unwrap();
        assert!(!p.is_marker() && !p.is_keepalive());
        assert_eq!(p.spi(), 0x1001);
        let p = Packet::new_checked(&IKE[..]).unwrap();
        assert!(p.is_marker());
        assert_eq!(p.ike_payload(), &hex!("abcd"));
        assert!(Packet::new_checked(&[0xffu8][..]).unwrap().is_keepalive());
    }

    #[test]
    fn construct() {
        let mut buf = [0xaau8; 6];
        Packet::new_unchecked(&mut buf[..]).set_marker();
        assert_eq!(buf, hex!("00000000 aaaa"));
        let mut k = [0u8; 1];
        Packet::new_unchecked(&mut k[..]).set_keepalive();
        assert_eq!(k, [0xff]);
        let mut e = [0u8; 8];
        Packet::new_unchecked(&mut e[..]).set_spi(0x1001);
        assert_eq!(e, hex!("00001001 00000000"));
    }

    #[test]
    fn check_len() {
        assert_eq!(
            Packet::new_checked(&[][..]).unwrap_err(),
            FrameError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0u8][..]).unwrap_err(),
            FrameError::Malformed
        );
        assert_eq!(
            Packet::new_checked(&[0u8, 0][..]).unwrap_err(),
            FrameError::Truncated
        );
        assert!(Packet::new_checked(&IKE[..4]).is_ok());
        assert_eq!(
            Packet::new_checked(&ESP[..7]).unwrap_err(),
            FrameError::Truncated
        );
        assert!(Packet::new_checked(&ESP[..]).is_ok());
    }

    #[test]
    fn parse() {
        let parse = |b: &[u8]| Repr::parse(&Packet::new_unchecked(b));
        assert_eq!(parse(&ESP), Ok(Repr::Esp { spi: 0x1001 }));
        assert_eq!(parse(&IKE), Ok(Repr::Ike));
        assert_eq!(parse(&[0xff]), Ok(Repr::Keepalive));
        assert_eq!(parse(&[0xfe]), Err(FrameError::Malformed));
    }

    #[test]
    fn emit() {
        for r in [Repr::Keepalive, Repr::Ike, Repr::Esp { spi: 0x1001 }] {
            let mut buf = [0x55u8; 8];
            let n = r.buffer_len();
            r.emit(&mut Packet::new_unchecked(&mut buf[..n]));
            let back = if n == 1 {
                Repr::Keepalive
            } else {
                Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap()
            };
            assert_eq!(back, r);
        }
    }
}
