//! [`RedisCache`]: construction, `set`, `del` and observation. The read path is in
//! `take.rs`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ahash::RandomState;
use keel_collection::cache::Cache;
use keel_timex::Clock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::clock::UnixClock;
use crate::codec::Codec;
use crate::config::Builder;
use crate::conn::Connection;
use crate::envelope;
use crate::error::{ConfigError, DelError, SetError};
use crate::invalidate::Subscriber;
use crate::link::{Keys, Link};
use crate::metrics::{Deleted, Metrics};
use crate::policy::FailurePolicy;
use crate::retry::{Job, RetryQueue};
use crate::stats::{Counters, Stats};

/// A two-tier cache-aside cache for database reads, shared by every instance (process)
/// that builds one with the same name on the same Redis. See the [crate docs](crate) for
/// the design.
///
/// Cheap to clone; clones share the instance (its local tier, connection, statistics and
/// background tasks, which stop when the last clone is dropped).
///
/// ```no_run
/// use keel_rediscache::{Connection, RedisCache};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let cache: RedisCache<String> = RedisCache::builder("users", Connection::single(client.clone()).await?)
///     .subscriber(client)
///     .build()?;
/// let name = cache
///     .take("7", || async { Ok::<_, std::io::Error>("ada".to_string()) /* the database */ })
///     .await?;
/// cache.del("7").await?; // after updating the database: every instance forgets it
/// # Ok(()) }
/// ```
///
/// # Differences from go-zero
///
/// go-zero's `cache.Cache` (core/stores/cache) has one tier (Redis) and coalesces loads
/// per process with singleflight. Here: a bounded local tier in front of Redis; one load
/// across all instances (a fenced lease in Redis); values kept past expiry and served
/// stale while one instance rebuilds; invalidation of every instance's local tier over
/// pub/sub; failed deletes retried in the background (go-zero logs them and, since
/// v1.4, retries once after a delay); an explicit failure policy; typed errors.
pub struct RedisCache<V, C = UnixClock> {
    pub(crate) inner: Arc<Inner<V, C>>,
}

