//! [`DirectUnderTest`] and [`KeyedUnderTest`]: the adapters the rate-limiter suite drives,
//! their implementations for keel and governor, the key walk of the keyed benchmarks, the
//! heap counting of the memory figures and the Redis throughput rows.

pub mod memory;
pub mod redis;

use std::cell::Cell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use keel_limiter::{PeriodLimiter, Rate, TokenLimiter};

pub const ADMIT_RATE: u32 = 1_000_000_000;
pub const ADMIT_BURST: u32 = u32::MAX / 2;
pub const PRECISE_BURST: u32 = 1_000_000;
pub const SLOW_PERIOD: Duration = Duration::from_secs(3600);
pub const KEYED_BURST: u32 = 1_000_000;

/// An unkeyed rate limiter as the suite sees it.
pub trait DirectUnderTest: Send + Sync + 'static {
    const NAME: &'static str;

    /// A bucket that admits every call of the benchmarks: [`ADMIT_RATE`] tokens per second.
    fn admitting() -> Self;

    /// An empty bucket that refills one token per [`SLOW_PERIOD`] (burst 1, its one token taken).
    fn exhausted() -> Self;

    /// One call for one token: `true` if it was admitted.
    fn allow(&self) -> bool;
}

/// A rate limiter with one state per key, as the suite sees it.
pub trait KeyedUnderTest: Send + Sync + 'static {
    const NAME: &'static str;
    const COPIES_KEYS: bool;

    /// A keyed limiter on which no key runs out or goes idle during a run.
    fn admitting() -> Self;

    #[expect(
        clippy::ptr_arg,
        reason = "governor's keyed limiter takes `&K`, and its keys are `String`s"
    )]
    fn allow_key(&self, key: &String) -> bool;

    /// Keys the limiter holds.
    fn keys(&self) -> usize;
}

/// The `i`-th key of the benchmarks.
pub fn key(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

/// Keys `0..n`, formatted once, so the benchmarks measure no formatting.
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(key).collect()
}

