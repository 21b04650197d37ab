//! [`PerThreadCount`]: a counter the hottest path (a local hit) bumps without an atomic
//! read-modify-write.
//!
//! A locked add costs about 2 ns on one thread, a tenth of a local hit, and on several
//! threads the shared line bounces between cores. Here each live thread owns a stripe:
//! keel-rollingwindow's `thread_index` is distinct among live threads, and an index is
//! handed to a new thread only after its previous owner exited (through the registry's
//! lock, so the new owner sees the last value stored). The owner alone writes its stripe,
//! so a relaxed load and store add one exactly; readers sum the stripes. Threads with an
//! index past the stripes (more live threads than [`STRIPES`]) share one atomic.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// Stripes per counter: 32 live threads count without a read-modify-write (4 KiB).
pub(crate) const STRIPES: usize = 32;

/// Stripes held inline (not behind a `Box`): one pointer less to follow on a local hit.
pub(crate) struct PerThreadCount {
    stripes: [CachePadded<AtomicU64>; STRIPES],
    shared: AtomicU64,
}

impl PerThreadCount {
    pub(crate) fn new() -> PerThreadCount {
        PerThreadCount {
            stripes: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
            shared: AtomicU64::new(0),
        }
    }

    /// Adds one.
    #[inline]
    pub(crate) fn add(&self) {
        match keel_rollingwindow::thread_index().and_then(|i| self.stripes.get(i)) {
            // Only this thread writes this stripe while it lives (see the module docs).
            Some(mine) => mine.store(
                mine.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            ),
            None => {
                self.shared.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The count: every add that happened before this call, and maybe some concurrent ones.
    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(self.shared.load(Ordering::Relaxed), u64::wrapping_add)
    }
}

impl Default for PerThreadCount {
    fn default() -> PerThreadCount {
        PerThreadCount::new()
    }
}

impl std::fmt::Debug for PerThreadCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PerThreadCount").field(&self.sum()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// More threads than stripes, all adding at once (barrier-started), some exiting and
    /// handing their index to new ones: the sum is exact.
    #[test]
    fn every_add_is_counted_across_threads_and_index_reuse() {
        let count = PerThreadCount::new();
        const THREADS: usize = STRIPES + 8;
        const ADDS: u64 = 2_000;
        for _round in 0..2 {
            let start = Barrier::new(THREADS);
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        start.wait();
                        for _ in 0..ADDS {
                            count.add();
                        }
                    });
                }
            });
        }
        assert_eq!(count.sum(), 2 * THREADS as u64 * ADDS);
    }
}
