//! [`Builder`]: a cache's configuration, validated by [`Builder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use keel_timex::Clock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::UnixClock;
use crate::codec::{Codec, Postcard};
use crate::conn::Connection;
use crate::error::ConfigError;
use crate::policy::FailurePolicy;

/// The longest time to live (value, "not found", stale grace): 365 days.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);
/// The longest lease, lease wait and local time to live: 1 hour.
pub const MAX_LEASE: Duration = Duration::from_secs(3_600);
/// The longest Redis command timeout: 60 s.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The most attempts of a queued delete.
pub const MAX_DELETE_ATTEMPTS: u32 = 64;
/// The default time to live of values: 7 days (go-zero's `defaultExpiry`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 86_400);
/// The default time to live of "not found" placeholders: 1 minute (go-zero's
/// `defaultNotFoundExpiry`).
pub const DEFAULT_NOT_FOUND_TTL: Duration = Duration::from_secs(60);
/// The default jitter: ±5% (go-zero's `expiryDeviation`).
pub const DEFAULT_JITTER: f64 = 0.05;

const MIN: Duration = Duration::from_millis(1);

/// The configuration of a [`RedisCache`](crate::RedisCache); see each method for its
/// default and bounds. Nothing is checked until [`build`](Builder::build), which refuses
/// an invalid configuration with a [`ConfigError`] and never panics.
///
/// ```no_run
/// use keel_rediscache::{Connection, FailurePolicy, RedisCache};
/// use keel_syncx::limit::Limit;
/// use std::time::Duration;
///
/// # async fn build() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let users: RedisCache<String> = RedisCache::builder("users:v1", Connection::single(client.clone()).await?)
///     .ttl(Duration::from_secs(3_600))
///     .not_found_ttl(Duration::from_secs(30))
///     .stale_grace(Duration::from_secs(10))
///     .local(Duration::from_secs(2), 50_000)
///     .subscriber(client)
///     .failure_policy(FailurePolicy::Load(Limit::new(16)?))
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<V, C = UnixClock> {
    pub(crate) name: String,
    pub(crate) connection: Connection,
    pub(crate) codec: Arc<dyn Codec<V>>,
    pub(crate) ttl: Duration,
    pub(crate) not_found_ttl: Duration,
    pub(crate) jitter: f64,
    pub(crate) stale_grace: Duration,
    pub(crate) lease: Duration,
    pub(crate) lease_wait: Duration,
    pub(crate) timeout: Duration,
    pub(crate) policy: FailurePolicy,
    pub(crate) local_ttl: Duration,
    pub(crate) local_capacity: usize,
    pub(crate) subscriber: Option<redis::Client>,
    pub(crate) delete_attempts: u32,
    pub(crate) delete_backoff: Duration,
    pub(crate) clock: C,
}

impl<V: Serialize + DeserializeOwned> Builder<V, UnixClock> {
    pub(crate) fn new(name: String, connection: Connection) -> Self {
        Builder::with_codec(name, connection, Postcard)
    }
}

impl<V> Builder<V, UnixClock> {
    pub(crate) fn with_codec(name: String, connection: Connection, codec: impl Codec<V>) -> Self {
        Builder {
            name,
            connection,
            codec: Arc::new(codec),
            ttl: DEFAULT_TTL,
            not_found_ttl: DEFAULT_NOT_FOUND_TTL,
            jitter: DEFAULT_JITTER,
            stale_grace: Duration::ZERO,
            lease: Duration::from_secs(3),
            lease_wait: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            policy: FailurePolicy::FailFast,
            local_ttl: Duration::from_secs(5),
            local_capacity: 10_000,
            subscriber: None,
            delete_attempts: 8,
            delete_backoff: Duration::from_millis(100),
            clock: UnixClock::new(),
        }
    }
}

impl<V, C: Clock> Builder<V, C> {
    /// How long a loaded value counts as fresh (its logical expiry; default 7 days,
    /// go-zero's; 1 ms to [`MAX_TTL`]). Spread by the [`jitter`](Builder::jitter).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long "not found" is remembered, as a placeholder in both tiers (default 1 min,
    /// go-zero's `notFoundExpiry`; 1 ms to [`MAX_TTL`]). Spread by the jitter.
    pub fn not_found_ttl(mut self, ttl: Duration) -> Self {
        self.not_found_ttl = ttl;
        self
    }

    /// Every expiry written is the time to live times a uniform factor in
    /// `1 - jitter ..= 1 + jitter` (default 0.05, go-zero's ±5%; `0.0..=1.0`, 0 = exact),
    /// so keys written together do not expire together.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Keep entries in Redis this long past their logical expiry and serve them while one
    /// instance rebuilds (default 0: off; up to [`MAX_TTL`]). Redis's `PX` is the logical
    /// time to live plus this grace. With it, a hot key expiring under load is rebuilt by
    /// one caller across all instances while every other caller gets the stale value at
    /// once ([`Stats::stale_served`](crate::Stats::stale_served)); without it they wait
    /// for the rebuild (up to [`lease_wait`](Builder::lease_wait)).
    pub fn stale_grace(mut self, grace: Duration) -> Self {
        self.stale_grace = grace;
        self
    }

