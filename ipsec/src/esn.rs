//! Extended sequence numbers (RFC 4303 §2.2.1 and Appendix A).
//!
//! Only the low 32 bits travel in the packet; the receiver infers the high 32 bits from the
//! highest sequence number it has accepted and its window (Appendix A2.1), and the sender and
//! receiver both include the high bits in the ICV: ESP with a separate integrity algorithm
//! appends them after the Next Header field for the ICV computation only (§2.2.1), AES-GCM puts
//! them in the AAD as SPI | seq_hi | seq_lo (RFC 4106 §5), AES-GMAC as part of its AAD
//! (RFC 4543 §3.2), AH appends them after the packet (RFC 4302 §3.3.3.2.2).

/// Infer the full 64-bit sequence number of a received packet (RFC 4303 Appendix A2.1).
///
/// `highest` is the highest sequence number accepted so far on the SA (`T` = `Th:Tl`),
/// `window` the anti-replay window size `W` (clamped to 1..=2^31). A packet whose low bits lie
/// inside the window is placed in the current subspace `Th` (or `Th - 1` when the window
/// straddles a 2^32 boundary), anything else in the next one. No wrap below 0 or above 2^64-1:
/// at those edges the current subspace is used.
pub fn infer(seq_lo: u32, highest: u64, window: u32) -> u64 {
    let w = window.clamp(1, 1 << 31);
    let tl = highest as u32;
    let th = (highest >> 32) as u32;
    let hi = if tl >= w - 1 {
        // Case A: window within one subspace.
        if seq_lo >= tl - (w - 1) {
            th
        } else {
            th.checked_add(1).unwrap_or(th)
        }
    } else {
        // Case B: window spans two subspaces.
        if seq_lo >= tl.wrapping_sub(w - 1) {
            th.checked_sub(1).unwrap_or(th)
        } else {
            th
        }
    };
    (u64::from(hi) << 32) | u64::from(seq_lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u64 = 1 << 32;

    #[test]
    fn same_subspace() {
        assert_eq!(infer(5, 0, 64), 5);
        assert_eq!(infer(100, 90, 64), 100);
        assert_eq!(infer(40, 100, 64), 40);
        // 100 - 63 = 37 is the left edge; 36 is taken as the next subspace (it would be too
        // old otherwise and then fails the ICV, RFC 4303 A2.2).
        assert_eq!(infer(37, 100, 64), 37);
        assert_eq!(infer(36, 100, 64), B + 36);
    }

    #[test]
    fn window_edges_across_2_pow_32() {
        // Highest just below the boundary: small numbers belong to the next subspace.
        let t = B - 5;
        assert_eq!(infer(3, t, 64), B + 3);
        assert_eq!(infer(u32::MAX, t, 64), B - 1);
        assert_eq!(infer((B - 5 - 63) as u32, t, 64), B - 5 - 63);
        // Highest just above the boundary: large numbers belong to the previous subspace.
        let t = B + 10;
        assert_eq!(infer(u32::MAX, t, 64), B - 1);
        assert_eq!(infer(u32::MAX - 52, t, 64), B - 53); // left edge: 10 - 63 mod 2^32
        assert_eq!(infer(u32::MAX - 53, t, 64), B + u64::from(u32::MAX - 53));
        assert_eq!(infer(11, t, 64), B + 11);
        assert_eq!(infer(0, t, 64), B);
        // Several subspaces up.
        let t = 7 * B + 2;
        assert_eq!(infer(u32::MAX, t, 4096), 7 * B - 1);
        assert_eq!(infer(3, t, 4096), 7 * B + 3);
    }

    #[test]
    fn extremes_do_not_wrap() {
        assert_eq!(infer(u32::MAX, 3, 64), u64::from(u32::MAX));
        assert_eq!(infer(1, u64::MAX, 64), 0xffff_ffff_0000_0001);
        assert_eq!(infer(0, 0, 0), 0);
        assert_eq!(infer(9, 5, u32::MAX), 9);
    }
}