impl<V, C> Clone for RedisCache<V, C> {
    fn clone(&self) -> Self {
        RedisCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// One local entry: a value or "not found", and its logical expiry.
#[derive(Debug, Clone)]
pub(crate) struct Local<V> {
    pub(crate) value: Option<V>,
    pub(crate) expires_ms: u64,
}

pub(crate) struct Inner<V, C> {
    pub(crate) link: Arc<Link>,
    /// The local tier: a value or "not found", each kept no longer than its logical
    /// expiry (no jitter of its own: [`Inner::local_ttl_until`] jitters the local time to
    /// live and caps it).
    pub(crate) local: Cache<String, Option<V>, C>,
    /// The local tier's time to live (before jitter and the cap).
    pub(crate) local_ttl: Duration,
    pub(crate) clock: C,
    pub(crate) codec: Arc<dyn Codec<V>>,
    pub(crate) ttl: Duration,
    pub(crate) not_found_ttl: Duration,
    pub(crate) jitter: f64,
    pub(crate) stale_grace: Duration,
    pub(crate) lease: Duration,
    pub(crate) lease_wait: Duration,
    pub(crate) policy: FailurePolicy,
    pub(crate) stats: Arc<Counters>,
    /// Bumped by every invalidation applied to the local tier (and every clear): a load
    /// that saw it move may have read a value invalidated meanwhile.
    pub(crate) epoch: Arc<AtomicU64>,
    random: RandomState,
    sequence: AtomicU64,
    retry: Option<RetryQueue>,
    /// Whether a subscriber task runs.
    subscribed: bool,
    tasks: Vec<JoinHandle<()>>,
    /// The runtime the cache was built on: the blocking reads run their read path on it.
    pub(crate) runtime: tokio::runtime::Handle,
}

impl<V, C> Drop for Inner<V, C> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// # Construction
impl<V: Serialize + DeserializeOwned> RedisCache<V, UnixClock> {
    /// A [`Builder`] for the cache `name` (its keys are `{name:key}` and its invalidation
    /// channel `keel-rediscache:name`) on `connection`, storing values with
    /// [`Postcard`](crate::Postcard).
    pub fn builder(name: impl Into<String>, connection: Connection) -> Builder<V, UnixClock> {
        Builder::new(name.into(), connection)
    }
}

impl<V> RedisCache<V, UnixClock> {
    /// A [`Builder`] with a codec of your own, for values that are not serde types (or
    /// another format).
    pub fn builder_with_codec(
        name: impl Into<String>,
        connection: Connection,
        codec: impl Codec<V>,
    ) -> Builder<V, UnixClock> {
        Builder::with_codec(name.into(), connection, codec)
    }
}

impl<V: Clone + Send + Sync + 'static, C: Clock> Builder<V, C> {
    /// The cache, with its background tasks (the subscription, if any, and the delete
    /// retries) spawned on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a setting out of its bounds, or
    /// [`ConfigError::NoRuntime`] outside a tokio runtime.
    pub fn build(self) -> Result<RedisCache<V, C>, ConfigError> {
        self.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let local = Cache::builder(self.local_ttl)
            .capacity(self.local_capacity)
            .jitter(0.0)
            .name(format!("rediscache:{}", self.name))
            .clock(self.clock.clone())
            .build()
            .map_err(ConfigError::Local)?;
        let random = RandomState::new();
        let stats = Arc::new(Counters::default());
        let link = Arc::new(Link {
            conn: self.connection,
            timeout: self.timeout,
            stats: Arc::clone(&stats),
            metrics: Metrics::new(&self.name),
            channel: format!("keel-rediscache:{}", self.name),
            name: self.name,
            instance: random.hash_one("instance"),
        });
        let epoch = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let subscribed = self.subscriber.is_some();
        if let Some(client) = self.subscriber {
            let subscriber = Subscriber {
                client,
                link: Arc::clone(&link),
                local: local.clone(),
                epoch: Arc::clone(&epoch),
            };
            tasks.push(runtime.spawn(subscriber.run()));
        }
        let retry = if self.delete_attempts > 0 {
            let (queue, task) =
                RetryQueue::start(Arc::clone(&link), self.delete_attempts, self.delete_backoff)?;
            tasks.push(runtime.spawn(task));
            Some(queue)
        } else {
            None
        };
        Ok(RedisCache {
            inner: Arc::new(Inner {
                link,
                local,
                local_ttl: self.local_ttl,
                clock: self.clock,
                codec: self.codec,
                ttl: self.ttl,
                not_found_ttl: self.not_found_ttl,
                jitter: self.jitter,
                stale_grace: self.stale_grace,
                lease: self.lease,
                lease_wait: self.lease_wait,
                policy: self.policy,
                stats,
                epoch,
                random,
                sequence: AtomicU64::new(0),
                retry,
                subscribed,
                tasks,
                runtime: runtime.clone(),
            }),
        })
    }
}

/// # Writing
impl<V: Clone + Send + Sync + 'static, C: Clock> RedisCache<V, C> {
    /// Stores `value` for `key` in Redis (fresh for the jittered time to live) and in this
    /// instance's local tier, then tells every other instance to drop its local copy.
    /// A rebuild of `key` in flight on any instance can no longer write (its lease is
    /// deleted with the write).
    ///
    /// # Errors
    ///
    /// [`SetError`] if the codec refused the value or Redis failed; the local copy is
    /// dropped either way. A failed invalidation message is queued for retry (counted),
    /// not reported.
    pub async fn set(&self, key: &str, value: V) -> Result<(), SetError> {
        let inner = &*self.inner;
        Counters::add(&inner.stats.sets);
        inner.link.metrics.set();
        inner.local.remove(key);
        let bytes = inner
            .codec
            .encode(&value)
            .map_err(|e| SetError::Codec(Arc::new(e)))?;
        let ttl = inner.jittered(inner.ttl);
        let expires_ms = inner.now_ms().saturating_add(crate::link::millis(ttl));
        let entry = envelope::encode(expires_ms, Some(&bytes));
        let keys = inner.link.keys(key);
        inner
            .link
            .write(&keys, &entry, ttl + inner.stale_grace)
            .await
            .map_err(SetError::Redis)?;
        inner.local.set_with_ttl(
            key.to_owned(),
            Some(value),
            inner.local_ttl_until(expires_ms),
        );
        if inner.link.publish(&[key]).await.is_err() {
            inner.queue(key, Job::Publish);
        }
        Ok(())
    }

