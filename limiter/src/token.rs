//! [`TokenLimiter`]: a token bucket (smooth rate with bursts), unkeyed or per key, in memory
//! or on Redis.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};

#[cfg(feature = "redis")]
use crate::memory::lease::{Leases, MAX_BATCH, Spend};
use crate::memory::token::MemoryToken;
use crate::metrics::{Kind, Metrics, Source};
use crate::rate::{Gcra, HORIZON_NS, MAX_TOLERANCE_NS};
#[cfg(feature = "redis")]
use crate::redis::{RedisStore, RedisToken};
use crate::{ConfigError, Denied, FailurePolicy, Rate, TokenSnapshot};

/// The coarse clock moves in 1 ms steps: a bucket that holds less than this much refill
/// time would lose the tokens earned between two steps, so it reads the precise clock.
const COARSE_ENOUGH_NS: u64 = 2_000_000;

/// Configures a [`TokenLimiter`].
///
/// Bounds, checked by `build`: a rate of at least one token per non-zero period and at most
/// one token per nanosecond ([`ConfigError::ZeroRate`], [`ConfigError::RateTooHigh`]); a
/// burst of at least 1 whose refill from empty, `burst × period / tokens`, takes at most
/// [`MAX_REFILL`](TokenBuilder::MAX_REFILL), about 146 years ([`ConfigError::BurstTooLong`]);
/// a key cap of at least 1. A bucket tells clock readings apart up to
/// [`HORIZON`](TokenBuilder::HORIZON), about 292 years after the clock's origin (any real
/// clock, whose origin is the process's start); later readings count as that one.
///
/// ```
/// use keel_limiter::{Rate, TokenLimiter};
///
/// let limiter = TokenLimiter::builder(Rate::per_second(100), 20) // 100/s, bursts of 20
///     .name("api")
///     .max_keys(100_000)
///     .build()?;
/// assert!(limiter.allow_key("203.0.113.7"));
/// # Ok::<(), keel_limiter::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct TokenBuilder {
    rate: Rate,
    burst: u32,
    name: Option<String>,
    max_keys: Option<usize>,
    policy: FailurePolicy,
    #[cfg(feature = "redis")]
    redis: Option<(RedisStore, String)>,
    #[cfg(feature = "redis")]
    lease: Option<(u32, Duration)>,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .field("name", &self.name)
            .field("max_keys", &self.max_keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    /// The longest a bucket may take to fill from empty (`burst × period / tokens`):
    /// 2^62 − 1 ns, about 146 years.
    pub const MAX_REFILL: Duration = Duration::from_nanos(MAX_TOLERANCE_NS);

    /// The last clock reading the buckets tell apart: 2^63 − 1 ns, about 292 years after
    /// the clock's origin. A later reading counts as this one, so the buckets' time stops
    /// there (they drain and do not refill) instead of their arithmetic overflowing.
    pub const HORIZON: Duration = Duration::from_nanos(HORIZON_NS);

    /// The limiter's name, for logs, snapshots and the `name` label of its metrics
    /// (feature `metrics`). Default `token-limiter`.
    pub fn name(mut self, name: impl Into<String>) -> TokenBuilder {
        self.name = Some(name.into());
        self
    }

    /// At most this many keys held in memory (default: no cap; idle keys are always
    /// evicted, see the crate docs). At the cap, a new key is refused with
    /// [`Denied::KeyCapacity`] until an entry is idle: existing keys' buckets are never
    /// reset to make room, which would hand out tokens.
    pub fn max_keys(mut self, max: usize) -> TokenBuilder {
        self.max_keys = Some(max);
        self
    }

    /// What to decide while Redis fails (default [`FailurePolicy::Rescue`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> TokenBuilder {
        self.policy = policy;
        self
    }

    /// Keep the buckets on Redis under `prefix` (key `{prefix:key}`, a hash tag so one
    /// bucket's fields stay in one Redis Cluster slot), shared by every instance using
    /// the same server and prefix.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, store: RedisStore, prefix: impl Into<String>) -> TokenBuilder {
        self.redis = Some((store, prefix.into()));
        self
    }

    /// Lease mode (beyond go-zero): take tokens from the Redis bucket `batch` at a time
    /// (at least the request's `n`, at most what the bucket holds) and spend them locally
    /// for up to `hold`, so most decisions are one local compare-and-swap and Redis sees
    /// about one round trip per `batch` decisions per key and instance.
    ///
    /// The trade-off is accuracy, never safety: every token spent was first taken from the
    /// shared bucket, so the cluster never grants more than the bucket allows. But tokens
    /// an instance holds are invisible to the others (a request elsewhere may be refused
    /// while they sit in a lease), and what is not spent within `hold` is lost: up to
    /// `batch − 1` tokens per key, instance and `hold`. Choose `batch` well below `burst`
    /// and `hold` around one refill interval × `batch`.
    ///
    /// `batch` must lie in `1..=burst` (and below 2^23); Redis must be configured. Any
    /// `hold` works: a lease's expiry is kept in whole milliseconds up to 2^40 ms (34.8
    /// years) after the clock's origin and cut there, so past that point every decision
    /// asks Redis again (slower, never wrong).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn lease(mut self, batch: u32, hold: Duration) -> TokenBuilder {
        self.lease = Some((batch, hold));
        self
    }

    /// Builds the limiter on the process-wide [`CoarseClock`].
    pub fn build(self) -> Result<TokenLimiter, ConfigError> {
        self.build_with_clock(CoarseClock::new())
    }

    /// Builds the limiter on `clock` (a [`ManualClock`](keel_timex::ManualClock) in tests).
    pub fn build_with_clock<C: Clock>(self, clock: C) -> Result<TokenLimiter<C>, ConfigError> {
        let gcra = Gcra::new(self.rate, self.burst)?;
        if self.max_keys == Some(0) {
            return Err(ConfigError::ZeroMaxKeys);
        }
        #[cfg(feature = "redis")]
        let lease = match self.lease {
            None => None,
            Some(_) if self.redis.is_none() => return Err(ConfigError::LeaseNeedsRedis),
            Some((batch, hold)) => {
                if batch == 0 || batch > self.burst || batch > MAX_BATCH {
                    return Err(ConfigError::LeaseOutOfRange {
                        batch,
                        burst: self.burst,
                    });
                }
                let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
                Some(Leases::new(batch, hold_ms, self.max_keys))
            }
        };
        let name = self.name.unwrap_or_else(|| "token-limiter".to_owned());
        #[cfg(feature = "redis")]
        let redis = self
            .redis
            .map(|(store, prefix)| RedisToken::new(store, prefix, self.rate, self.burst, &name));
        #[cfg(feature = "redis")]
        let on_redis = redis.is_some();
        #[cfg(not(feature = "redis"))]
        let on_redis = false;
        Ok(TokenLimiter {
            inner: Arc::new(Inner {
                metrics: Metrics::new(&name, Kind::Token, on_redis),
                name,
                rate: self.rate,
                precise: gcra.tolerance < COARSE_ENOUGH_NS,
                memory: MemoryToken::new(gcra, self.max_keys),
                clock,
                policy: self.policy,
                policy_decisions: AtomicU64::new(0),
                #[cfg(feature = "redis")]
                redis,
                #[cfg(feature = "redis")]
                lease,
            }),
        })
    }
}

