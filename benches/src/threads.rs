//! [`time_on_threads`]: the one timing driver for 1-thread and n-thread benchmarks.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// The slowest thread's wall time for `iters` calls of `op(shared)` on each of `threads` threads.
pub fn time_on_threads<T, F>(threads: usize, iters: u64, shared: &T, op: F) -> Duration
where
    T: Sync + ?Sized,
    F: Fn(&T) + Sync,
{
    assert!(threads >= 1, "need at least one thread");
    let barrier = Barrier::new(threads);
    let run = || {
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            // black_box: no loads hoisted out of the loop, no iterations merged.
            op(black_box(shared));
        }
        start.elapsed()
    };
    thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(run)).collect();
        let mine = run();
        helpers
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .fold(mine, Duration::max)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn every_thread_runs_every_iteration() {
        for threads in 1..=3 {
            let hits = AtomicU64::new(0);
            time_on_threads(threads, 1000, &hits, |h| {
                h.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(hits.into_inner(), 1000 * threads as u64);
        }
    }
}
