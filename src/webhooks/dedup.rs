//! Meta redelivers a webhook until it is answered in time, and may send one status twice
//! anyway: the same (message id, status) must count once. This remembers the pairs seen
//! recently, in bounded memory.
//!
//! Only a keyed 64-bit hash of each pair is kept, never the message id: ids are
//! customer-adjacent, and the hashes' key is drawn at random per process so they cannot be
//! matched to ids from outside. Two different pairs hash alike with odds of about
//! 2N²/2⁶⁴ per window (below 10⁻⁸ at the default N), which would undercount one status.
//!
//! Keys live in two generations of N each. When the current one is full it becomes the
//! previous one and the old previous one is forgotten, so a pair is remembered across at
//! least N and at most 2N−1 later distinct pairs: the window is counted in deliveries,
//! not time. Both generations are allocated once, at their full size, and reused, so a
//! flood of distinct ids cannot grow them: at the default N = 100,000 each is a
//! `HashSet<u64>` of 131,072 buckets of 9 bytes (8 for the hash, 1 control byte), 2.25 MiB
//! (2,359,328 bytes) for both.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Distinct pairs per generation by default. At a few statuses a second the window is
/// hours, at 30,000 a second only seconds; a redelivery that comes later than the window
/// (Meta retries a failed delivery for days) counts again.
pub const DEFAULT_GENERATION: usize = 100_000;

/// Remembers recently seen (message id, status) pairs by a keyed hash.
pub struct Dedup {
    keys: RandomState,
    per_generation: usize,
    current: HashSet<u64, BuildHasherDefault<Identity>>,
    previous: HashSet<u64, BuildHasherDefault<Identity>>,
}

impl Dedup {
    /// A set remembering a pair across between `per_generation` and
    /// `2 × per_generation − 1` later distinct pairs (`per_generation` at least 1).
    pub fn new(per_generation: usize) -> Self {
        let per_generation = per_generation.max(1);
        let generation = || HashSet::with_capacity_and_hasher(per_generation, Default::default());
        Dedup {
            keys: RandomState::new(),
            per_generation,
            current: generation(),
            previous: generation(),
        }
    }

    /// True the first time this (message id, status) is seen within the window, false for
    /// a repeat.
    pub fn first_time(&mut self, message_id: &str, status: &str) -> bool {
        // The tuple's `Hash` ends each string with a marker, so ("ab", "c") and ("a", "bc")
        // are different inputs.
        let key = self.keys.hash_one((message_id, status));
        if self.current.contains(&key) || self.previous.contains(&key) {
            return false;
        }
        if self.current.len() >= self.per_generation {
            std::mem::swap(&mut self.current, &mut self.previous);
            // Keeps the allocation: rotation never allocates.
            self.current.clear();
        }
        self.current.insert(key);
        true
    }

    /// Entries both generations can hold without allocating: what the memory bound is
    /// made of.
    pub fn capacity(&self) -> usize {
        self.current.capacity() + self.previous.capacity()
    }
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup::new(DEFAULT_GENERATION)
    }
}

/// The stored values are already keyed SipHash outputs, uniformly spread and unknown to
/// any sender, so hashing them again would buy nothing.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are stored; this is here because the trait requires it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(dedup: &mut Dedup, prefix: &str, count: usize) {
        for i in 0..count {
            assert!(dedup.first_time(&format!("{prefix}{i}"), "delivered"));
        }
    }

    #[test]
    fn a_redelivery_counts_once() {
        let mut dedup = Dedup::new(10);
        assert!(dedup.first_time("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI", "delivered"));
        assert!(!dedup.first_time("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI", "delivered"));
        fill(&mut dedup, "other", 5);
        assert!(!dedup.first_time("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI", "delivered"));
    }

    #[test]
    fn each_status_of_a_message_counts() {
        let mut dedup = Dedup::new(10);
        for status in ["sent", "delivered", "read"] {
            assert!(dedup.first_time("wamid.1", status), "{status}");
        }
        for status in ["sent", "delivered", "read"] {
            assert!(!dedup.first_time("wamid.1", status), "{status}");
        }
        // The two strings are not simply joined.
        assert!(dedup.first_time("wamid.1s", "ent"));
        assert!(dedup.first_time("wamid.", "1sent"));
    }

    #[test]
    fn first_of_a_generation_is_kept_for_2n_minus_1_later_keys() {
        let n = 8;
        let mut dedup = Dedup::new(n);
        assert!(dedup.first_time("kept", "sent"));
        fill(&mut dedup, "a", 2 * n - 1);
        assert!(!dedup.first_time("kept", "sent"));

        let mut dedup = Dedup::new(n);
        assert!(dedup.first_time("kept", "sent"));
        fill(&mut dedup, "a", 2 * n);
        assert!(dedup.first_time("kept", "sent"));
    }

    #[test]
    fn last_of_a_generation_is_kept_for_n_later_keys() {
        let n = 8;
        let mut dedup = Dedup::new(n);
        fill(&mut dedup, "before", n - 1);
        assert!(dedup.first_time("kept", "sent"));
        fill(&mut dedup, "a", n);
        assert!(!dedup.first_time("kept", "sent"));

        let mut dedup = Dedup::new(n);
        fill(&mut dedup, "before", n - 1);
        assert!(dedup.first_time("kept", "sent"));
        fill(&mut dedup, "a", n + 1);
        assert!(dedup.first_time("kept", "sent"));
    }

    #[test]
    fn a_flood_of_distinct_ids_does_not_grow_memory() {
        let mut dedup = Dedup::default();
        let before = dedup.capacity();
        // 131,072 buckets per generation hold 7/8 of that: the 2.25 MiB of the module doc.
        assert!(before >= 2 * DEFAULT_GENERATION);
        assert!(before <= 2 * 114_688, "{before}");
        fill(&mut dedup, "wamid.flood", 5 * DEFAULT_GENERATION + 7);
        assert_eq!(dedup.capacity(), before);
    }

    #[test]
    fn a_zero_generation_still_deduplicates_back_to_back_repeats() {
        let mut dedup = Dedup::new(0);
        assert!(dedup.first_time("wamid.1", "sent"));
        assert!(!dedup.first_time("wamid.1", "sent"));
    }
}
