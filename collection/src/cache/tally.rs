//! Hits, misses and (feature `metrics`) requests, counted per thread.
//!
//! A hit is served under a shard's shared lock, so it cannot count into the shard with a plain
//! add, and an atomic read-modify-write on a line every thread writes would cost more than
//! the rest of the hit on two threads. Each thread counts into its own stripe instead
//! (keel-rollingwindow's [`PerThreadCounters`]): a relaxed load and store on a line no other
//! thread writes. Readers sum the stripes.

use keel_rollingwindow::PerThreadCounters;

/// What a count is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    /// A lookup answered from the cache ([`CacheStats::hits`](super::CacheStats::hits)).
    Hit = 0,
    /// A lookup that found nothing, or a loaded value ([`CacheStats::misses`](super::CacheStats::misses)).
    Miss = 1,
    /// `keel_cache_requests_total{result="hit"}`: a request's first lookup found a value.
    RequestHit = 2,
    /// `keel_cache_requests_total{result="miss"}`: a request's first lookup found nothing.
    RequestMiss = 3,
    /// `keel_cache_requests_total{result="not_found"}`: it found a remembered "not found".
    RequestNotFound = 4,
}

/// The counts of one cache, by [`Count`].
#[derive(Default)]
pub(crate) struct Tally(PerThreadCounters<5>);

impl Tally {
    pub(crate) fn new() -> Self {
        Tally::default()
    }

    /// Counts one `count` for the calling thread.
    #[inline(always)]
    pub(crate) fn add(&self, count: Count) {
        self.0.add(count as usize);
    }

    /// Counts one of each of `counts` for the calling thread (its stripe is found once).
    #[inline(always)]
    pub(crate) fn add_each<const N: usize>(&self, counts: [Count; N]) {
        self.0.add_each(counts.map(|c| c as usize));
    }

    /// Every thread's `count` so far.
    pub(crate) fn sum(&self, count: Count) -> u64 {
        self.0.sum(count as usize)
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("hits", &self.sum(Count::Hit))
            .field("misses", &self.sum(Count::Miss))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_apart() {
        let tally = Tally::new();
        tally.add_each([Count::Hit, Count::RequestHit]);
        tally.add(Count::Miss);
        tally.add(Count::Hit);
        assert_eq!(tally.sum(Count::Hit), 2);
        assert_eq!(tally.sum(Count::RequestHit), 1);
        assert_eq!(tally.sum(Count::Miss), 1);
        assert_eq!(tally.sum(Count::RequestMiss), 0);
    }
}