/// A token bucket: `burst` tokens at most, refilled continuously at `rate`; a request
/// takes `n` tokens or is refused with how long to wait.
///
/// Unkeyed ([`allow`](TokenLimiter::allow)) for one shared resource, or keyed
/// ([`allow_key`](TokenLimiter::allow_key)) with one bucket per user, client IP or tenant.
/// In memory the decision is one compare-and-swap on the bucket's word; on Redis one Lua
/// script per decision, with the [`FailurePolicy`] deciding while Redis fails. Cheap to
/// clone; clones share the buckets.
///
/// ```
/// use keel_limiter::{Denied, Rate, TokenLimiter};
/// use keel_timex::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = TokenLimiter::builder(Rate::per_second(10), 2).build_with_clock(clock.clone())?;
/// assert!(limiter.allow());
/// assert!(limiter.allow());
/// assert_eq!(
///     limiter.allow_n(1),
///     Err(Denied::Limited { retry_after: Duration::from_millis(100) })
/// );
/// clock.advance(Duration::from_millis(100));
/// assert!(limiter.allow());
/// assert_eq!(limiter.allow_n(3), Err(Denied::NeverFits { n: 3, burst: 2 }));
/// # Ok::<(), keel_limiter::ConfigError>(())
/// ```
pub struct TokenLimiter<C: Clock = CoarseClock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for TokenLimiter<C> {
    fn clone(&self) -> Self {
        TokenLimiter {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<C: Clock> {
    name: String,
    /// `keel_limiter_decisions_total` (feature `metrics`; empty without).
    metrics: Metrics,
    rate: Rate,
    precise: bool,
    memory: MemoryToken,
    clock: C,
    policy: FailurePolicy,
    /// Decisions taken by the failure policy instead of Redis.
    policy_decisions: AtomicU64,
    #[cfg(feature = "redis")]
    redis: Option<RedisToken>,
    #[cfg(feature = "redis")]
    lease: Option<Leases>,
}

impl TokenLimiter {
    /// A builder: `rate`, and `burst` tokens at most (the bucket starts full).
    pub fn builder(rate: Rate, burst: u32) -> TokenBuilder {
        TokenBuilder {
            rate,
            burst,
            name: None,
            max_keys: None,
            policy: FailurePolicy::Rescue,
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "redis")]
            lease: None,
        }
    }
}

impl<C: Clock> TokenLimiter<C> {
    /// Takes one token from the unkeyed bucket.
    #[inline]
    pub fn allow(&self) -> bool {
        self.allow_n(1).is_ok()
    }

