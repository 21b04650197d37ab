//! `take`: read through the cache, loading a miss once for all its concurrent callers.

use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, Hash};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use keel_syncx::singleflight::FlightError;
use keel_timex::{Clock, Nanos};

use super::error::Failure;
use super::shard::Found;
use super::tally::Count;
use super::{Cache, Inner, TakeError};
use crate::metrics::Loaded;

/// How many times a caller joins its key's load again after the load it joined failed with
/// an error of another type than its own loader's, before it runs its loader on its own.
const REJOINS: usize = 1;

/// What a flight (or a load run alone) ended with.
type Flown<V> = Result<Option<V>, FlightError<Failure>>;

/// What a loader found, and for how long to keep it (`None`: the cache's time to live).
struct Fresh<V> {
    value: Option<V>,
    ttl: Option<Duration>,
}

impl<V> Fresh<V> {
    fn cache_ttl(value: Option<V>) -> Fresh<V> {
        Fresh { value, ttl: None }
    }

    fn with_ttl((value, ttl): (V, Duration)) -> Fresh<V> {
        Fresh {
            value: Some(value),
            ttl: Some(ttl),
        }
    }
}

/// # Loading through the cache
impl<K: Hash + Eq + Clone, V: Clone, C: Clock> Cache<K, V, C> {
    /// The cached value of `key`, or else the value `loader` produces, which is then cached.
    ///
    /// Concurrent takes of one key that miss run **one** loader between them (the first
    /// caller's); the others block until it finishes and share its result. A loader that
    /// fails or panics caches nothing and every caller that waited on it gets the error, so
    /// the next `take` loads again.
    ///
    /// The loader must not `take` the same key (it would wait for itself); other keys are
    /// fine.
    ///
    /// # Callers whose loaders fail with different types
    ///
    /// Callers of one key share a load whatever their loaders' error types: its value, or
    /// its panic, reaches them all. Its error reaches only the callers whose loader fails with
    /// the same type `E` (the others could only get a wrong type or a panic): a caller with
    /// another error type loads again instead. It joins the key's load anew, with the other
    /// callers in its situation (so they still load once between them), and if that load
    /// fails with a foreign type again, it runs its own loader on its own. Every caller so
    /// ends with a value or an error of its own type, after at most one more wait; the cost
    /// is one more load per error type, and only when loads fail.
    ///
    /// # Errors
    ///
    /// - [`TakeError::Failed`] with the loader's error: this caller's, or that of the load it
    ///   joined, as the same `Arc<E>` for every caller that shared it.
    /// - [`TakeError::LoaderPanicked`] if the loader panicked (the panic is caught; the
    ///   panic hook has printed it).
    /// - [`TakeError::NotFound`] if negative caching remembers that `key` does not exist
    ///   (see [`take_optional`](Cache::take_optional)).
    ///
    /// ```
    /// use keel_collection::cache::{Cache, TakeError};
    /// use std::time::Duration;
    ///
    /// let cache: Cache<u64, String> = Cache::new(Duration::from_secs(60))?;
    /// let load = |id: u64| move || Ok::<_, std::io::Error>(format!("user {id}"));
    /// assert_eq!(cache.take(7, load(7))?, "user 7"); // loaded: a miss
    /// assert_eq!(cache.take(7, load(7))?, "user 7"); // cached: a hit
    /// assert_eq!((cache.snapshot().hits, cache.snapshot().misses), (1, 1));
    ///
    /// // The loader's error comes back as its own type, in an Arc.
    /// let failed = cache.take(8, || Err(std::io::Error::other("database down")));
    /// let Err(TakeError::Failed(error)) = failed else { panic!("expected the loader's error") };
    /// assert_eq!(error.kind(), std::io::ErrorKind::Other);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take<F, E>(&self, key: K, loader: F) -> Result<V, TakeError<E>>
    where
        F: FnOnce() -> Result<V, E>,
        E: Send + Sync + 'static,
    {
        self.take_optional(key, || loader().map(Some))
            .and_then(|found| found.ok_or(TakeError::NotFound))
    }

