//! keel's own limiters, as the suite measures them.

use std::time::Duration;

use keel_limiter::{PeriodLimiter, Rate, TokenLimiter};

use super::{
    ADMIT_BURST, ADMIT_RATE, DirectUnderTest, KEYED_BURST, KeyedUnderTest, PRECISE_BURST,
    SLOW_PERIOD,
};

/// keel's unkeyed [`TokenLimiter`] (GCRA: one compare-and-swap on the bucket's word),
/// built with `build()`, so on the process-wide `CoarseClock`: its buckets hold at least
/// 2 ms of refill, and a decision reads the cached tick (one atomic load). `allow()`.
#[derive(Debug)]
pub struct Keel(TokenLimiter);

impl Keel {
    /// The id of [`Keel::admitting_precise`] in the allow group.
    pub const PRECISE_NAME: &'static str = "keel (precise clock)";

    /// An admitting bucket that holds only 1 ms of refill ([`PRECISE_BURST`] tokens at
    /// [`ADMIT_RATE`]), so keel decides it on the precise clock (`Instant::now()`), as it
    /// does every bucket under 2 ms: the same clock cost as governor's quanta reading.
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

/// keel's keyed [`TokenLimiter`] on the `CoarseClock`: `allow_key(&str)`, one `AtomicU64`
/// per key hash in a sharded map; no key cap.
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

/// The largest quota [`KeelPeriod`] is built with: far more calls than a key gets in a
/// run, under the limiter's largest (2^24 − 2).
const PERIOD_QUOTA: u32 = 16_000_000;

/// keel's [`PeriodLimiter`] (go-zero's fixed window), windows of an hour, on the
/// `CoarseClock`: `take(&str)`, admitted when `Allowed` or `HitQuota`. No peer.
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
