//! Checked wire views, in the style of smoltcp: a `Packet<T: AsRef<[u8]>>` view over a buffer
//! (`new_checked` validates the lengths once) and a validated high-level `Repr` with
//! `parse` / `buffer_len` / `emit`.
//!
//! Every accessor reads through bounds-checked helpers, so no accessor can panic even on a view
//! made with `new_unchecked` over a short buffer (a missing byte reads as zero, a write past the
//! end is dropped); after `new_checked` succeeded every field is present. Multi-byte fields are
//! in network byte order.
//!
//! Modules: [`ethernet`], [`ipv4`], [`ipv6`], [`udp`], [`esp`] (RFC 4303 header and trailer),
//! [`ah`] (RFC 4302) and [`udp_encap`] (RFC 3948 non-ESP marker and NAT keepalive).

pub mod ah;
pub mod esp;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod udp_encap;

/// IP protocol numbers used here (IANA "Assigned Internet Protocol Numbers").
pub mod ip_protocol {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// IPv4-in-IP (tunnel mode next header for an inner IPv4 packet).
    pub const IPV4: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6-in-IP (tunnel mode next header for an inner IPv6 packet).
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// ESP (RFC 4303).
    pub const ESP: u8 = 50;
    /// AH (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
    /// Mobility header.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;

    /// True for the IPv6 extension headers this crate does not walk (RFC 8200 §4, RFC 7045).
    pub fn is_ipv6_extension(p: u8) -> bool {
        matches!(
            p,
            HOPOPT | IPV6_ROUTE | IPV6_FRAG | IPV6_OPTS | MOBILITY | HIP | SHIM6
        )
    }
}

/// Read one byte; 0 when out of range.
#[inline]
pub(crate) fn get_u8(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

/// Read a big-endian u16; 0 when out of range.
#[inline]
pub(crate) fn get_u16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.saturating_add(2)) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

/// Read a big-endian u32; 0 when out of range.
#[inline]
pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.saturating_add(4)) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

/// Read `N` bytes; zeros when out of range.
#[inline]
pub(crate) fn get_array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(off..off.saturating_add(N)) {
        out.copy_from_slice(s);
    }
    out
}

/// Write one byte; dropped when out of range.
#[inline]
pub(crate) fn set_u8(b: &mut [u8], off: usize, v: u8) {
    if let Some(x) = b.get_mut(off) {
        *x = v;
    }
}

/// Write bytes at `off`; dropped when out of range.
#[inline]
pub(crate) fn set_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(off..off.saturating_add(v.len())) {
        s.copy_from_slice(v);
    }
}

/// Write a big-endian u16; dropped when out of range.
#[inline]
pub(crate) fn set_u16(b: &mut [u8], off: usize, v: u16) {
    set_bytes(b, off, &v.to_be_bytes());
}

/// Write a big-endian u32; dropped when out of range.
#[inline]
pub(crate) fn set_u32(b: &mut [u8], off: usize, v: u32) {
    set_bytes(b, off, &v.to_be_bytes());
}

/// The Internet checksum (RFC 1071): one's complement of the one's-complement sum of 16-bit
/// words, an odd trailing byte padded with zero.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let &[a, b] = c {
            sum = sum.wrapping_add(u32::from(u16::from_be_bytes([a, b])));
        }
    }
    if let &[a] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([a, 0])));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF).wrapping_add(sum >> 16);
    }
    // INVARIANT: the loop above folded `sum` into 16 bits.
    !(u16::try_from(sum).unwrap_or(0xFFFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d).
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        assert_eq!(internet_checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn helpers_never_panic() {
        let mut b = [1u8, 2, 3];
        assert_eq!(get_u16(&b, 2), 0);
        assert_eq!(get_u32(&b, usize::MAX), 0);
        assert_eq!(get_u16(&b, 1), 0x0203);
        set_u32(&mut b, 1, 7);
        set_u16(&mut b, usize::MAX, 7);
        assert_eq!(b, [1, 2, 3]);
        set_u16(&mut b, 1, 0xabcd);
        assert_eq!(b, [1, 0xab, 0xcd]);
        assert_eq!(get_array::<2>(&b, 2), [0, 0]);
    }
}
