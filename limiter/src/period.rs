//! [`PeriodLimiter`]: at most `quota` requests per key per fixed window, in memory or on
//! Redis (go-zero's `PeriodLimit`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keel_timex::{Clock, CoarseClock};

#[cfg(feature = "redis")]
use crate::PeriodState;
use crate::memory::period::{MAX_QUOTA, MemoryPeriod, Windows};
use crate::metrics::{Kind, Metrics, Source};
#[cfg(feature = "redis")]
use crate::redis::{RedisPeriod, RedisStore};
use crate::{ConfigError, Denied, FailurePolicy, PeriodDecision, PeriodSnapshot};

/// Configures a [`PeriodLimiter`].
///
/// Bounds, checked by `build`: a quota in `1..=16_777_214` ([`ConfigError::ZeroQuota`],
/// [`ConfigError::QuotaTooLarge`]), a period of at least 1 ms ([`ConfigError::ZeroPeriod`]:
/// windows are counted in whole milliseconds), a key cap of at least 1. Any longer period
/// works: a window of 100 years stays closed for 100 years, and one that would end after the
/// clock's last reading (2^64 ns, 584 years after its origin) never ends. In memory, windows
/// end on whole milliseconds for quotas up to 524 286; above that a window's end is rounded
/// up to a multiple of 2 to 32 ms (one word per key holds both the end and the count), so a
/// window may last up to 31 ms longer than its period, never shorter.
///
/// ```
/// use keel_limiter::PeriodLimiter;
/// use std::time::Duration;
///
/// // 5 SMS per user per day, days starting at local midnight (UTC+2 here).
/// let sms = PeriodLimiter::builder(5, Duration::from_secs(86_400))
///     .align(Duration::from_secs(2 * 3600))
///     .build()?;
/// assert!(sms.take("alice")?.is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct PeriodBuilder {
    quota: u32,
    period: Duration,
    align: Option<i64>,
    unix_time_at_start: Option<Duration>,
    name: Option<String>,
    max_keys: Option<usize>,
    policy: FailurePolicy,
    #[cfg(feature = "redis")]
    redis: Option<(RedisStore, String)>,
}