    /// Deletes `key` from Redis (with any rebuild lease, so a rebuild in flight cannot
    /// write an old value back) and from this instance's local tier, then tells every
    /// other instance to drop its local copy. Call it after writing the database
    /// (go-zero's `DelCache`).
    ///
    /// # Errors
    ///
    /// [`DelError::Queued`] if Redis failed: the delete is retried in the background
    /// ([`Builder::delete_retries`]); [`DelError::Failed`] if retries are off. A failed
    /// invalidation message after a successful delete is queued, not reported.
    pub async fn del(&self, key: &str) -> Result<(), DelError> {
        let inner = &*self.inner;
        Counters::add(&inner.stats.deletes);
        inner.local.remove(key);
        let deleted = inner.link.delete(&inner.link.keys(key)).await;
        // Again: a load in flight may have stored the old value meanwhile.
        inner.local.remove(key);
        match deleted {
            Ok(()) => {
                inner.link.metrics.deleted(Deleted::Ok);
                if inner.link.publish(&[key]).await.is_err() {
                    inner.queue(key, Job::Publish);
                }
                Ok(())
            }
            Err(e) => {
                if inner.queue(key, Job::Delete) {
                    Counters::add(&inner.stats.deletes_queued);
                    inner.link.metrics.deleted(Deleted::Queued);
                    Err(DelError::Queued(e))
                } else {
                    inner.link.metrics.deleted(Deleted::Failed);
                    Err(DelError::Failed(e))
                }
            }
        }
    }
}

/// # Observing
impl<V: Clone, C: Clock> RedisCache<V, C> {
    /// This instance's counters.
    pub fn snapshot(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// What this instance's local tier holds for `key`, without loading or counting:
    /// `Some(Some(v))` a value, `Some(None)` a "not found" placeholder, `None` nothing
    /// (or an entry past its logical expiry). For tests and diagnostics.
    pub fn local_entry(&self, key: &str) -> Option<Option<V>> {
        let inner = &*self.inner;
        inner.local.get(key)
    }

    /// The Redis key of `key`'s value (`{name:key}`); its lease is that plus `:lease`.
    pub fn redis_key(&self, key: &str) -> String {
        self.inner.link.keys(key).value
    }

    /// The pub/sub channel of the cache's invalidations.
    pub fn channel(&self) -> &str {
        &self.inner.link.channel
    }

    /// Waits (polling every 5 ms) until the subscription to the invalidation channel is
    /// established, at most `timeout`; whether it is. False at once without a subscriber.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        if !self.inner.subscribed {
            return false;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.stats.subscriptions.load(Ordering::Acquire) > 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl<V, C: Clock> Inner<V, C> {
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now().as_nanos() / 1_000_000
    }

    /// Whether an entry expiring at `expires_ms` is live now.
    pub(crate) fn is_live(&self, expires_ms: u64) -> bool {
        expires_ms > self.now_ms()
    }

    /// How long to keep an entry of logical expiry `expires_ms` locally: the jittered local
    /// time to live, capped at what is left before that expiry (zero, so not kept, once it
    /// passed). The local tier reads the same clock a moment later, so its deadline can
    /// pass the logical expiry by that moment (the coarse clock's resolution, 1 ms, at
    /// most; the expiry itself is a millisecond figure).
    pub(crate) fn local_ttl_until(&self, expires_ms: u64) -> Duration {
        let left = expires_ms
            .saturating_mul(1_000_000)
            .saturating_sub(self.clock.now().as_nanos());
        self.jittered(self.local_ttl)
            .min(Duration::from_nanos(left))
    }

    pub(crate) fn random(&self) -> u64 {
        self.random
            .hash_one(self.sequence.fetch_add(1, Ordering::Relaxed))
    }

    /// `ttl` times a uniform factor in `1 - jitter ..= 1 + jitter`, at least 1 ms.
    pub(crate) fn jittered(&self, ttl: Duration) -> Duration {
        if self.jitter == 0.0 {
            return ttl;
        }
        // 53 random bits: a uniform f64 in [0, 1).
        let unit = (self.random() >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        Duration::from_secs_f64(ttl.as_secs_f64() * factor).max(Duration::from_millis(1))
    }

    /// A fencing token: this instance and a random number.
    pub(crate) fn token(&self) -> String {
        format!("{:016x}{:016x}", self.link.instance, self.random())
    }

    /// Queues a retry; whether it was queued.
    fn queue(&self, key: &str, job: Job) -> bool {
        self.retry.as_ref().is_some_and(|q| q.queue(key, job))
    }

    pub(crate) fn keys(&self, key: &str) -> Keys {
        self.link.keys(key)
    }
}

impl<V, C> fmt::Debug for RedisCache<V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("RedisCache")
            .field("name", &inner.link.name)
            .field("ttl", &inner.ttl)
            .field("not_found_ttl", &inner.not_found_ttl)
            .field("jitter", &inner.jitter)
            .field("stale_grace", &inner.stale_grace)
            .field("lease", &inner.lease)
            .field("lease_wait", &inner.lease_wait)
            .field("policy", &inner.policy)
            .field("stats", &inner.stats.snapshot())
            .finish_non_exhaustive()
    }
}
