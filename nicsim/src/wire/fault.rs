//! A seeded fault injector that wraps any port (smoltcp's `FaultInjector`): loss, duplication,
//! reordering within a window, bit corruption and delay on the virtual clock, applied to
//! transmitted frames. It counts exactly what it did ([`FaultStats`]), so tests can assert.
//!
//! Same seed, same configuration and same input give the same output, frame for frame.
//!
//! Completions: every frame given to [`Wire::transmit`] is completed at once (as sent; lost
//! frames come back with their buffer). Frames held back (delay, reordering) are released on
//! later calls; a transmit call with an empty batch releases every frame held for reordering
//! (so nothing stays stuck when traffic stops) and every delayed frame that is due.

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::{Wire, WireError, husk, mark_sent, nanos};
use crate::frame::Frame;

/// What to inject. Probabilities are in `0.0..=1.0` (values outside are clamped).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultConfig {
    /// RNG seed.
    pub seed: u64,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame is held back and overtaken by 1..=`reorder_window` later frames.
    pub reorder: f64,
    /// The reordering window (frames); 0 disables reordering.
    pub reorder_window: u32,
    /// Probability that one random bit of a frame is flipped.
    pub corrupt: f64,
    /// Fixed delay added to every frame (virtual time).
    pub delay: Duration,
    /// Extra uniformly random delay in `0..=jitter`.
    pub jitter: Duration,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_window: 0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
        }
    }
}

/// What the injector did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames given to the injector.
    pub input: u64,
    /// Frames passed to the inner port (duplicates included).
    pub passed: u64,
    /// Frames lost.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames held back for reordering.
    pub reordered: u64,
    /// Frames with a flipped bit.
    pub corrupted: u64,
    /// Frames delayed.
    pub delayed: u64,
}

/// Wraps a port and injects faults into what it transmits. See the module docs.
#[derive(Debug)]
pub struct FaultInjector<W> {
    inner: W,
    cfg: FaultConfig,
    rng: ChaCha8Rng,
    stats: FaultStats,
    /// Frames held for reordering, with the number of frames still to overtake them.
    held: Vec<(u32, Frame)>,
    /// Delayed frames with their due time (ns), in arrival order.
    delayed: Vec<(u64, Frame)>,
    /// Frames going to the inner port in this call.
    out: Vec<Frame>,
    /// Completions from the inner port (already reported to our caller).
    scratch: Vec<Frame>,
    /// Buffers for duplicates.
    spare: Vec<Vec<u8>>,
}

const SPARE_MAX: usize = 64;

