//! Anti-replay window (RFC 4303 §3.4.3), a bitmap in the style of RFC 6479.
//!
//! The window is a ring of 64-bit blocks indexed by `seq / 64`; sliding the window forward
//! clears only the blocks it enters (RFC 6479 §2), so both check and update are O(1) in the
//! window size except for a jump, which clears at most every block once.
//!
//! # Required order (RFC 4303 §3.4.3)
//! 1. [`ReplayWindow::check`] the (ESN-inferred) sequence number **before** decrypting;
//! 2. verify the ICV and decrypt;
//! 3. [`ReplayWindow::check`] again with the sequence number the verification used (it may
//!    differ from step 1 when ESN inference disagreed) and only then [`ReplayWindow::update`].
//!
//! Updating before the ICV verifies would let forged packets slide the window.

use crate::error::ReplayError;
use crate::params::ParamError;

/// Smallest configurable window (RFC 4303 §3.4.3 default 32).
pub const MIN_WINDOW: u32 = 32;
/// Largest configurable window.
pub const MAX_WINDOW: u32 = 65536;

const BLOCK_BITS: u64 = 64;

/// The receive-side anti-replay state of one inbound SA.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    size: u32,
    highest: u64,
    /// Ring of blocks; its length is a power of two with at least one spare block.
    bits: Box<[u64]>,
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("highest", &self.highest)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// A window accepting sequence numbers up to `size - 1` behind the highest one received.
    ///
    /// # Errors
    /// [`ParamError::InvalidCombination`] when `size` is outside
    /// [`MIN_WINDOW`]`..=`[`MAX_WINDOW`].
    pub fn new(size: u32) -> Result<Self, ParamError> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&size) {
            return Err(ParamError::InvalidCombination);
        }
        // One spare block so the block holding `highest - size + 1` never aliases the newest.
        let blocks = (size as usize).div_ceil(BLOCK_BITS as usize) + 1;
        let blocks = blocks.next_power_of_two();
        Ok(ReplayWindow {
            size,
            highest: 0,
            bits: vec![0u64; blocks].into_boxed_slice(),
        })
    }

    /// The configured window size.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The highest sequence number accepted so far (0 before the first).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    fn slot(&self, seq: u64) -> (usize, u64) {
        let mask = (self.bits.len() as u64).wrapping_sub(1);
        (
            ((seq / BLOCK_BITS) & mask) as usize,
            1u64 << (seq % BLOCK_BITS),
        )
    }

    /// Would `seq` be accepted? Does not change the window.
    ///
    /// # Errors
    /// [`ReplayError::Zero`], [`ReplayError::TooOld`] (left of the window) or
    /// [`ReplayError::Duplicate`].
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        if seq > self.highest {
            return Ok(());
        }
        if self.highest - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (i, bit) = self.slot(seq);
        match self.bits.get(i) {
            Some(b) if b & bit == 0 => Ok(()),
            _ => Err(ReplayError::Duplicate),
        }
    }

    /// Record `seq` as received. Call only after the ICV verified and [`ReplayWindow::check`]
    /// passed; a number left of the window (or 0) is ignored.
    pub fn update(&mut self, seq: u64) {
        if seq == 0 {
            return;
        }
        if seq > self.highest {
            let old_block = self.highest / BLOCK_BITS;
            let new_block = seq / BLOCK_BITS;
            let n = self.bits.len() as u64;
            let steps = (new_block - old_block).min(n);
            for k in 1..=steps {
                let (i, _) = self.slot((old_block + k) * BLOCK_BITS);
                if let Some(b) = self.bits.get_mut(i) {
                    *b = 0;
                }
            }
            self.highest = seq;
        } else if self.highest - seq >= u64::from(self.size) {
            return;
        }
        let (i, bit) = self.slot(seq);
        if let Some(b) = self.bits.get_mut(i) {
            *b |= bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn accept(w: &mut ReplayWindow, seq: u64) -> Result<(), ReplayError> {
        w.check(seq)?;
        w.update(seq);
        Ok(())
    }

    #[test]
    fn sizes() {
        assert!(ReplayWindow::new(31).is_err());
        assert!(ReplayWindow::new(MAX_WINDOW + 1).is_err());
        for s in [32, 64, 100, 1024, 4096, MAX_WINDOW] {
            let w = ReplayWindow::new(s).unwrap();
            assert_eq!(w.size(), s);
            assert_eq!(w.highest(), 0);
        }
    }

    /// Exhaustive sequence walk (the shape of boringtun's replay counter test).
    #[test]
    fn exhaustive_sequence() {
        let mut w = ReplayWindow::new(64).unwrap();
        assert_eq!(accept(&mut w, 0), Err(ReplayError::Zero));
        assert_eq!(accept(&mut w, 1), Ok(()));
        assert_eq!(accept(&mut w, 1), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 3), Ok(()));
        assert_eq!(accept(&mut w, 2), Ok(()));
        assert_eq!(accept(&mut w, 2), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 64), Ok(()));
        assert_eq!(accept(&mut w, 65), Ok(()));
        // 65 - 1 = 64 >= size: 1 is now too old; 2 is the left edge (65 - 63).
        assert_eq!(accept(&mut w, 1), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 2), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 4), Ok(()));
        for s in 5..64 {
            assert_eq!(accept(&mut w, s), Ok(()), "{s}");
        }
        for s in 2..=65 {
            assert_eq!(accept(&mut w, s), Err(ReplayError::Duplicate), "{s}");
        }
        // A jump far ahead clears everything.
        assert_eq!(accept(&mut w, 10_000), Ok(()));
        assert_eq!(accept(&mut w, 10_000 - 63), Ok(()));
        assert_eq!(accept(&mut w, 10_000 - 64), Err(ReplayError::TooOld));
        for s in (10_000 - 62)..10_000 {
            assert_eq!(w.check(s), Ok(()), "{s}");
        }
        assert_eq!(w.highest(), 10_000);
        // Update left of the window is ignored.
        w.update(5);
        assert_eq!(w.check(5), Err(ReplayError::TooOld));
    }

    #[test]
    fn all_in_order_then_all_replayed_4096() {
        let mut w = ReplayWindow::new(4096).unwrap();
        for s in 1..=10_000u64 {
            assert_eq!(accept(&mut w, s), Ok(()));
        }
        for s in (10_000 - 4095)..=10_000u64 {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate));
        }
        assert_eq!(w.check(10_000 - 4096), Err(ReplayError::TooOld));
    }

    #[test]
    fn across_the_32_bit_boundary() {
        let mut w = ReplayWindow::new(32).unwrap();
        let base = (1u64 << 32) - 10;
        for s in base..base + 20 {
            assert_eq!(accept(&mut w, s), Ok(()));
        }
        assert_eq!(w.check(1u64 << 32), Err(ReplayError::Duplicate));
        assert_eq!(w.check(base + 20), Ok(()));
        assert_eq!(w.check(base - 13), Err(ReplayError::TooOld));
        assert_eq!(w.check(u64::MAX), Ok(()));
        w.update(u64::MAX);
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u64::MAX - 31), Ok(()));
        assert_eq!(w.check(u64::MAX - 32), Err(ReplayError::TooOld));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a naive model: the set of accepted numbers and the highest.
        #[test]
        fn matches_naive_model(
            size in prop_oneof![Just(32u32), Just(64), Just(100), Just(4096)],
            ops in proptest::collection::vec((0u64..6000, any::<bool>()), 1..400),
        ) {
            let mut w = ReplayWindow::new(size).unwrap();
            let mut seen = BTreeSet::new();
            let mut highest = 0u64;
            for (seq, do_update) in ops {
                let expect = if seq == 0 {
                    Err(ReplayError::Zero)
                } else if seq > highest {
                    Ok(())
                } else if highest - seq >= u64::from(size) {
                    Err(ReplayError::TooOld)
                } else if seen.contains(&seq) {
                    Err(ReplayError::Duplicate)
                } else {
                    Ok(())
                };
                prop_assert_eq!(w.check(seq), expect);
                if do_update && expect.is_ok() {
                    w.update(seq);
                    seen.insert(seq);
                    highest = highest.max(seq);
                }
                prop_assert_eq!(w.highest(), highest);
            }
        }
    }
}