    /// Takes `n` tokens from the unkeyed bucket, or says why not.
    #[inline]
    pub fn allow_n(&self, n: u32) -> Result<(), Denied> {
        self.decide(None, n)
    }

    /// Takes one token from `key`'s bucket.
    #[inline]
    pub fn allow_key(&self, key: &str) -> bool {
        self.allow_key_n(key, 1).is_ok()
    }

    /// Takes `n` tokens from `key`'s bucket, or says why not. The empty key is the
    /// unkeyed bucket (in memory and on Redis alike).
    #[inline]
    pub fn allow_key_n(&self, key: &str, n: u32) -> Result<(), Denied> {
        self.decide(Some(key).filter(|k| !k.is_empty()), n)
    }

    #[inline]
    fn decide(&self, key: Option<&str>, n: u32) -> Result<(), Denied> {
        let inner = &*self.inner;
        inner.check_n(n)?;
        #[cfg(feature = "redis")]
        if let Some(redis) = &inner.redis {
            let name = key.unwrap_or("");
            if let Some(lease) = &inner.lease {
                let now = inner.now();
                if let Some(local) = spend_locally(lease, name, n, now) {
                    return inner.counted(Source::Memory, local);
                }
                if redis.is_healthy(name)
                    && let Ok(taken) = redis.take_lease(name, n, lease.batch.max(n))
                {
                    let decision = inner.leased(lease, name, n, now, taken);
                    return inner.counted(Source::Redis, decision);
                }
                return inner.fallback(key, n);
            }
            if redis.is_healthy(name)
                && let Ok(decision) = redis.take(name, n)
            {
                return inner.counted(Source::Redis, decision);
            }
            return inner.fallback(key, n);
        }
        inner.counted(Source::Memory, inner.memory.take(key, n, inner.now()))
    }

    /// [`allow_n`](TokenLimiter::allow_n) without blocking a runtime thread on Redis: in
    /// memory it is the same call; on Redis it awaits the script on the async connection.
    pub async fn allow_n_async(&self, n: u32) -> Result<(), Denied> {
        self.decide_async(None, n).await
    }

