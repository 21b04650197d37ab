//! Uniform floats for the drop decision, drawn only while the breaker is throttling.
//!
//! A breaker built with a seed draws from one sequence of its own (splitmix64 over an
//! atomic counter): a fixed seed gives a fixed sequence on one thread, which is what
//! deterministic tests need, at the price of one shared read-modify-write per draw.
//!
//! Without a seed (the default) each thread draws from a generator of its own, shared by
//! every breaker the thread uses: no write to a line another thread writes, so rejections
//! on several threads do not make a cache line bounce between their cores (with the
//! shared counter, every draw on two threads moved it).

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// A breaker's source of draws.
#[derive(Debug)]
pub(crate) enum Rng {
    /// A seeded, shared sequence.
    Seeded(AtomicU64),
    /// The calling thread's generator.
    PerThread,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

thread_local! {
    /// splitmix64 state of this thread's generator; 0 = not seeded yet.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// splitmix64's output function.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits of `z` as a float in `[0, 1)`.
#[inline]
fn unit(z: u64) -> f64 {
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A random, non-zero starting state for a thread's generator.
#[cold]
fn thread_seed() -> u64 {
    RandomState::new().hash_one(GOLDEN) | 1
}

impl Rng {
    pub(crate) fn seeded(seed: u64) -> Rng {
        Rng::Seeded(AtomicU64::new(seed))
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn next_f64(&self) -> f64 {
        match self {
            Rng::Seeded(state) => unit(mix(state
                .fetch_add(GOLDEN, Ordering::Relaxed)
                .wrapping_add(GOLDEN))),
            Rng::PerThread => STATE
                .try_with(|state| {
                    let mut s = state.get();
                    if s == 0 {
                        s = thread_seed();
                    }
                    s = s.wrapping_add(GOLDEN);
                    // 0 stays "not seeded": a state that wraps to it is seeded afresh.
                    state.set(s);
                    unit(mix(s))
                })
                // A thread being torn down: a fresh random draw.
                .unwrap_or_else(|_| unit(mix(thread_seed()))),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn uniform(draws: &[f64]) {
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let below_half = draws.iter().filter(|&&x| x < 0.5).count();
        let n = draws.len();
        assert!(
            below_half.abs_diff(n / 2) < n * 3 / 100,
            "{below_half} of {n} below 0.5"
        );
    }

    #[test]
    fn seeded_sequences_repeat_and_look_uniform() {
        let a = Rng::seeded(7);
        let b = Rng::seeded(7);
        let xs: Vec<f64> = (0..10_000).map(|_| a.next_f64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_f64()));
        uniform(&xs);
    }

    #[test]
    fn per_thread_draws_look_uniform_and_differ_between_threads() {
        let rng = Rng::PerThread;
        let xs: Vec<f64> = (0..10_000).map(|_| rng.next_f64()).collect();
        uniform(&xs);
        let other: Vec<f64> = std::thread::spawn(|| {
            let rng = Rng::PerThread;
            (0..100).map(|_| rng.next_f64()).collect()
        })
        .join()
        .unwrap();
        assert_ne!(other[..], xs[..100]);
    }
}
