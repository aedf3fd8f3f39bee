//! Outbound sequence numbers (RFC 4303 §3.3.3, RFC 4302 §3.3.2).

use crate::error::FrameError;

/// The outbound sequence counter of one SA. The first number is 1; it never wraps: after the
/// last number (2^32 - 1, or 2^64 - 1 with ESN) [`SeqCounter::next`] fails with
/// [`FrameError::SeqOverflow`] and the SA must be rekeyed (RFC 4303 §3.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqCounter {
    next: u64,
    last: u64,
    exhausted: bool,
}

impl SeqCounter {
    /// A counter whose next number is `next` (0 is treated as 1).
    pub fn new(esn: bool, next: u64) -> Self {
        let last = if esn { u64::MAX } else { u64::from(u32::MAX) };
        let next = next.max(1);
        SeqCounter {
            next,
            last,
            exhausted: next > last,
        }
    }

    /// Hand out the next sequence number.
    ///
    /// (Named as in the crate contract; this is not an iterator because it can fail.)
    ///
    /// # Errors
    /// [`FrameError::SeqOverflow`] once the space is used up.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<u64, FrameError> {
        if self.exhausted {
            return Err(FrameError::SeqOverflow);
        }
        let n = self.next;
        if n == self.last {
            self.exhausted = true;
        } else {
            self.next = n + 1;
        }
        Ok(n)
    }

    /// The number the next call to [`SeqCounter::next`] returns (meaningless once exhausted).
    pub fn peek(&self) -> u64 {
        self.next
    }

    /// True when no number is left.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_one() {
        let mut c = SeqCounter::new(false, 0);
        assert_eq!(c.peek(), 1);
        assert_eq!(c.next(), Ok(1));
        assert_eq!(c.next(), Ok(2));
        assert_eq!(c.peek(), 3);
    }

    #[test]
    fn no_wrap_32() {
        let mut c = SeqCounter::new(false, u64::from(u32::MAX) - 1);
        assert_eq!(c.next(), Ok(u64::from(u32::MAX) - 1));
        assert_eq!(c.next(), Ok(u64::from(u32::MAX)));
        assert!(c.is_exhausted());
        assert_eq!(c.next(), Err(FrameError::SeqOverflow));
        assert_eq!(c.next(), Err(FrameError::SeqOverflow));
        assert_eq!(
            SeqCounter::new(false, 1 << 32).next(),
            Err(FrameError::SeqOverflow)
        );
    }

    #[test]
    fn esn_crosses_2_pow_32_and_stops_at_max() {
        let mut c = SeqCounter::new(true, u64::from(u32::MAX));
        assert_eq!(c.next(), Ok(u64::from(u32::MAX)));
        assert_eq!(c.next(), Ok(1 << 32));
        let mut c = SeqCounter::new(true, u64::MAX);
        assert_eq!(c.next(), Ok(u64::MAX));
        assert_eq!(c.next(), Err(FrameError::SeqOverflow));
    }
}
