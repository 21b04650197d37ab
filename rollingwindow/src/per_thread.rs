//! [`PerThreadCounters`]: counters a hot path bumps without an atomic read-modify-write.
//!
//! A locked add costs a few nanoseconds even on one thread (more than a whole cache hit
//! or shedder refusal is allowed), and on several threads the shared line bounces between
//! cores. Here each live thread owns a stripe: [`thread_index`](crate::thread_index) is
//! distinct among live threads, and an index is handed to a new thread only after its
//! previous owner exited, through the registry's lock, so the new owner sees the last value
//! stored. The owner alone writes its stripe, so a relaxed load and store add one exactly;
//! readers sum the stripes. Threads with an index past the stripes (more live threads than
//! [`PER_THREAD_STRIPES`]), and threads being torn down, share one more stripe with atomic
//! adds.

use std::sync::atomic::{AtomicU64, Ordering};

/// Threads with a stripe of their own: thread indices are dense and reused, so this covers
/// the worker threads of any runtime on a machine of up to 16 cores twice over.
pub const PER_THREAD_STRIPES: usize = 32;

/// One thread's `N` counters, on cache lines no other thread writes (128 bytes: the line
/// and the one the adjacent-line prefetcher pairs with it).
#[repr(align(128))]
struct Stripe<const N: usize>([AtomicU64; N]);

impl<const N: usize> Stripe<N> {
    fn new() -> Self {
        Stripe(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// `N` counters, each counted per thread: [`add`](Self::add) is a load and a store on the
/// calling thread's own cache line, [`sum`](Self::sum) adds the stripes up.
///
/// For counts on a hot path that many threads take at once (hits, refusals, calls). A sum
/// holds every add that happened before it, and maybe some concurrent ones.
///
/// ```
/// use keel_rollingwindow::PerThreadCounters;
///
/// const HITS: usize = 0;
/// const MISSES: usize = 1;
/// let counts = PerThreadCounters::<2>::new();
/// counts.add(HITS);
/// std::thread::scope(|s| {
///     s.spawn(|| counts.add_each([HITS, MISSES]));
/// });
/// assert_eq!((counts.sum(HITS), counts.sum(MISSES)), (2, 1));
/// ```
pub struct PerThreadCounters<const N: usize> {
    /// Inline, not behind a `Box`: one pointer less to follow on the hot path.
    stripes: [Stripe<N>; PER_THREAD_STRIPES],
    /// For threads without a stripe of their own (atomic adds).
    shared: Stripe<N>,
}

impl<const N: usize> PerThreadCounters<N> {
    /// `N` counters at zero.
    pub fn new() -> Self {
        PerThreadCounters {
            stripes: std::array::from_fn(|_| Stripe::new()),
            shared: Stripe::new(),
        }
    }

    /// Adds one to counter `counter` (below `N`) for the calling thread.
    ///
    /// # Panics
    ///
    /// If `counter >= N`.
    #[inline(always)]
    pub fn add(&self, counter: usize) {
        self.add_each([counter]);
    }

    /// Adds one to each of `counters` for the calling thread (its stripe is found once).
    ///
    /// # Panics
    ///
    /// If a counter is not below `N`.
    #[inline(always)]
    pub fn add_each<const M: usize>(&self, counters: [usize; M]) {
        match crate::thread_index().and_then(|i| self.stripes.get(i)) {
            Some(mine) => {
                // Only this thread writes its stripe while it lives (see the module docs).
                for counter in counters {
                    let cell = &mine.0[counter];
                    cell.store(
                        cell.load(Ordering::Relaxed).wrapping_add(1),
                        Ordering::Relaxed,
                    );
                }
            }
            None => {
                for counter in counters {
                    self.shared.0[counter].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counter `counter` summed over every thread.
    ///
    /// # Panics
    ///
    /// If `counter >= N`.
    pub fn sum(&self, counter: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[counter].load(Ordering::Relaxed))
            .fold(
                self.shared.0[counter].load(Ordering::Relaxed),
                u64::wrapping_add,
            )
    }
}

impl<const N: usize> Default for PerThreadCounters<N> {
    fn default() -> Self {
        PerThreadCounters::new()
    }
}

impl<const N: usize> std::fmt::Debug for PerThreadCounters<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sums: Vec<u64> = (0..N).map(|c| self.sum(c)).collect();
        f.debug_tuple("PerThreadCounters").field(&sums).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// More live threads than stripes, all adding at once (barrier-held, so their indices
    /// are distinct and some are past the stripes), then more threads reusing the indices
    /// of those that exited: every add is counted.
    #[test]
    fn every_add_is_counted_past_the_stripes_and_across_index_reuse() {
        let counts = PerThreadCounters::<3>::new();
        let threads = PER_THREAD_STRIPES + 8;
        let barrier = Barrier::new(threads);
        for _round in 0..2 {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..1_000 {
                            counts.add_each([0, 2]);
                        }
                        counts.add(1);
                        barrier.wait();
                    });
                }
            });
        }
        let expected = 2 * threads as u64;
        assert_eq!(counts.sum(0), expected * 1_000);
        assert_eq!(counts.sum(2), expected * 1_000);
        assert_eq!(counts.sum(1), expected);
        assert!(counts.shared.0[0].load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_stripe_is_on_lines_of_its_own() {
        assert_eq!(std::mem::align_of::<Stripe<5>>(), 128);
        assert_eq!(std::mem::size_of::<Stripe<5>>(), 128);
    }
}
