//! A small, fast hasher for the per-packet lookup tables of the NIC and the host stack.
//!
//! `std`'s default hasher (SipHash-1-3) is built to resist hash flooding, which costs
//! ~20 ns per lookup. The maps that use [`KeyHasher`] are keyed by values the *host* inserts
//! (SPIs, SA-context ids, filter addresses, layer GUIDs); bytes from the wire only look keys
//! up and never insert, so an attacker on the wire cannot build a collision chain. Do not use
//! it for a map whose keys come from the wire.

use core::hash::{BuildHasherDefault, Hasher};
use std::collections::HashMap;

/// Multiply-rotate hasher (one multiplication per 64-bit word, a final fold-multiply-fold so
/// the high bits reach the bucket index). Not keyed: see the module docs for where it may be used.
#[derive(Default, Clone, Copy, Debug)]
pub struct KeyHasher(u64);

/// `BuildHasher` of [`KeyHasher`].
pub type BuildKeyHasher = BuildHasherDefault<KeyHasher>;

/// A `HashMap` using [`KeyHasher`]; create it with `KeyHashMap::default()`.
pub type KeyHashMap<K, V> = HashMap<K, V, BuildKeyHasher>;

impl KeyHasher {
    /// 2^64 / golden ratio, odd.
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(Self::K);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high half down, multiply again and fold once more, so keys that differ only
        // in high bits (IPv6 prefixes, shifted values) still spread over the low (bucket) bits.
        let x = (self.0 ^ (self.0 >> 32)).wrapping_mul(Self::K);
        x ^ (x >> 32)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.mix(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(rest) {
                *d = *s;
            }
            self.mix(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::{BuildHasher, Hash};
    use std::collections::HashSet;

    fn h<T: Hash>(v: T) -> u64 {
        BuildKeyHasher::default().hash_one(v)
    }

    #[test]
    fn deterministic_and_spread() {
        assert_eq!(h(0x1001u32), h(0x1001u32));
        assert_ne!(h(0x1001u32), h(0x1002u32));
        // Sequential SPIs and addresses that differ only in their high bits land in
        // distinct low-bit buckets (what hashbrown indexes with) and distinct top-7-bit tags.
        let n = 4096u32;
        let low: HashSet<u64> = (0..n).map(|i| h(i) & 0xfff).collect();
        let tags: HashSet<u64> = (0..n).map(|i| h(i) >> 57).collect();
        assert!(
            low.len() > 2000,
            "low bits of sequential keys: {}",
            low.len()
        );
        assert_eq!(tags.len(), 128);
        let high: HashSet<u64> = (0..n).map(|i| h(u128::from(i) << 100) & 0xfff).collect();
        assert!(high.len() > 2000, "high-bit keys: {}", high.len());
    }

    #[test]
    fn map_works() {
        let mut m: KeyHashMap<u128, u32> = KeyHashMap::default();
        for i in 0..10_000u32 {
            m.insert(u128::from(i) * 0x1_0000_0001, i);
        }
        for i in 0..10_000u32 {
            assert_eq!(m.get(&(u128::from(i) * 0x1_0000_0001)), Some(&i));
        }
        assert_eq!(m.get(&7), None);
    }
}
