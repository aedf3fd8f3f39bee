//! Ethernet II frame header (IEEE 802.3 §3.2.6 type field interpretation).

use super::{get_array, get_u16, set_bytes, set_u16};
use crate::error::FrameError;

/// Length of the Ethernet II header (no VLAN tag).
pub const HEADER_LEN: usize = 14;

/// EtherType values used here.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// ARP.
    pub const ARP: u16 = 0x0806;
}

/// A read/write view of an Ethernet II frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and check that the header is present.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the header is present.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when shorter than [`HEADER_LEN`].
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

    /// Destination MAC address.
    pub fn dst_addr(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), 0)
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), 6)
    }

    /// EtherType.
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 12)
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the destination MAC address.
    pub fn set_dst_addr(&mut self, a: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), 0, &a);
    }

    /// Set the source MAC address.
    pub fn set_src_addr(&mut self, a: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), 6, &a);
    }

    /// Set the EtherType.
    pub fn set_ethertype(&mut self, t: u16) {
        set_u16(self.buffer.as_mut(), 12, t);
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

/// A parsed Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source MAC address.
    pub src_addr: [u8; 6],
    /// Destination MAC address.
    pub dst_addr: [u8; 6],
    /// EtherType.
    pub ethertype: u16,
}

impl Repr {
    /// Parse a checked view.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when the header is incomplete.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, FrameError> {
        p.check_len()?;
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            ethertype: p.ethertype(),
        })
    }

    /// Bytes [`Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_dst_addr(self.dst_addr);
        p.set_src_addr(self.src_addr);
        p.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0xaa, 0xbb,
    ];

    fn repr() -> Repr {
        Repr {
            dst_addr: [2, 0, 0, 0, 0, 1],
            src_addr: [2, 0, 0, 0, 0, 2],
            ethertype: ethertype::IPV4,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&FRAME[..]).unwrap();
        assert_eq!(p.dst_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.src_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(p.ethertype(), ethertype::IPV4);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 16];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_dst_addr([2, 0, 0, 0, 0, 1]);
        p.set_src_addr([2, 0, 0, 0, 0, 2]);
        p.set_ethertype(ethertype::IPV4);
        p.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn check_len() {
        assert_eq!(
            Packet::new_checked(&FRAME[..13]).unwrap_err(),
            FrameError::Truncated
        );
        assert!(Packet::new_checked(&FRAME[..14]).is_ok());
        // Accessors on an unchecked short view do not panic.
        let p = Packet::new_unchecked(&FRAME[..3]);
        assert_eq!(p.ethertype(), 0);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&FRAME[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 16];
        buf[14..].copy_from_slice(&[0xaa, 0xbb]);
        let r = repr();
        assert_eq!(r.buffer_len(), 14);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, FRAME);
    }
}
