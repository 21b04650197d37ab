//! The read path: local tier, then Redis, then one load across all instances.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keel_collection::cache::TakeError as LocalError;
use keel_timex::Clock;
use tokio::time::Instant;

use crate::cache::{Inner, Local, RedisCache};
use crate::envelope;
use crate::error::{RedisError, TakeError};
use crate::link::{Keys, Link, millis};
use crate::metrics::{Loaded, Lookup, Request};
use crate::policy::FailurePolicy;
use crate::stats::Counters;

/// The first and the longest pause between two looks at a key another instance rebuilds.
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// A local load's outcome that must not be cached locally; shared (in an `Arc`) by the
/// callers coalesced on it.
#[derive(Debug)]
pub(crate) enum Flow<V, E> {
    /// A logically expired value (or placeholder), served while another instance rebuilds.
    Stale(Option<V>),
    Loader(Arc<E>),
    Redis(RedisError),
    Busy,
    Overloaded(RedisError),
}

/// # Reading from synchronous code
impl<V: Clone + Send + Sync + 'static, C: Clock> RedisCache<V, C> {
    /// [`take`](Self::take) for synchronous code (a thread of its own, a blocking pool, a
    /// sync web framework): the same read path, run on the tokio runtime the cache was
    /// built on while the calling thread waits; `loader` runs on the calling thread (inside
    /// that wait), once across every instance as with `take`. The runtime must be driven
    /// by threads other than the caller: a multi-thread runtime, or a current-thread one
    /// whose `block_on` runs elsewhere.
    ///
    /// ```no_run
    /// # use keel_rediscache::{Connection, RedisCache};
    /// # let runtime = tokio::runtime::Runtime::new().unwrap();
    /// # let users: RedisCache<String> = runtime.block_on(async {
    /// #     let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
    /// #     RedisCache::builder("users", Connection::single(client).await.unwrap()).build().unwrap()
    /// # });
    /// // On a thread that is not one of the runtime's:
    /// let name = users.take_blocking("42", || Ok::<_, std::io::Error>("Ada".to_owned()))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`take`](Self::take), and [`TakeError::InAsyncContext`] when called from inside
    /// a tokio runtime (blocking there would stall its tasks: use `take`).
    pub fn take_blocking<F, E>(&self, key: &str, loader: F) -> Result<V, TakeError<E>>
    where
        F: FnOnce() -> Result<V, E>,
        E: Send + Sync + 'static,
    {
        self.take_optional_blocking(key, move || loader().map(Some))
            .and_then(|found| found.ok_or(TakeError::NotFound))
    }

    /// [`take_optional`](Self::take_optional) for synchronous code; see
    /// [`take_blocking`](Self::take_blocking).
    ///
    /// # Errors
    ///
    /// As [`take_optional`](Self::take_optional), and [`TakeError::InAsyncContext`] from
    /// inside a tokio runtime.
    pub fn take_optional_blocking<F, E>(
        &self,
        key: &str,
        loader: F,
    ) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Result<Option<V>, E>,
        E: Send + Sync + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(TakeError::InAsyncContext);
        }
        self.inner
            .runtime
            .block_on(self.take_optional(key, move || std::future::ready(loader())))
    }
}

/// # Reading
impl<V: Clone + Send + Sync + 'static, C: Clock> RedisCache<V, C> {
    /// The value of `key`: from this instance's local tier, else from Redis, else from
    /// `loader`, called **once across every instance** for a key that is missing or
    /// expired (see the [crate docs](crate#the-read-path)). A loader's value is written
    /// to Redis (fresh for the jittered time to live) and kept locally.
    ///
    /// # Errors
    ///
    /// [`TakeError::NotFound`] when a placeholder says the key does not exist (use
    /// [`take_optional`](Self::take_optional) for loaders that may find nothing); the
    /// loader's error or panic; [`TakeError::Redis`] or [`TakeError::Overloaded`] when
    /// Redis fails (per the [`FailurePolicy`]); [`TakeError::Busy`] when another instance
    /// rebuilds the key and no value came within the lease wait.
    pub async fn take<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        // The local hit first, as in `take_optional`, without a second future around it.
        if let Some(hit) = self.inner.local_hit(key) {
            return hit.ok_or(TakeError::NotFound);
        }
        let loader = move || {
            let load = loader();
            async move { load.await.map(Some) }
        };
        Box::pin(self.take_missed(key, loader))
            .await
            .and_then(|found| found.ok_or(TakeError::NotFound))
    }

    /// [`take`](Self::take) for a loader that may find nothing (`Ok(None)`): "not found"
    /// is remembered as a placeholder in both tiers for the
    /// [`not_found_ttl`](crate::Builder::not_found_ttl), so requests for keys that do not
    /// exist do not reach the database (cache penetration).
    ///
    /// # Errors
    ///
    /// As [`take`](Self::take), without `NotFound`.
    pub async fn take_optional<F, Fut, E>(
        &self,
        key: &str,
        loader: F,
    ) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(hit) = self.inner.local_hit(key) {
            return Ok(hit);
        }
        // The miss path's state machine (Redis calls, the lease, the loader) is a few
        // kilobytes: boxed, so that the future every call builds, moves and polls is only
        // as large as the local hit needs (an allocation is nothing next to a round trip).
        Box::pin(self.take_missed(key, loader)).await
    }

    /// The rest of [`take`](Self::take) and [`take_optional`](Self::take_optional) after a
    /// local miss.
    async fn take_missed<F, Fut, E>(&self, key: &str, loader: F) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let owned = key.to_owned();
        Counters::add(&inner.stats.misses);
        inner.link.metrics.request(Request::Miss);
        let epoch = inner.epoch.load(std::sync::atomic::Ordering::Acquire);
        // Kept locally until the entry's logical expiry at the latest, so that a local
        // hit needs no expiry check of its own (the local tier's deadline is it).
        let result = inner
            .local
            .take_async_with_ttl(owned.clone(), || async {
                let entry = inner.fetch(key, loader).await?;
                let ttl = inner.local_ttl_until(entry.expires_ms);
                Ok((entry.value, ttl))
            })
            .await;
        if inner.epoch.load(std::sync::atomic::Ordering::Acquire) != epoch {
            // An invalidation arrived while this load ran: what it stored may predate it.
            inner.local.remove(&owned);
        }
        match result {
            Ok(value) => Ok(value),
            Err(LocalError::Failed(flow)) => match &*flow {
                Flow::Stale(value) => Ok(value.clone()),
                Flow::Loader(e) => Err(TakeError::Loader(Arc::clone(e))),
                Flow::Redis(e) => Err(TakeError::Redis(e.clone())),
                Flow::Busy => Err(TakeError::Busy),
                Flow::Overloaded(e) => Err(TakeError::Overloaded(e.clone())),
            },
            Err(LocalError::NotFound) => Err(TakeError::NotFound),
            Err(_) => Err(TakeError::LoaderPanicked),
        }
    }
}