    /// [`allow_key_n`](TokenLimiter::allow_key_n), async (see
    /// [`allow_n_async`](TokenLimiter::allow_n_async)).
    pub async fn allow_key_n_async(&self, key: &str, n: u32) -> Result<(), Denied> {
        self.decide_async(Some(key).filter(|k| !k.is_empty()), n)
            .await
    }

    async fn decide_async(&self, key: Option<&str>, n: u32) -> Result<(), Denied> {
        let inner = &*self.inner;
        inner.check_n(n)?;
        #[cfg(feature = "redis")]
        if let Some(redis) = &inner.redis {
            let name = key.unwrap_or("");
            if let Some(lease) = &inner.lease {
                let now = inner.now();
                if let Some(local) = spend_locally(lease, name, n, now) {
                    return inner.counted(Source::Memory, local);
                }
                if redis.is_healthy(name)
                    && let Ok(taken) = redis.take_lease_async(name, n, lease.batch.max(n)).await
                {
                    let decision = inner.leased(lease, name, n, now, taken);
                    return inner.counted(Source::Redis, decision);
                }
                return inner.fallback(key, n);
            }
            if redis.is_healthy(name)
                && let Ok(decision) = redis.take_async(name, n).await
            {
                return inner.counted(Source::Redis, decision);
            }
            return inner.fallback(key, n);
        }
        inner.counted(Source::Memory, inner.memory.take(key, n, inner.now()))
    }

    /// Waits until `n` tokens of the unkeyed bucket are granted (sleeping the time each
    /// refusal names), or fails at once when waiting cannot help
    /// ([`Denied::NeverFits`], [`Denied::Unavailable`]).
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn until_ready(&self, n: u32) -> Result<(), Denied> {
        self.until(None, n).await
    }

    /// [`until_ready`](TokenLimiter::until_ready) for `key`'s bucket.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn until_key_ready(&self, key: &str, n: u32) -> Result<(), Denied> {
        self.until(Some(key).filter(|k| !k.is_empty()), n).await
    }

