//! A seedable, lock-free source of uniform floats for the drop decision.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// splitmix64 over an atomic counter: each draw is one `fetch_add` and a few multiplies, with
/// no lock, and a fixed seed gives a fixed sequence (single-threaded), which is what the
/// deterministic tests need. Drawn only while the breaker is throttling.
#[derive(Debug)]
pub(crate) struct Rng {
    state: AtomicU64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    pub(crate) fn seeded(seed: u64) -> Rng {
        Rng {
            state: AtomicU64::new(seed),
        }
    }

    /// A seed from std's per-process random keys.
    pub(crate) fn random_seed() -> u64 {
        RandomState::new().hash_one(GOLDEN)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn next_f64(&self) -> f64 {
        let mut z = self
            .state
            .fetch_add(GOLDEN, Ordering::Relaxed)
            .wrapping_add(GOLDEN);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_repeat_and_look_uniform() {
        let a = Rng::seeded(7);
        let b = Rng::seeded(7);
        let xs: Vec<f64> = (0..10_000).map(|_| a.next_f64()).collect();
        assert!(
            xs.iter()
                .all(|&x| x == b.next_f64() && (0.0..1.0).contains(&x))
        );
        let below_half = xs.iter().filter(|&&x| x < 0.5).count();
        assert!((4_700..5_300).contains(&below_half), "{below_half}");
    }
}