    /// [`take`](Cache::take) for a loader that may find nothing (`Ok(None)`). With
    /// [`Builder::negative_ttl`](super::Builder::negative_ttl), "nothing" is cached for that
    /// long, so repeated requests for a key that does not exist do not reach the loader
    /// (cache penetration); without it, nothing is cached.
    ///
    /// # Errors
    ///
    /// As [`take`](Cache::take), without `NotFound`.
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let cache: Cache<u64, String> = Cache::builder(Duration::from_secs(60))
    ///     .negative_ttl(Duration::from_secs(5))
    ///     .build()?;
    /// let mut loads = 0;
    /// for _ in 0..3 {
    ///     let found = cache.take_optional(404, || {
    ///         loads += 1;
    ///         Ok::<_, std::io::Error>(None)
    ///     })?;
    ///     assert_eq!(found, None);
    /// }
    /// assert_eq!(loads, 1); // "not found" was remembered
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_optional<F, E>(&self, key: K, loader: F) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Result<Option<V>, E>,
        E: Send + Sync + 'static,
    {
        self.take_fresh(key, || loader().map(Fresh::cache_ttl))
    }

    /// [`take`](Cache::take) for a loader that also says how long its value stays fresh:
    /// the value is kept for that time (jitter applies, as with
    /// [`set_with_ttl`](Cache::set_with_ttl); zero keeps nothing) instead of the cache's
    /// time to live. For values whose freshness someone else decided (an entry read from a
    /// shared store with its own expiry, a token valid until a given time). Callers that
    /// join the load share the value, whatever time to live it was kept for.
    ///
    /// # Errors
    ///
    /// As [`take`](Cache::take), without `NotFound` unless negative caching remembers the key.
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let cache: Cache<&str, String> = Cache::new(Duration::from_secs(60))?;
    /// // The token expires in 5 s, whatever the cache's own time to live.
    /// let token = cache.take_with_ttl("api", || {
    ///     Ok::<_, std::io::Error>(("t0k3n".to_string(), Duration::from_secs(5)))
    /// })?;
    /// assert_eq!(token, "t0k3n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_with_ttl<F, E>(&self, key: K, loader: F) -> Result<V, TakeError<E>>
    where
        F: FnOnce() -> Result<(V, Duration), E>,
        E: Send + Sync + 'static,
    {
        self.take_fresh(key, || loader().map(Fresh::with_ttl))
            .and_then(|found| found.ok_or(TakeError::NotFound))
    }

