//! Peer: governor, the GCRA rate limiter.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ADMIT_BURST, ADMIT_RATE, DirectUnderTest, KEYED_BURST, KeyedUnderTest, SLOW_PERIOD};

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("a positive count")
}

fn slow_quota(burst: u32) -> Quota {
    Quota::with_period(SLOW_PERIOD)
        .expect("a positive period")
        .allow_burst(nonzero(burst))
}

/// `RateLimiter::direct(Quota::per_second(..).allow_burst(..))`: governor's
/// `DefaultDirectRateLimiter`, a GCRA on one `AtomicU64` (compare-and-swap) reading its
/// default clock, quanta's `Clock::now()` (the TSC, scaled), on every call. `check()`.
#[derive(Debug)]
pub struct Governor(DefaultDirectRateLimiter);

impl DirectUnderTest for Governor {
    const NAME: &'static str = "governor";

    fn admitting() -> Self {
        Governor(RateLimiter::direct(
            Quota::per_second(nonzero(ADMIT_RATE)).allow_burst(nonzero(ADMIT_BURST)),
        ))
    }

    fn exhausted() -> Self {
        let limiter = RateLimiter::direct(slow_quota(1));
        assert!(limiter.check().is_ok(), "a new bucket is full");
        Governor(limiter)
    }

    #[inline]
    fn allow(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// `RateLimiter::keyed(quota)`: governor's `DefaultKeyedRateLimiter<String>`, a
/// `DashMap<String, InMemoryState>` with std's `RandomState` (SipHash-1-3), its default
/// store and hasher; quanta's clock on every call. `check_key(&key)`.
#[derive(Debug)]
pub struct GovernorKeyed(DefaultKeyedRateLimiter<String>);

impl KeyedUnderTest for GovernorKeyed {
    const NAME: &'static str = "governor";
    const COPIES_KEYS: bool = true;

    fn admitting() -> Self {
        GovernorKeyed(RateLimiter::keyed(slow_quota(KEYED_BURST)))
    }

    #[inline]
    fn allow_key(&self, key: &String) -> bool {
        self.0.check_key(key).is_ok()
    }

    fn keys(&self) -> usize {
        self.0.len()
    }
}