impl fmt::Debug for PeriodBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodBuilder")
            .field("quota", &self.quota)
            .field("period", &self.period)
            .field("align", &self.align)
            .field("name", &self.name)
            .field("max_keys", &self.max_keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl PeriodBuilder {
    /// Windows aligned on multiples of the period in local time, `utc_offset` east of UTC
    /// (go-zero's `Align()`, which uses the machine's zone: Rust's std has none, so the
    /// offset is given). A period of a day then resets at local midnight. Without it, a
    /// key's window starts at its first request.
    pub fn align(mut self, utc_offset: Duration) -> PeriodBuilder {
        self.align = Some(i64::try_from(utc_offset.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// [`align`](PeriodBuilder::align) for a zone west of UTC.
    pub fn align_west(mut self, utc_offset: Duration) -> PeriodBuilder {
        self.align = Some(-i64::try_from(utc_offset.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// The Unix time at the clock's time zero, for aligned windows on a
    /// [`ManualClock`](keel_timex::ManualClock) (default: read from the system clock at
    /// build time).
    pub fn unix_time_at_start(mut self, since_epoch: Duration) -> PeriodBuilder {
        self.unix_time_at_start = Some(since_epoch);
        self
    }

    /// The limiter's name, for logs, snapshots and the `name` label of its metrics
    /// (feature `metrics`). Default `period-limiter`.
    pub fn name(mut self, name: impl Into<String>) -> PeriodBuilder {
        self.name = Some(name.into());
        self
    }

    /// At most this many keys held in memory (default: no cap; ended windows are always
    /// evicted). At the cap a new key is refused with [`Denied::KeyCapacity`] until a
    /// window ends.
    pub fn max_keys(mut self, max: usize) -> PeriodBuilder {
        self.max_keys = Some(max);
        self
    }

    /// What to decide while Redis fails (default [`FailurePolicy::Rescue`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> PeriodBuilder {
        self.policy = policy;
        self
    }

    /// Count on Redis under `prefix` (key `{prefix:key}`), shared by every instance.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, store: RedisStore, prefix: impl Into<String>) -> PeriodBuilder {
        self.redis = Some((store, prefix.into()));
        self
    }

    /// Builds the limiter on the process-wide [`CoarseClock`].
    pub fn build(self) -> Result<PeriodLimiter, ConfigError> {
        self.build_with_clock(CoarseClock::new())
    }

    /// Builds the limiter on `clock`.
    pub fn build_with_clock<C: Clock>(self, clock: C) -> Result<PeriodLimiter<C>, ConfigError> {
        if self.quota == 0 {
            return Err(ConfigError::ZeroQuota);
        }
        if self.quota > MAX_QUOTA {
            return Err(ConfigError::QuotaTooLarge { quota: self.quota });
        }
        let period_ms = u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX);
        if period_ms == 0 {
            return Err(ConfigError::ZeroPeriod);
        }
        if self.max_keys == Some(0) {
            return Err(ConfigError::ZeroMaxKeys);
        }
        let windows = match self.align {
            None => Windows::FromFirstHit,
            Some(offset_ms) => {
                let unix_now = self.unix_time_at_start.unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .saturating_sub(Duration::from_nanos(clock.now().as_nanos()))
                });
                Windows::Aligned {
                    unix_ms_at_zero: unix_now.as_millis() as i128,
                    offset_ms: i128::from(offset_ms),
                }
            }
        };
        let name = self.name.unwrap_or_else(|| "period-limiter".to_owned());
        #[cfg(feature = "redis")]
        let redis = self.redis.map(|(store, prefix)| {
            RedisPeriod::new(store, prefix, self.quota, self.period, self.align, &name)
        });
        #[cfg(feature = "redis")]
        let on_redis = redis.is_some();
        #[cfg(not(feature = "redis"))]
        let on_redis = false;
        Ok(PeriodLimiter {
            inner: Arc::new(Inner {
                metrics: Metrics::new(&name, Kind::Period, on_redis),
                name,
                quota: self.quota,
                period: self.period,
                memory: MemoryPeriod::new(self.quota, period_ms, windows, self.max_keys),
                clock,
                policy: self.policy,
                policy_decisions: AtomicU64::new(0),
                #[cfg(feature = "redis")]
                redis,
            }),
        })
    }
}

/// At most `quota` requests per key in each fixed window of `period` (go-zero's
/// `PeriodLimit`: a fixed window, not a sliding one).
///
/// ```
/// use keel_limiter::{PeriodLimiter, PeriodState};
/// use keel_timex::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = PeriodLimiter::builder(2, Duration::from_secs(1)).build_with_clock(clock.clone())?;
/// assert_eq!(limiter.take("k")?.state, PeriodState::Allowed);
/// assert_eq!(limiter.take("k")?.state, PeriodState::HitQuota);
/// let refused = limiter.take("k")?;
/// assert_eq!(refused.state, PeriodState::OverQuota);
/// assert_eq!(refused.resets_in, Duration::from_secs(1));
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(limiter.take("k")?.state, PeriodState::Allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PeriodLimiter<C: Clock = CoarseClock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for PeriodLimiter<C> {
    fn clone(&self) -> Self {
        PeriodLimiter {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<C: Clock> {
    name: String,
    /// `keel_limiter_decisions_total` (feature `metrics`; empty without).
    metrics: Metrics,
    quota: u32,
    period: Duration,
    memory: MemoryPeriod,
    clock: C,
    policy: FailurePolicy,
    policy_decisions: AtomicU64,
    #[cfg(feature = "redis")]
    redis: Option<RedisPeriod>,
}

impl PeriodLimiter {
    /// A builder: `quota` requests per `period` per key.
    pub fn builder(quota: u32, period: Duration) -> PeriodBuilder {
        PeriodBuilder {
            quota,
            period,
            align: None,
            unix_time_at_start: None,
            name: None,
            max_keys: None,
            policy: FailurePolicy::Rescue,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }
}

impl<C: Clock> PeriodLimiter<C> {
    /// Counts one request for `key`. `Err` only for [`Denied::KeyCapacity`] (in memory, at
    /// the key cap) and [`Denied::Unavailable`] (Redis failing, fail-closed policy).
    pub fn take(&self, key: &str) -> Result<PeriodDecision, Denied> {
        let inner = &*self.inner;
        #[cfg(feature = "redis")]
        if let Some(redis) = &inner.redis {
            if redis.is_healthy(key)
                && let Ok(decision) = redis.take(key)
            {
                return inner.counted(Source::Redis, Ok(decision));
            }
            return inner.fallback(key);
        }
        inner.counted(Source::Memory, inner.local(key))
    }

    /// [`take`](PeriodLimiter::take) on the async Redis connection (the same call in
    /// memory).
    pub async fn take_async(&self, key: &str) -> Result<PeriodDecision, Denied> {
        let inner = &*self.inner;
        #[cfg(feature = "redis")]
        if let Some(redis) = &inner.redis {
            if redis.is_healthy(key)
                && let Ok(decision) = redis.take_async(key).await
            {
                return inner.counted(Source::Redis, Ok(decision));
            }
            return inner.fallback(key);
        }
        inner.counted(Source::Memory, inner.local(key))
    }

    /// Keys held in memory (including ended windows not swept yet).
    pub fn len(&self) -> usize {
        self.inner.memory.len()
    }

    /// Whether no key is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every ended window now and returns how many keys are left.
    pub fn evict_idle(&self) -> usize {
        self.inner.memory.sweep(self.inner.clock.now().as_nanos())
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Gives the metrics recorder every decision counted so far (feature `metrics`; does
    /// nothing without it). Decisions are counted in the limiter's own atomics and reach the
    /// recorder at least once a second on their own, at every [`snapshot`](Self::snapshot)
    /// and when the limiter is dropped; call this before rendering a scrape that must
    /// include the decisions of the last second.
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish();
    }

    /// The state and counters (and, feature `metrics`, publishes the decision counters).
    pub fn snapshot(&self) -> PeriodSnapshot {
        let inner = &*self.inner;
        inner.metrics.publish();
        PeriodSnapshot {
            name: inner.name.clone(),
            quota: inner.quota,
            period: inner.period,
            keys: inner.memory.len(),
            policy: inner.policy,
            policy_decisions: inner.policy_decisions.load(Ordering::Relaxed),
            #[cfg(feature = "redis")]
            redis: inner.redis.as_ref().map(RedisPeriod::stats),
        }
    }
}

impl<C: Clock> Inner<C> {
    fn local(&self, key: &str) -> Result<PeriodDecision, Denied> {
        let (state, resets_in) = self.memory.take(key, self.clock.now().as_nanos())?;
        Ok(PeriodDecision { state, resets_in })
    }

    /// Counts an answer decided by `source` (feature `metrics`), and returns it.
    #[inline(always)]
    fn counted(
        &self,
        source: Source,
        decision: Result<PeriodDecision, Denied>,
    ) -> Result<PeriodDecision, Denied> {
        self.metrics.period(source, &decision);
        decision
    }

    #[cfg(feature = "redis")]
    fn fallback(&self, key: &str) -> Result<PeriodDecision, Denied> {
        self.policy_decisions.fetch_add(1, Ordering::Relaxed);
        let decision = match self.policy {
            FailurePolicy::Rescue => self.local(key),
            FailurePolicy::FailOpen => Ok(PeriodDecision {
                state: PeriodState::Allowed,
                resets_in: Duration::ZERO,
            }),
            FailurePolicy::FailClosed => Err(Denied::Unavailable),
        };
        self.counted(Source::Rescue, decision)
    }
}

impl<C: Clock> fmt::Debug for PeriodLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodLimiter")
            .field("name", &self.inner.name)
            .field("quota", &self.inner.quota)
            .field("period", &self.inner.period)
            .field("keys", &self.inner.memory.len())
            .finish_non_exhaustive()
    }
}