impl<W: Wire> FaultInjector<W> {
    /// Wrap `inner`.
    pub fn new(inner: W, cfg: FaultConfig) -> Self {
        FaultInjector {
            inner,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            stats: FaultStats::default(),
            held: Vec::new(),
            delayed: Vec::new(),
            out: Vec::new(),
            scratch: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// What was injected so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// The wrapped port.
    pub fn inner(&self) -> &W {
        &self.inner
    }

    /// The wrapped port, mutable.
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Frames currently held back (delay or reordering).
    pub fn held(&self) -> usize {
        self.held.len() + self.delayed.len()
    }

    fn roll(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits to a float in [0, 1).
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.next_u64() % n }
    }

    fn copy_of(&mut self, f: &Frame) -> Frame {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(&f.buf);
        Frame {
            buf,
            data: f.data.clone(),
            tx: f.tx,
            rx: f.rx,
            cookie: f.cookie,
        }
    }

    /// Forward one frame (after reordering decisions) and let held frames count it.
    fn emit(&mut self, f: Frame) {
        self.out.push(f);
        self.stats.passed += 1;
        let mut i = 0;
        while i < self.held.len() {
            let release = match self.held.get_mut(i) {
                Some(h) => {
                    h.0 = h.0.saturating_sub(1);
                    h.0 == 0
                }
                None => false,
            };
            if release {
                let (_, g) = self.held.remove(i);
                self.out.push(g);
                self.stats.passed += 1;
            } else {
                i += 1;
            }
        }
    }

    /// Reorder or pass one frame whose delay (if any) has elapsed.
    fn route(&mut self, f: Frame) {
        if self.cfg.reorder_window > 0 && self.roll(self.cfg.reorder) {
            let k = 1 + self.below(u64::from(self.cfg.reorder_window)) as u32;
            self.stats.reordered += 1;
            self.held.push((k, f));
        } else {
            self.emit(f);
        }
    }
}

impl<W: Wire> Wire for FaultInjector<W> {
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        let now_ns = nanos(now);
        let flush = frames.is_empty();
        let first_done = done.len();
        // Release delayed frames that are due, in arrival order.
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed.get(i).is_some_and(|(due, _)| *due <= now_ns) {
                let (_, f) = self.delayed.remove(i);
                self.route(f);
            } else {
                i += 1;
            }
        }
        let delay_ns = nanos(self.cfg.delay);
        let jitter_ns = nanos(self.cfg.jitter);
        for mut f in frames.drain(..) {
            self.stats.input += 1;
            mark_sent(&mut f);
            if self.roll(self.cfg.loss) {
                self.stats.dropped += 1;
                done.push(f);
                continue;
            }
            done.push(husk(&f));
            if self.roll(self.cfg.corrupt) {
                let bits = (f.len() as u64).saturating_mul(8);
                if bits > 0 {
                    let bit = self.below(bits);
                    let byte = (bit / 8) as usize;
                    if let Some(b) = f.bytes_mut().get_mut(byte) {
                        *b ^= 1 << (bit % 8);
                        self.stats.corrupted += 1;
                    }
                }
            }
            let dup = if self.roll(self.cfg.duplicate) {
                self.stats.duplicated += 1;
                Some(self.copy_of(&f))
            } else {
                None
            };
            for g in core::iter::once(f).chain(dup) {
                if delay_ns > 0 || jitter_ns > 0 {
                    let extra = self.below(jitter_ns.saturating_add(1));
                    let due = now_ns.saturating_add(delay_ns).saturating_add(extra);
                    self.stats.delayed += 1;
                    self.delayed.push((due, g));
                } else {
                    self.route(g);
                }
            }
        }
        if flush {
            for (_, g) in core::mem::take(&mut self.held) {
                self.out.push(g);
                self.stats.passed += 1;
            }
        }
        let mut out = core::mem::take(&mut self.out);
        let r = self.inner.transmit(now, &mut out, &mut self.scratch);
        self.out = out;
        // Buffers the port hands back (TAP: the frame's own; MemWire: ones the peer recycled)
        // go first to this call's husks, so the sender's driver gets its buffers back, then
        // to the spare pool for duplicates.
        let mut husks = done
            .iter_mut()
            .skip(first_done)
            .filter(|h| h.buf.capacity() == 0);
        for c in self.scratch.drain(..) {
            if c.buf.capacity() == 0 {
                continue;
            }
            if let Some(h) = husks.next() {
                h.buf = c.buf;
            } else if self.spare.len() < SPARE_MAX {
                self.spare.push(c.buf);
            }
        }
        r
    }

    fn receive(
        &mut self,
        now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        self.inner.receive(now, out, max)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.inner.recycle(buf);
    }

    fn next_event(&self) -> Option<Duration> {
        let mine = self
            .delayed
            .iter()
            .map(|(d, _)| *d)
            .min()
            .map(Duration::from_nanos);
        match (mine, self.inner.next_event()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::MemWire;

    fn frame(i: u64) -> Frame {
        let mut f = Frame::from_bytes(&i.to_be_bytes(), 0, 0);
        f.cookie = i;
        f
    }

    /// Send `n` frames one per millisecond, then flush; return what arrived (cookie, bytes).
    fn run(cfg: FaultConfig, n: u64) -> (Vec<(u64, Vec<u8>)>, FaultStats, usize) {
        let (a, mut b) = MemWire::pair();
        let mut fi = FaultInjector::new(a, cfg);
        let mut done = Vec::new();
        let mut got = Vec::new();
        for i in 0..n {
            let now = Duration::from_millis(i);
            let mut batch = vec![frame(i)];
            fi.transmit(now, &mut batch, &mut done).unwrap();
            b.receive(now, &mut got, usize::MAX).unwrap();
        }
        let end = Duration::from_secs(3600);
        fi.transmit(end, &mut Vec::new(), &mut done).unwrap();
        fi.transmit(end, &mut Vec::new(), &mut done).unwrap();
        b.receive(end, &mut got, usize::MAX).unwrap();
        assert_eq!(fi.held(), 0);
        let out = got.iter().map(|f| (f.cookie, f.bytes().to_vec())).collect();
        (out, fi.stats(), done.len())
    }

    fn all() -> FaultConfig {
        FaultConfig {
            seed: 42,
            loss: 0.1,
            duplicate: 0.1,
            reorder: 0.2,
            reorder_window: 4,
            corrupt: 0.1,
            delay: Duration::from_micros(500),
            jitter: Duration::from_millis(3),
        }
    }

    #[test]
    fn same_seed_same_result() {
        let (a, sa, _) = run(all(), 500);
        let (b, sb, _) = run(all(), 500);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _, _) = run(FaultConfig { seed: 43, ..all() }, 500);
        assert_ne!(a, c, "another seed gives another result");
    }

    #[test]
    fn counts_match_what_happened() {
        let n = 2000;
        let (out, s, completions) = run(all(), n);
        assert_eq!(completions as u64, n, "every input frame completes once");
        assert_eq!(s.input, n);
        assert_eq!(out.len() as u64, n - s.dropped + s.duplicated);
        assert_eq!(s.passed, out.len() as u64);
        assert_eq!(
            s.delayed,
            out.len() as u64,
            "every forwarded copy was delayed"
        );
        // Corrupted frames differ from their original bytes in exactly one bit.
        let flipped = out
            .iter()
            .filter(|(c, b)| {
                let orig = c.to_be_bytes();
                let d: u32 = orig.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
                assert!(d <= 1);
                d == 1
            })
            .count() as u64;
        // A corrupted frame that was duplicated appears twice.
        assert!(
            flipped >= s.corrupted && flipped <= 2 * s.corrupted,
            "{flipped} {s:?}"
        );
        assert!(
            s.dropped > 100 && s.duplicated > 100 && s.corrupted > 100 && s.reordered > 100,
            "{s:?}"
        );
        let cookies: Vec<u64> = out.iter().map(|(c, _)| *c).collect();
        assert!(
            cookies.windows(2).any(|w| w[0] > w[1]),
            "some reordering happened"
        );
    }

    #[test]
    fn reorder_window_bounds_displacement() {
        let cfg = FaultConfig {
            seed: 7,
            reorder: 0.3,
            reorder_window: 3,
            ..FaultConfig::default()
        };
        let (out, s, _) = run(cfg, 1000);
        assert_eq!(out.len(), 1000);
        assert!(s.reordered > 200);
        let cookies: Vec<u64> = out.iter().map(|(c, _)| *c).collect();
        let mut sorted = cookies.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..1000).collect::<Vec<_>>(),
            "nothing lost or duplicated"
        );
    }

    #[test]
    fn no_faults_is_transparent() {
        let (out, s, _) = run(FaultConfig::default(), 100);
        assert_eq!(
            out.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        assert_eq!(
            s,
            FaultStats {
                input: 100,
                passed: 100,
                ..FaultStats::default()
            }
        );
    }

    #[test]
    fn delay_follows_the_virtual_clock() {
        let cfg = FaultConfig {
            delay: Duration::from_millis(10),
            ..FaultConfig::default()
        };
        let (a, mut b) = MemWire::pair();
        let mut fi = FaultInjector::new(a, cfg);
        let mut done = Vec::new();
        let mut got = Vec::new();
        fi.transmit(Duration::ZERO, &mut vec![frame(1)], &mut done)
            .unwrap();
        assert_eq!(fi.next_event(), Some(Duration::from_millis(10)));
        fi.transmit(Duration::from_millis(9), &mut Vec::new(), &mut done)
            .unwrap();
        assert_eq!(b.receive(Duration::ZERO, &mut got, 10).unwrap(), 0);
        fi.transmit(Duration::from_millis(10), &mut Vec::new(), &mut done)
            .unwrap();
        assert_eq!(b.receive(Duration::ZERO, &mut got, 10).unwrap(), 1);
        assert_eq!(fi.next_event(), None);
    }
}
