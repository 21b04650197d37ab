//! Hits, misses and (feature `metrics`) requests, counted per thread.
//!
//! A hit is served under a shard's shared lock, so it cannot count into the shard with a plain
//! add, and an atomic read-modify-write on a line every thread writes would cost more than
//! the rest of the hit on two threads. Each thread counts into its own stripe instead (its
//! [`thread_index`](keel_rollingwindow::thread_index), distinct among live threads): a
//! relaxed load and store on a line no other thread writes. Threads past the stripes, or
//! being torn down, share one more stripe with atomic adds. Readers sum the stripes.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

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

/// One thread's counts, by [`Count`].
type Stripe = CachePadded<[AtomicU64; 5]>;

/// The stripes of one cache.
pub(crate) struct Tally {
    stripes: Box<[Stripe]>,
    /// For threads without a stripe of their own (atomic adds).
    shared: Stripe,
}

/// Threads with a stripe of their own: thread indices are dense and reused, so this covers
/// the worker threads of any runtime on a machine of up to 16 cores twice over.
const STRIPES: usize = 32;

impl Tally {
    pub(crate) fn new() -> Self {
        Tally {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            shared: Stripe::default(),
        }
    }

    /// Counts one `count` for the calling thread.
    #[inline(always)]
    pub(crate) fn add(&self, count: Count) {
        self.add_each([count]);
    }

    /// Counts one of each of `counts` for the calling thread (the stripe is found once).
    #[inline(always)]
    pub(crate) fn add_each<const N: usize>(&self, counts: [Count; N]) {
        match keel_rollingwindow::thread_index().and_then(|i| self.stripes.get(i)) {
            Some(stripe) => {
                // Only this thread writes its stripe (the index is handed on only after its
                // owner exited, through a mutex): no read-modify-write needed.
                for count in counts {
                    let cell = &stripe[count as usize];
                    cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                }
            }
            None => {
                for count in counts {
                    self.shared[count as usize].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Every thread's `count` so far.
    pub(crate) fn sum(&self, count: Count) -> u64 {
        self.stripes
            .iter()
            .chain(std::iter::once(&self.shared))
            .map(|stripe| stripe[count as usize].load(Ordering::Relaxed))
            .sum()
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
    use std::sync::Barrier;

    /// More live threads than stripes: the ones past the stripes share the atomic stripe,
    /// and every count is kept.
    #[test]
    fn every_count_is_kept_past_the_stripes() {
        let tally = Tally::new();
        let threads = STRIPES + 8;
        // All alive at once, so their thread indices are distinct and some exceed STRIPES.
        let barrier = Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..1_000 {
                        tally.add_each([Count::Hit, Count::RequestHit]);
                    }
                    tally.add(Count::Miss);
                    barrier.wait();
                });
            }
        });
        assert_eq!(tally.sum(Count::Hit), threads as u64 * 1_000);
        assert_eq!(tally.sum(Count::RequestHit), threads as u64 * 1_000);
        assert_eq!(tally.sum(Count::Miss), threads as u64);
        assert!(tally.shared[Count::Hit as usize].load(Ordering::Relaxed) > 0);
    }
}
