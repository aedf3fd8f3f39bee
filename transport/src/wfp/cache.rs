//! Generation-validated caches for the data path.
//!
//! The Bfe stamps the state a data-path query reads with a *generation*: a value taken from a
//! process-wide counter every time that state changes, and kept by clones (transaction
//! snapshots). Equal generations therefore mean equal content, even across transaction
//! rollbacks and different `Bfe` instances, so a result cached under a generation stays exact
//! for as long as the generation is unchanged. [`GenerationCache`] is a small direct-mapped
//! cache built on that rule; [`super::ClassifyCache`] and [`super::OutboundSaCache`] use it.

use core::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use ipsec::hash::BuildKeyHasher;

/// Process-wide source of generations (never 0).
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A generation no state has had before.
pub(crate) fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Direct-mapped cache of `key -> value` entries, each valid for the generation it was
/// computed at. Allocated once; no allocation per lookup.
#[derive(Clone, Debug)]
pub(crate) struct GenerationCache<K, V> {
    slots: Box<[Option<(u64, K, V)>]>,
    hits: u64,
    misses: u64,
}

impl<K: Copy + Eq + Hash, V: Copy> GenerationCache<K, V> {
    /// A cache of `slots` entries (rounded up to a power of two, at least 1).
    pub(crate) fn new(slots: usize) -> Self {
        GenerationCache {
            slots: vec![None; slots.max(1).next_power_of_two()].into_boxed_slice(),
            hits: 0,
            misses: 0,
        }
    }

    /// The value cached for `key` at `generation`, else `compute()` (stored for next time).
    pub(crate) fn get_or_compute(
        &mut self,
        generation: u64,
        key: &K,
        compute: impl FnOnce() -> V,
    ) -> V {
        let mask = self.slots.len() - 1;
        let i = (BuildKeyHasher::default().hash_one(key) as usize) & mask;
        if let Some(Some((g, k, v))) = self.slots.get(i)
            && *g == generation
            && k == key
        {
            self.hits += 1;
            return *v;
        }
        self.misses += 1;
        let v = compute();
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((generation, *key, v));
        }
        v
    }

    /// (hits, misses) so far.
    pub(crate) fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_for_the_same_key_and_generation() {
        let mut c: GenerationCache<u32, u32> = GenerationCache::new(3);
        assert_eq!(c.slots.len(), 4);
        let g = next_generation();
        assert_eq!(c.get_or_compute(g, &7, || 70), 70);
        assert_eq!(c.get_or_compute(g, &7, || unreachable!()), 70);
        assert_eq!(c.hits_and_misses(), (1, 1));
        // A new generation recomputes.
        let g2 = next_generation();
        assert_ne!(g, g2);
        assert_eq!(c.get_or_compute(g2, &7, || 71), 71);
        // Colliding keys evict each other but never answer for each other.
        for k in 0..64u32 {
            assert_eq!(c.get_or_compute(g2, &k, || k * 10 + 1), k * 10 + 1);
            assert_eq!(c.get_or_compute(g2, &k, || unreachable!()), k * 10 + 1);
        }
    }
}