    /// The body of the sync takes: the loader says what it found and for how long.
    fn take_fresh<F, E>(&self, key: K, loader: F) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Result<Fresh<V>, E>,
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(&key);
        let now = inner.clock.now();
        // The request is counted here, once per call (a miss whether this caller leads the
        // key's load or joins one).
        if let Some(found) = inner.cached(hash, &key, now, true) {
            inner.after_operation(now);
            return Ok(found);
        }
        // Taken by the one load attempt of this caller that runs it.
        let mut loader = Some(loader);
        let mut attempts = 0;
        let outcome = loop {
            let (result, led) = if attempts <= REJOINS {
                inner
                    .flights
                    .run_ex(key.clone(), || inner.load(hash, &key, loader.take()))
            } else {
                alone(inner.load(hash, &key, loader.take()))
            };
            match inner.settle(result, led) {
                Some(outcome) => break outcome,
                None => attempts += 1,
            }
        };
        inner.after_operation(now);
        outcome
    }

    /// The async [`take`](Cache::take): concurrent callers of one key, sync or async, share
    /// one load, and followers wait without blocking their thread. Runtime-agnostic.
    ///
    /// # Cancellation
    ///
    /// Dropping a waiting caller's future just stops its wait. Dropping the loading caller's
    /// future drops its load; one of the callers waiting then runs its own loader (see
    /// keel-syncx's `SingleFlight::run_async`).
    ///
    /// # Errors
    ///
    /// As [`take`](Cache::take), whose rules for callers with different error types hold
    /// here too.
    ///
    /// ```
    /// use keel_collection::cache::{Cache, TakeError};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: Cache<u64, String> = Cache::new(Duration::from_secs(60))?;
    /// let name = cache.take_async(7, || async { Ok::<_, std::io::Error>("ada".to_string()) });
    /// assert_eq!(name.await?, "ada");
    /// let failed = cache.take_async(8, || async { Err::<String, _>("timed out") }).await;
    /// assert!(matches!(failed, Err(TakeError::Failed(e)) if *e == "timed out"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn take_async<F, Fut, E>(&self, key: K, loader: F) -> Result<V, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.take_optional_async(key, move || {
            let load = loader();
            async move { load.await.map(Some) }
        })
        .await
        .and_then(|found| found.ok_or(TakeError::NotFound))
    }

    /// The async [`take_optional`](Cache::take_optional).
    ///
    /// # Errors
    ///
    /// As [`take_optional`](Cache::take_optional).
    pub async fn take_optional_async<F, Fut, E>(
        &self,
        key: K,
        loader: F,
    ) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Send + Sync + 'static,
    {
        self.take_fresh_async(key, move || {
            let load = loader();
            async move { load.await.map(Fresh::cache_ttl) }
        })
        .await
    }

    /// The async [`take_with_ttl`](Cache::take_with_ttl).
    ///
    /// # Errors
    ///
    /// As [`take_with_ttl`](Cache::take_with_ttl).
    pub async fn take_async_with_ttl<F, Fut, E>(&self, key: K, loader: F) -> Result<V, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Duration), E>>,
        E: Send + Sync + 'static,
    {
        self.take_fresh_async(key, move || {
            let load = loader();
            async move { load.await.map(Fresh::with_ttl) }
        })
        .await
        .and_then(|found| found.ok_or(TakeError::NotFound))
    }

    /// The body of the async takes: the loader says what it found and for how long.
    async fn take_fresh_async<F, Fut, E>(
        &self,
        key: K,
        loader: F,
    ) -> Result<Option<V>, TakeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fresh<V>, E>>,
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(&key);
        let now = inner.clock.now();
        // The request is counted here, once per call (a miss whether this caller leads the
        // key's load or joins one).
        if let Some(found) = inner.cached(hash, &key, now, true) {
            inner.after_operation(now);
            return Ok(found);
        }
        let mut loader = Some(loader);
        let mut attempts = 0;
        let outcome = loop {
            let (result, led) = if attempts <= REJOINS {
                inner
                    .flights
                    .run_ex_async(key.clone(), || inner.load_async(hash, &key, loader.take()))
                    .await
            } else {
                alone(inner.load_async(hash, &key, loader.take()).await)
            };
            match inner.settle(result, led) {
                Some(outcome) => break outcome,
                None => attempts += 1,
            }
        };
        inner.after_operation(now);
        outcome
    }
}

impl<K: Hash + Eq + Clone, V: Clone, C: Clock> Inner<K, V, C> {
    /// Runs a caller's loader and caches what it produced, unless a load that finished
    /// between the caller's miss and now has cached the key.
    fn load<F, E>(&self, hash: u64, key: &K, loader: Option<F>) -> Result<Option<V>, Failure>
    where
        F: FnOnce() -> Result<Fresh<V>, E>,
        E: Send + Sync + 'static,
    {
        if let Some(found) = self.cached(hash, key, self.clock.now(), false) {
            return Ok(found);
        }
        // Always there: a caller's loader runs at most once, and a caller loads again only
        // when its loader did not run.
        let Some(loader) = loader else {
            return Err(Failure::Panicked);
        };
        let start = self.metrics.load_start(&self.clock);
        let loaded = catch_unwind(AssertUnwindSafe(loader));
        self.metrics.load_end(&self.clock, start, outcome(&loaded));
        match loaded {
            Ok(Ok(fresh)) => {
                self.keep(
                    key.clone(),
                    fresh.value.clone(),
                    fresh.ttl,
                    self.clock.now(),
                );
                Ok(fresh.value)
            }
            Ok(Err(error)) => Err(Failure::Load(Arc::new(error))),
            Err(_panic) => Err(Failure::Panicked),
        }
    }