impl<V: Clone + Send + Sync + 'static, C: Clock> Inner<V, C> {
    /// The local tier's answer for `key` if it holds a live entry (counted as a local hit).
    /// Entries are kept locally no longer than their logical expiry (see
    /// [`local_ttl_until`](Inner::local_ttl_until)), so the local tier's own deadline check
    /// is the only one. Looked up by `&str`: allocates nothing. Inlined into the callers: a
    /// call of its own was a tenth of a local hit.
    #[inline(always)]
    fn local_hit(&self, key: &str) -> Option<Option<V>> {
        let value = self.local.get(key)?;
        self.stats.local_hits.add(0);
        if value.is_none() {
            Counters::add(&self.stats.placeholder_hits);
            self.link.metrics.request(Request::NotFound);
        } else {
            self.link.metrics.request(Request::Hit);
        }
        Some(value)
    }

    /// One local load: Redis, else the lease and the loader, else wait for the holder.
    async fn fetch<F, Fut, E>(&self, key: &str, loader: F) -> Result<Local<V>, Flow<V, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let keys = self.keys(key);
        let deadline = Instant::now() + self.lease_wait;
        let mut pause = POLL_MIN;
        let mut waited = false;
        loop {
            let now = self.now_ms();
            let mut stale = None;
            match self.link.get(&keys).await {
                Err(e) => return self.degraded(e, now, loader).await,
                Ok(None) => {}
                Ok(Some(bytes)) => match envelope::decode(&bytes, &*self.codec) {
                    Err(_) => {
                        Counters::add(&self.stats.corrupt);
                        self.link.metrics.corrupt();
                        // Only if it still is what was read; an error is counted and the
                        // rebuild's write replaces it anyway.
                        let _ = self.link.delete_if_equal(&keys, &bytes).await;
                    }
                    Ok(entry) if entry.expires_ms > now => {
                        Counters::add(&self.stats.l2_hits);
                        if entry.value.is_none() {
                            Counters::add(&self.stats.placeholder_hits);
                            self.link.metrics.lookup(Lookup::NotFound);
                        } else {
                            self.link.metrics.lookup(Lookup::Hit);
                        }
                        return Ok(Local {
                            value: entry.value,
                            expires_ms: entry.expires_ms,
                        });
                    }
                    // Logically expired: servable while another instance rebuilds, if
                    // stale serving is on.
                    Ok(entry) if !self.stale_grace.is_zero() => stale = Some(entry.value),
                    Ok(_) => {}
                },
            }
            let token = self.token();
            match self.link.acquire(&keys, &token, self.lease).await {
                Ok(true) => {
                    // The previous holder may have written and released between this
                    // caller's GET and its SET NX: look once more, holding the lease.
                    if let Some(fresh) = self.recheck(&keys, &token).await {
                        return Ok(fresh);
                    }
                    return self.lead(&keys, token, loader).await;
                }
                Ok(false) => {}
                Err(e) => {
                    if let Some(value) = stale {
                        Counters::add(&self.stats.stale_served);
                        self.link.metrics.lookup(Lookup::Stale);
                        return Err(Flow::Stale(value));
                    }
                    return self.degraded(e, now, loader).await;
                }
            }
            if let Some(value) = stale {
                Counters::add(&self.stats.stale_served);
                self.link.metrics.lookup(Lookup::Stale);
                return Err(Flow::Stale(value));
            }
            if !waited {
                waited = true;
                Counters::add(&self.stats.lease_waits);
                self.link.metrics.lease_waited();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Counters::add(&self.stats.lease_timeouts);
                self.link.metrics.lookup(Lookup::Busy);
                return Err(Flow::Busy);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// With the lease just taken: a fresh entry someone wrote meanwhile (the lease is then
    /// released), or `None` (load it).
    async fn recheck(&self, keys: &Keys, token: &str) -> Option<Local<V>> {
        let bytes = self.link.get(keys).await.ok()??;
        let entry = envelope::decode(&bytes, &*self.codec).ok()?;
        if !self.is_live(entry.expires_ms) {
            return None;
        }
        let _ = self.link.release(keys, token).await;
        Counters::add(&self.stats.l2_hits);
        if entry.value.is_none() {
            Counters::add(&self.stats.placeholder_hits);
            self.link.metrics.lookup(Lookup::NotFound);
        } else {
            self.link.metrics.lookup(Lookup::Hit);
        }
        Some(Local {
            value: entry.value,
            expires_ms: entry.expires_ms,
        })
    }

    /// Holds the lease: loads, writes the value fenced by the token, returns it.
    async fn lead<F, Fut, E>(
        &self,
        keys: &Keys,
        token: String,
        loader: F,
    ) -> Result<Local<V>, Flow<V, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let mut guard = LeaseGuard {
            link: Arc::clone(&self.link),
            lease: keys.lease.clone(),
            token: Some(token),
        };
        Counters::add(&self.stats.loads);
        self.link.metrics.lookup(Lookup::Load);
        let timer = self.link.metrics.load_start();
        let loaded = loader().await;
        timer.end(Loaded::of(&loaded));
        let token = guard.token.take().unwrap_or_default();
        let found = match loaded {
            Ok(found) => found,
            Err(e) => {
                Counters::add(&self.stats.load_errors);
                let _ = self.link.release(keys, &token).await;
                return Err(Flow::Loader(Arc::new(e)));
            }
        };
        let ttl = self.jittered(if found.is_some() {
            self.ttl
        } else {
            self.not_found_ttl
        });
        let expires_ms = self.now_ms().saturating_add(millis(ttl));
        let encoded = found.as_ref().map(|v| self.codec.encode(v)).transpose();
        match encoded {
            Ok(bytes) => {
                let entry = envelope::encode(expires_ms, bytes.as_deref());
                match self
                    .link
                    .fenced_write(keys, &token, &entry, ttl + self.stale_grace)
                    .await
                {
                    Ok(true) if found.is_none() => {
                        Counters::add(&self.stats.placeholders);
                        self.link.metrics.placeholder_written();
                    }
                    Ok(true) => {}
                    Ok(false) => {
                        Counters::add(&self.stats.lease_lost);
                        self.link.metrics.lease_lost();
                    }
                    // Counted; the value is still this caller's.
                    Err(_) => {}
                }
            }
            // Not storable: returned, not written.
            Err(_) => {
                let _ = self.link.release(keys, &token).await;
            }
        }
        Ok(Local {
            value: found,
            expires_ms,
        })
    }

    /// Redis failed on a local miss: the failure policy decides.
    async fn degraded<F, Fut, E>(
        &self,
        error: RedisError,
        now: u64,
        loader: F,
    ) -> Result<Local<V>, Flow<V, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let FailurePolicy::Load(limit) = &self.policy else {
            self.link.metrics.lookup(Lookup::Unavailable);
            return Err(Flow::Redis(error));
        };
        let Some(permit) = limit.try_acquire_owned() else {
            Counters::add(&self.stats.overloaded);
            self.link.metrics.lookup(Lookup::Overloaded);
            return Err(Flow::Overloaded(error));
        };
        Counters::add(&self.stats.loads);
        self.link.metrics.lookup(Lookup::DegradedLoad);
        let timer = self.link.metrics.load_start();
        let loaded = loader().await;
        timer.end(Loaded::of(&loaded));
        drop(permit);
        match loaded {
            Ok(found) => {
                let ttl = self.jittered(if found.is_some() {
                    self.ttl
                } else {
                    self.not_found_ttl
                });
                Ok(Local {
                    value: found,
                    expires_ms: now.saturating_add(millis(ttl)),
                })
            }
            Err(e) => {
                Counters::add(&self.stats.load_errors);
                Err(Flow::Loader(Arc::new(e)))
            }
        }
    }
}

/// Releases the lease if the load is dropped (cancelled) or panics before it finished:
/// the other instances then need not wait for the lease to expire.
struct LeaseGuard {
    link: Arc<Link>,
    lease: String,
    token: Option<String>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let link = Arc::clone(&self.link);
        let keys = Keys {
            value: String::new(),
            lease: std::mem::take(&mut self.lease),
        };
        runtime.spawn(async move {
            let _ = link.release(&keys, &token).await;
        });
    }
}