thread_local! {
    static CURSOR: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Where threads start their walks: each new thread one stride further.
static STARTS: AtomicUsize = AtomicUsize::new(0);
const START_STRIDE: usize = 3_331;

/// A keyed limiter holding `keys`, each called once when it was built.
#[derive(Debug)]
pub struct Keyed<L> {
    limiter: L,
    keys: Vec<String>,
}

impl<L: KeyedUnderTest> Keyed<L> {
    pub fn populated(n: usize) -> Keyed<L> {
        assert!(n > 0, "a keyed benchmark needs keys");
        let limiter = L::admitting();
        let keys = keys(n);
        for k in &keys {
            assert!(limiter.allow_key(k), "{}: new key {k} refused", L::NAME);
        }
        assert_eq!(limiter.keys(), n, "{}: keys held", L::NAME);
        Keyed { limiter, keys }
    }

    #[inline]
    pub fn allow_next(&self) -> bool {
        self.limiter.allow_key(self.next_key())
    }

    #[inline]
    fn next_key(&self) -> &String {
        let n = self.keys.len();
        let at = CURSOR.get();
        let next = if at < n - 1 {
            at + 1
        } else if at == usize::MAX {
            STARTS
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(START_STRIDE)
                % n
        } else {
            0
        };
        CURSOR.set(next);
        &self.keys[next]
    }

    pub fn limiter(&self) -> &L {
        &self.limiter
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("a positive count")
}

fn slow_quota(burst: u32) -> Quota {
    Quota::with_period(SLOW_PERIOD)
        .expect("a positive period")
        .allow_burst(nonzero(burst))
}

/// `RateLimiter::direct(Quota::per_second(..).allow_burst(..))`.
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

/// `RateLimiter::keyed(quota)`: governor's `DefaultKeyedRateLimiter<String>`.
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

/// keel's unkeyed [`TokenLimiter`] (GCRA: one compare-and-swap on the bucket's word).
#[derive(Debug)]
pub struct Keel(TokenLimiter);

impl Keel {
    pub const PRECISE_NAME: &'static str = "keel (precise clock)";

    pub fn admitting_precise() -> Keel {
        Keel(
            TokenLimiter::builder(Rate::per_second(ADMIT_RATE), PRECISE_BURST)
                .build()
                .expect("a valid rate"),
        )
    }
}

impl DirectUnderTest for Keel {
    const NAME: &'static str = "keel";

    fn admitting() -> Self {
        Keel(
            TokenLimiter::builder(Rate::per_second(ADMIT_RATE), ADMIT_BURST)
                .build()
                .expect("a valid rate"),
        )
    }

    fn exhausted() -> Self {
        let limiter = TokenLimiter::builder(Rate::new(1, SLOW_PERIOD), 1)
            .build()
            .expect("a valid rate");
        assert!(limiter.allow(), "a new bucket is full");
        Keel(limiter)
    }

    #[inline]
    fn allow(&self) -> bool {
        self.0.allow()
    }
}

/// keel's keyed [`TokenLimiter`] on the `CoarseClock`: `allow_key(&str)`.
#[derive(Debug)]
pub struct KeelKeyed(TokenLimiter);

impl KeyedUnderTest for KeelKeyed {
    const NAME: &'static str = "keel";
    const COPIES_KEYS: bool = false;

    fn admitting() -> Self {
        KeelKeyed(
            TokenLimiter::builder(Rate::new(1, SLOW_PERIOD), KEYED_BURST)
                .build()
                .expect("a valid rate"),
        )
    }

    #[inline]
    fn allow_key(&self, key: &String) -> bool {
        self.0.allow_key(key)
    }

    fn keys(&self) -> usize {
        self.0.len()
    }
}

const PERIOD_QUOTA: u32 = 16_000_000;

/// keel's [`PeriodLimiter`] (go-zero's fixed window), windows of an hour, on the `CoarseClock`.
#[derive(Debug)]
pub struct KeelPeriod(PeriodLimiter);

impl KeyedUnderTest for KeelPeriod {
    const NAME: &'static str = "keel PeriodLimiter";
    const COPIES_KEYS: bool = false;

    fn admitting() -> Self {
        KeelPeriod(
            PeriodLimiter::builder(PERIOD_QUOTA, Duration::from_secs(3600))
                .build()
                .expect("a valid quota"),
        )
    }

    #[inline]
    fn allow_key(&self, key: &String) -> bool {
        self.0.take(key).is_ok_and(|d| d.is_allowed())
    }

    fn keys(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct_reaches_its_bucket<L: DirectUnderTest>() {
        let admitting = L::admitting();
        for _ in 0..100_000 {
            assert!(admitting.allow(), "{}: a call was refused", L::NAME);
        }
        let exhausted = L::exhausted();
        for _ in 0..1000 {
            assert!(!exhausted.allow(), "{}: a call was admitted", L::NAME);
        }
    }

    #[test]
    fn every_direct_adapter_reaches_its_bucket() {
        direct_reaches_its_bucket::<Keel>();
        direct_reaches_its_bucket::<Governor>();
        let precise = Keel::admitting_precise();
        for _ in 0..100_000 {
            assert!(precise.allow());
        }
    }

    fn keyed_walk_stays_on_its_keys<L: KeyedUnderTest>() {
        let keyed = Keyed::<L>::populated(1000);
        for _ in 0..5 * 1000 {
            assert!(keyed.allow_next(), "{}: a call was refused", L::NAME);
        }
        assert_eq!(keyed.limiter().keys(), 1000, "{}", L::NAME);
    }

    #[test]
    fn every_keyed_adapter_admits_its_keys() {
        keyed_walk_stays_on_its_keys::<KeelKeyed>();
        keyed_walk_stays_on_its_keys::<GovernorKeyed>();
        keyed_walk_stays_on_its_keys::<KeelPeriod>();
    }

    #[test]
    fn keys_are_distinct_addresses() {
        let k = keys(70_000);
        assert_eq!(k[0], "10.0.0.0");
        assert_eq!(k[65_793], "10.1.1.1");
        let distinct: std::collections::HashSet<_> = k.iter().collect();
        assert_eq!(distinct.len(), k.len());
    }

    #[test]
    fn threads_start_their_walks_apart_and_wrap() {
        let keyed = Keyed::<KeelKeyed>::populated(10_000);
        let firsts: Vec<String> = (0..2)
            .map(|_| std::thread::scope(|s| s.spawn(|| keyed.next_key().clone()).join()))
            .map(|r| r.expect("no panic"))
            .collect();
        assert_ne!(firsts[0], firsts[1]);
        let keyed = Keyed::<KeelKeyed>::populated(10);
        std::thread::scope(|s| {
            s.spawn(|| {
                let first = keyed.next_key().clone();
                for _ in 0..9 {
                    assert_ne!(keyed.next_key(), &first);
                }
                assert_eq!(keyed.next_key(), &first);
            });
        });
    }
}