    #[cfg(feature = "tokio")]
    async fn until(&self, key: Option<&str>, n: u32) -> Result<(), Denied> {
        loop {
            match self.decide_async(key, n).await {
                Ok(()) => return Ok(()),
                Err(Denied::Limited { retry_after } | Denied::KeyCapacity { retry_after }) => {
                    tokio::time::sleep(retry_after.max(Duration::from_micros(1))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Tokens left in the unkeyed bucket (fractional; in-memory state, or the rescue's
    /// on Redis).
    pub fn tokens(&self) -> f64 {
        self.inner.memory.tokens(None, self.inner.now())
    }

    /// Tokens left in `key`'s bucket (see [`tokens`](TokenLimiter::tokens)).
    pub fn key_tokens(&self, key: &str) -> f64 {
        let key = Some(key).filter(|k| !k.is_empty());
        self.inner.memory.tokens(key, self.inner.now())
    }

    /// Keys held in memory (including idle ones not swept yet).
    pub fn len(&self) -> usize {
        self.inner.memory.len()
    }

    /// Whether no key is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every idle key now (full buckets: dropping them changes no decision) and
    /// returns how many are left. Runs by itself as keys are added; for tests and for
    /// releasing memory after a burst of keys.
    pub fn evict_idle(&self) -> usize {
        self.inner.memory.sweep(self.inner.now())
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
    ///
    /// ```
    /// use keel_limiter::{Rate, TokenLimiter};
    ///
    /// let limiter = TokenLimiter::builder(Rate::per_second(100), 10).build().unwrap();
    /// assert!(limiter.allow());
    /// limiter.publish_metrics(); // a `/metrics` handler calls this before rendering
    /// ```
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish();
    }

    /// The state and counters (and, feature `metrics`, publishes the decision counters).
    pub fn snapshot(&self) -> TokenSnapshot {
        let inner = &*self.inner;
        inner.metrics.publish();
        TokenSnapshot {
            name: inner.name.clone(),
            rate: inner.rate,
            burst: inner.memory.gcra.burst,
            keys: inner.memory.len(),
            policy: inner.policy,
            policy_decisions: inner.policy_decisions.load(Ordering::Relaxed),
            #[cfg(feature = "redis")]
            redis: inner.redis.as_ref().map(RedisToken::stats),
        }
    }
}

impl<C: Clock> Inner<C> {
    /// The clock reading, at most [`HORIZON_NS`] (see [`TokenBuilder::HORIZON`]).
    #[inline]
    fn now(&self) -> u64 {
        let now = if self.precise {
            self.clock.now_precise().as_nanos()
        } else {
            self.clock.now().as_nanos()
        };
        now.min(HORIZON_NS)
    }

    /// Refuses `n > burst` at once ([`Denied::NeverFits`]: in process, before any
    /// backend is asked; counted as a `limited` decision of `backend="memory"`).
    #[inline]
    fn check_n(&self, n: u32) -> Result<(), Denied> {
        let burst = self.memory.gcra.burst;
        if n > burst {
            return self.counted(Source::Memory, Err(Denied::NeverFits { n, burst }));
        }
        Ok(())
    }

    /// Counts an answer decided by `source` (feature `metrics`), and returns it.
    #[inline(always)]
    fn counted(&self, source: Source, decision: Result<(), Denied>) -> Result<(), Denied> {
        self.metrics.token(source, &decision);
        decision
    }

    /// Keeps what a lease round trip brought, or remembers its refusal.
    #[cfg(feature = "redis")]
    fn leased(
        &self,
        lease: &Leases,
        key: &str,
        n: u32,
        now: u64,
        taken: Result<u32, Denied>,
    ) -> Result<(), Denied> {
        match taken {
            Ok(t) => {
                lease.refill(key, t, n, now);
                Ok(())
            }
            Err(Denied::Limited { retry_after }) => {
                lease.refused(key, retry_after, now);
                Err(Denied::Limited { retry_after })
            }
            Err(other) => Err(other),
        }
    }

    /// The failure policy's decision while Redis is failing.
    #[cfg(feature = "redis")]
    fn fallback(&self, key: Option<&str>, n: u32) -> Result<(), Denied> {
        self.policy_decisions.fetch_add(1, Ordering::Relaxed);
        let decision = match self.policy {
            FailurePolicy::Rescue => self.memory.take(key, n, self.now()),
            FailurePolicy::FailOpen => Ok(()),
            FailurePolicy::FailClosed => Err(Denied::Unavailable),
        };
        self.counted(Source::Rescue, decision)
    }
}

/// The lease's own answer, if it has one: granted from it, or refused until Redis's retry
/// time. `None`: ask Redis.
#[cfg(feature = "redis")]
#[inline]
fn spend_locally(lease: &Leases, key: &str, n: u32, now: u64) -> Option<Result<(), Denied>> {
    match lease.spend(key, n, now) {
        Spend::Spent => Some(Ok(())),
        Spend::Refused(retry_after) => Some(Err(Denied::Limited { retry_after })),
        Spend::Empty => None,
    }
}

impl<C: Clock> fmt::Debug for TokenLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLimiter")
            .field("name", &self.inner.name)
            .field("rate", &self.inner.rate)
            .field("burst", &self.inner.memory.gcra.burst)
            .field("keys", &self.inner.memory.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holding_under_2_ms_of_refill_reads_the_precise_clock() {
        let precise = |rate, burst| {
            TokenLimiter::builder(rate, burst)
                .build()
                .unwrap()
                .inner
                .precise
        };
        // 10 000/s, burst 1: 0.1 ms of refill; the coarse clock's 1 ms steps would cap
        // it at 1 000/s.
        assert!(precise(Rate::per_second(10_000), 1));
        assert!(precise(Rate::per_second(1_000), 1));
        assert!(!precise(Rate::per_second(1_000), 2));
        assert!(!precise(Rate::per_second(10), 1));
    }
}
