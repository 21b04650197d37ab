//! Per-thread state of the hot path: which in-flight stripe a thread uses, and a small
//! random generator that picks the requests whose latency is measured.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Hands out stripe numbers to threads in the order they first use a shedder.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

struct Local {
    stripe: Cell<usize>,
    rng: Cell<u64>,
}

const UNASSIGNED: usize = usize::MAX;

thread_local! {
    static LOCAL: Local = const {
        Local {
            stripe: Cell::new(UNASSIGNED),
            rng: Cell::new(0),
        }
    };
}

#[cold]
fn assign(local: &Local) -> usize {
    let stripe = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
    local.stripe.set(stripe);
    // Seed each thread differently (splitmix64 of its number), never 0 (xorshift's fixed point).
    let mut z = (stripe as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    local.rng.set((z ^ (z >> 31)) | 1);
    stripe
}

/// This thread's stripe number (callers mask it to their stripe count).
#[inline]
pub(crate) fn stripe() -> usize {
    LOCAL.with(|l| match l.stripe.get() {
        UNASSIGNED => assign(l),
        s => s,
    })
}

/// This thread's stripe, and whether to time this request: true with probability
/// `1 / period` (always for a period of 1).
///
/// Random rather than every `period`-th request: a thread that serves two shedders in
/// turn would otherwise time only one of them.
#[inline]
pub(crate) fn stripe_and_sample(period: u32) -> (usize, bool) {
    LOCAL.with(|l| {
        let stripe = match l.stripe.get() {
            UNASSIGNED => assign(l),
            s => s,
        };
        if period <= 1 {
            return (stripe, true);
        }
        // xorshift64: a handful of instructions, good enough to pick samples.
        let mut x = l.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        l.rng.set(x);
        // Multiply-shift maps the top 32 bits onto 0..period without a division.
        let pick = ((x >> 32) * u64::from(period)) >> 32;
        (stripe, pick == 0)
    })
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
        assert!((0..100).all(|_| stripe_and_sample(1).1));
        let n = 80_000;
        let picked = (0..n).filter(|_| stripe_and_sample(8).1).count();
        let expected = n / 8;
        assert!(
            picked.abs_diff(expected) < expected / 10,
            "picked {picked} of {n}"
        );
    }
}