    /// The rebuild lease's lifetime (default 3 s; 1 ms to [`MAX_LEASE`]): a holder that
    /// dies (or whose load outlasts it) loses the lease after this long and another
    /// instance rebuilds. A holder whose lease expired cannot write its value (fencing).
    /// Set it above your slowest load.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a miss that finds another instance rebuilding waits for its value,
    /// polling Redis with backoff from 2 ms to 50 ms (default 5 s; 0 to [`MAX_LEASE`]; 0 =
    /// do not wait). After it: [`TakeError::Busy`](crate::TakeError::Busy). Keep it above
    /// the lease if a dead holder should be replaced within one wait.
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// The most any one Redis command may take (default 1 s; 1 ms to [`MAX_TIMEOUT`]);
    /// a command that takes longer fails as [`RedisErrorKind::Timeout`](crate::RedisErrorKind::Timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What a local miss does while Redis fails (default [`FailurePolicy::FailFast`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The local tier: entries live at most `ttl` there (default 5 s; 1 ms to
    /// [`MAX_LEASE`]; never past their logical expiry) and at most `capacity` of them
    /// (default 10,000; at least 1; evicted by keel-collection's default, S3-FIFO). `ttl` bounds how
    /// long an instance can serve a deleted value while its subscription is down.
    pub fn local(mut self, ttl: Duration, capacity: usize) -> Self {
        self.local_ttl = ttl;
        self.local_capacity = capacity;
        self
    }

    /// Subscribe to the cache's invalidation channel on a connection of this client, so
    /// that `set` and `del` on any instance evict this instance's local copies (default:
    /// none; the local tier's time to live then bounds staleness). For a cluster, any one
    /// node: `PUBLISH` reaches every node.
    pub fn subscriber(mut self, client: redis::Client) -> Self {
        self.subscriber = Some(client);
        self
    }

    /// A delete that fails is retried in the background up to `attempts` times (default
    /// 8; 0 to [`MAX_DELETE_ATTEMPTS`]; 0 = no retry), `backoff` after the failure
    /// (default 100 ms; 1 ms to [`MAX_LEASE`]), doubling each time up to 10 s.
    pub fn delete_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.delete_attempts = attempts;
        self.delete_backoff = backoff;
        self
    }

    /// The clock of logical expiries and of the local tier (default [`UnixClock`]). Every
    /// instance sharing a cache name must read the same time line: tests share one
    /// [`ManualClock`](keel_timex::ManualClock).
    pub fn clock<C2: Clock>(self, clock: C2) -> Builder<V, C2> {
        Builder {
            name: self.name,
            connection: self.connection,
            codec: self.codec,
            ttl: self.ttl,
            not_found_ttl: self.not_found_ttl,
            jitter: self.jitter,
            stale_grace: self.stale_grace,
            lease: self.lease,
            lease_wait: self.lease_wait,
            timeout: self.timeout,
            policy: self.policy,
            local_ttl: self.local_ttl,
            local_capacity: self.local_capacity,
            subscriber: self.subscriber,
            delete_attempts: self.delete_attempts,
            delete_backoff: self.delete_backoff,
            clock,
        }
    }

    /// The codec of values in Redis (default [`Postcard`]).
    pub fn codec(mut self, codec: impl Codec<V>) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() || self.name.contains(['{', '}']) {
            return Err(ConfigError::Name(self.name.clone()));
        }
        let within = |what, d: Duration, min: Duration, max: Duration| {
            if d < min || d > max {
                Err(ConfigError::Duration(what, d))
            } else {
                Ok(())
            }
        };
        within("ttl", self.ttl, MIN, MAX_TTL)?;
        within("not_found_ttl", self.not_found_ttl, MIN, MAX_TTL)?;
        within("stale_grace", self.stale_grace, Duration::ZERO, MAX_TTL)?;
        within("lease", self.lease, MIN, MAX_LEASE)?;
        within("lease_wait", self.lease_wait, Duration::ZERO, MAX_LEASE)?;
        within("timeout", self.timeout, MIN, MAX_TIMEOUT)?;
        within("local ttl", self.local_ttl, MIN, MAX_LEASE)?;
        within("delete backoff", self.delete_backoff, MIN, MAX_LEASE)?;
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::Jitter(self.jitter));
        }
        if self.local_capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if self.delete_attempts > MAX_DELETE_ATTEMPTS {
            return Err(ConfigError::DeleteAttempts(self.delete_attempts));
        }
        Ok(())
    }
}

impl<V, C> fmt::Debug for Builder<V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("connection", &self.connection)
            .field("ttl", &self.ttl)
            .field("not_found_ttl", &self.not_found_ttl)
            .field("jitter", &self.jitter)
            .field("stale_grace", &self.stale_grace)
            .field("lease", &self.lease)
            .field("lease_wait", &self.lease_wait)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("local_ttl", &self.local_ttl)
            .field("local_capacity", &self.local_capacity)
            .field("subscriber", &self.subscriber.is_some())
            .field("delete_attempts", &self.delete_attempts)
            .field("delete_backoff", &self.delete_backoff)
            .finish_non_exhaustive()
    }
}
