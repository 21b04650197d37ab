//! Per-thread state of the hot path: which in-flight stripe a thread uses, and a small
//! random generator that picks the requests whose latency is measured.
//!
//! The stripe is the thread's index from keel-rollingwindow's registry: distinct among
//! live threads and reused after a thread exits, so two live threads share a stripe only
//! when there are more of them than stripes (a counter handing out ever-growing numbers
//! would make threads that come and go collide on one stripe by chance).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Seeds each thread's generator differently.
static NEXT_SEED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// xorshift64 state; 0 = not seeded yet (0 is xorshift's fixed point, never a state).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

#[cold]
fn seed() -> u64 {
    // splitmix64 of a per-thread number.
    let n = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// This thread's stripe number (callers mask it to their stripe count). A thread being
/// torn down uses stripe 0: the counters are atomic, sharing costs only contention.
#[inline]
pub(crate) fn stripe() -> usize {
    keel_rollingwindow::thread_index().unwrap_or(0)
}

/// Whether to time this request: true with probability `1 / period` (always for a
/// period of 1).
///
/// Random rather than every `period`-th request: a thread that serves two shedders in
/// turn would otherwise time only one of them.
#[inline]
pub(crate) fn sample(period: u32) -> bool {
    if period <= 1 {
        return true;
    }
    let pick = RNG
        .try_with(|rng| {
            let mut x = rng.get();
            if x == 0 {
                x = seed();
            }
            // xorshift64: a handful of instructions, good enough to pick samples.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rng.set(x);
            // Multiply-shift maps the top 32 bits onto 0..period without a division.
            ((x >> 32) * u64::from(period)) >> 32
        })
        .unwrap_or(1);
    pick == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_stripe_and_threads_differ() {
        let mine = stripe();
        assert_eq!(stripe(), mine);
        let other = std::thread::spawn(stripe).join().unwrap();
        assert_ne!(other, mine);
    }

    #[test]
    fn sampling_picks_about_one_in_period() {
        assert!((0..100).all(|_| sample(1)));
        let n = 80_000;
        let picked = (0..n).filter(|_| sample(8)).count();
        let expected = n / 8;
        assert!(
            picked.abs_diff(expected) < expected / 10,
            "picked {picked} of {n}"
        );
    }
}