    /// The async [`load`](Inner::load).
    async fn load_async<F, Fut, E>(
        &self,
        hash: u64,
        key: &K,
        loader: Option<F>,
    ) -> Result<Option<V>, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fresh<V>, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(found) = self.cached(hash, key, self.clock.now(), false) {
            return Ok(found);
        }
        // Always there, as in `load`.
        let Some(loader) = loader else {
            return Err(Failure::Panicked);
        };
        let start = self.metrics.load_start(&self.clock);
        let loaded = load_catching_panics(loader).await;
        self.metrics.load_end(&self.clock, start, outcome(&loaded));
        match loaded {
            Ok(Ok(fresh)) => {
                self.keep(
                    key.clone(),
                    fresh.value.clone(),
                    fresh.ttl,
                    self.clock.now(),
                );
                Ok(fresh.value)
            }
            Ok(Err(error)) => Err(Failure::Load(Arc::new(error))),
            Err(()) => Err(Failure::Panicked),
        }
    }

    /// The live entry of `key` (counted as a hit), or `None` on a miss (not counted: the
    /// load decides). A caller's first lookup is its `request`, which the metrics count
    /// whatever it found.
    fn cached(&self, hash: u64, key: &K, now: Nanos, request: bool) -> Option<Option<V>> {
        let found = self.lookup(hash, key, now);
        if request {
            self.count_request(&found);
        }
        match found {
            Found::Live(value) => {
                self.tally.add(Count::Hit);
                Some(value)
            }
            Found::Absent => None,
        }
    }

    /// Caches what a loader produced (for its own time to live if it gave one; a "not
    /// found" only with negative caching); counts the miss.
    fn keep(&self, key: K, loaded: Option<V>, ttl: Option<Duration>, now: Nanos) {
        match (loaded, self.negative_ttl) {
            (Some(value), _) => {
                self.store(key, Some(value), ttl.unwrap_or(self.ttl), now, true);
            }
            (None, Some(negative_ttl)) => {
                self.store(key, None, negative_ttl, now, true);
            }
            (None, None) => self.tally.add(Count::Miss),
        }
    }

    /// Counts a follower's shared value as a hit and turns a flight's error into the
    /// caller's; `None` when the load failed with an error of another type than `E` (the
    /// caller must load again).
    fn settle<E: Send + Sync + 'static>(
        &self,
        result: Flown<V>,
        led: bool,
    ) -> Option<Result<Option<V>, TakeError<E>>> {
        match result {
            Ok(found) => {
                // The leader counted its own hit or miss.
                if !led {
                    self.tally.add(Count::Hit);
                }
                Some(Ok(found))
            }
            Err(FlightError::Failed(failure)) => failure.to_take_error().map(Err),
            // Not reached (loaders' panics are caught), but a flight can report it.
            Err(_) => Some(Err(TakeError::LoaderPanicked)),
        }
    }
}

/// How a loader run ended, for the metrics.
#[inline(always)]
fn outcome<V, E, P>(loaded: &Result<Result<Fresh<V>, E>, P>) -> Loaded {
    match loaded {
        Ok(Ok(Fresh { value: Some(_), .. })) => Loaded::Value,
        Ok(Ok(Fresh { value: None, .. })) => Loaded::Nothing,
        Ok(Err(_)) => Loaded::Failed,
        Err(_) => Loaded::Panicked,
    }
}

/// A load run outside the key's flight, as a flight's leader would report it.
fn alone<V>(loaded: Result<Option<V>, Failure>) -> (Flown<V>, bool) {
    (loaded.map_err(|f| FlightError::Failed(Arc::new(f))), true)
}

/// # Observing loads
impl<K: Hash + Eq, V, C> Cache<K, V, C> {
    /// The callers of a `take` (sync or async) waiting now for the load of `key` in flight,
    /// not counting the one running its loader; 0 when no load of `key` is in flight. For
    /// metrics (how much load coalescing absorbs) and for tests that must know their callers
    /// have joined a load before letting it finish.
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let cache: Cache<u64, u64> = Cache::new(Duration::from_secs(60))?;
    /// assert_eq!(cache.waiting(&1), 0);
    /// let value = cache.take(1, || {
    ///     assert_eq!(cache.waiting(&1), 0); // a load in flight, nobody waiting on it
    ///     Ok::<_, std::io::Error>(10)
    /// })?;
    /// assert_eq!(value, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiting(&self, key: &K) -> usize {
        self.inner.flights.waiting(key)
    }
}

/// Makes and runs a loader's future, turning a panic in either into `Err(())`.
async fn load_catching_panics<F, Fut, T>(loader: F) -> Result<T, ()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let load = catch_unwind(AssertUnwindSafe(loader)).map_err(drop)?;
    let mut load = pin!(load);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| load.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_panic) => Poll::Ready(Err(())),
        },
    )
    .await
}
