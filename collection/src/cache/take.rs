//! `take`: read through the cache, loading a miss once for all its concurrent callers.

use std::error::Error;
use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use keel_syncx::singleflight::FlightError;
use keel_timex::{Clock, Nanos};

use super::error::Failure;
use super::shard::Found;
use super::{Cache, Inner, LoadError, TakeError};

/// A loader's boxed error.
type BoxError = Box<dyn Error + Send + Sync>;

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
    /// # Errors
    ///
    /// - [`TakeError::Failed`] with the loader's error.
    /// - [`TakeError::LoaderPanicked`] if the loader panicked (the panic is caught; the
    ///   panic hook has printed it).
    /// - [`TakeError::NotFound`] if negative caching remembers that `key` does not exist
    ///   (see [`take_optional`](Cache::take_optional)).
    ///
    /// ```
    /// use keel_collection::cache::Cache;
    /// use std::time::Duration;
    ///
    /// let cache: Cache<u64, String> = Cache::new(Duration::from_secs(60))?;
    /// let load = |id: u64| move || Ok::<_, std::io::Error>(format!("user {id}"));
    /// assert_eq!(cache.take(7, load(7))?, "user 7"); // loaded: a miss
    /// assert_eq!(cache.take(7, load(7))?, "user 7"); // cached: a hit
    /// assert_eq!((cache.snapshot().hits, cache.snapshot().misses), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take<F, E>(&self, key: K, loader: F) -> Result<V, TakeError>
    where
        F: FnOnce() -> Result<V, E>,
        E: Into<BoxError>,
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
    pub fn take_optional<F, E>(&self, key: K, loader: F) -> Result<Option<V>, TakeError>
    where
        F: FnOnce() -> Result<Option<V>, E>,
        E: Into<BoxError>,
    {
        let hash = self.inner.hasher.hash_one(&key);
        let now = self.inner.clock.now();
        if let Some(found) = self.inner.cached(hash, &key, now) {
            self.inner.after_operation(now);
            return Ok(found);
        }
        let flight_key = key.clone();
        let (result, led) = self.inner.flights.run_ex(flight_key, || {
            // Another load may have finished between the miss and joining the flight.
            if let Some(found) = self.inner.cached(hash, &key, self.inner.clock.now()) {
                return Ok(found);
            }
            let loaded = match catch_unwind(AssertUnwindSafe(loader)) {
                Ok(Ok(found)) => found,
                Ok(Err(error)) => return Err(Failure::Load(LoadError::new(error.into()))),
                Err(_panic) => return Err(Failure::Panicked),
            };
            self.inner.keep(key, loaded.clone(), self.inner.clock.now());
            Ok(loaded)
        });
        self.inner.finish_take(hash, result, led, now)
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
    /// As [`take`](Cache::take).
    pub async fn take_async<F, Fut, E>(&self, key: K, loader: F) -> Result<V, TakeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<BoxError>,
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
    ) -> Result<Option<V>, TakeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<BoxError>,
    {
        let hash = self.inner.hasher.hash_one(&key);
        let now = self.inner.clock.now();
        if let Some(found) = self.inner.cached(hash, &key, now) {
            self.inner.after_operation(now);
            return Ok(found);
        }
        let key_ref = &key;
        let (result, led) = self
            .inner
            .flights
            .run_ex_async(key.clone(), move || async move {
                if let Some(found) = self.inner.cached(hash, key_ref, self.inner.clock.now()) {
                    return Ok(found);
                }
                let loaded = match load_catching_panics(loader).await {
                    Ok(Ok(found)) => found,
                    Ok(Err(error)) => return Err(Failure::Load(LoadError::new(error.into()))),
                    Err(()) => return Err(Failure::Panicked),
                };
                self.inner
                    .keep(key_ref.clone(), loaded.clone(), self.inner.clock.now());
                Ok(loaded)
            })
            .await;
        self.inner.finish_take(hash, result, led, now)
    }
}

impl<K: Hash + Eq + Clone, V: Clone, C: Clock> Inner<K, V, C> {
    /// The live entry of `key` (counted as a hit), or `None` on a miss (not counted: the
    /// load decides).
    fn cached(&self, hash: u64, key: &K, now: Nanos) -> Option<Option<V>> {
        let mut shard = self.lock(hash);
        match shard.get(&self.hasher, hash, key, now.as_nanos()) {
            Found::Live(value) => {
                shard.counts.hits += 1;
                Some(value)
            }
            Found::Absent => None,
        }
    }

    /// Caches what a loader produced (a "not found" only with negative caching); counts the
    /// miss.
    fn keep(&self, key: K, loaded: Option<V>, now: Nanos) {
        match (loaded, self.negative_ttl) {
            (Some(value), _) => {
                self.store(key, Some(value), self.ttl, now, true);
            }
            (None, Some(negative_ttl)) => {
                self.store(key, None, negative_ttl, now, true);
            }
            (None, None) => self.lock(self.hasher.hash_one(&key)).counts.misses += 1,
        }
    }

    /// Counts a follower's shared value as a hit and turns a flight's error into ours.
    fn finish_take(
        &self,
        hash: u64,
        result: Result<Option<V>, FlightError<Failure>>,
        led: bool,
        now: Nanos,
    ) -> Result<Option<V>, TakeError> {
        let outcome = match result {
            Ok(found) => {
                // The leader counted its own hit or miss under the lock it already held.
                if !led {
                    self.lock(hash).counts.hits += 1;
                }
                Ok(found)
            }
            Err(FlightError::Failed(failure)) => Err(failure.to_take_error()),
            // Not reached (loaders' panics are caught), but a flight can report it.
            Err(_) => Err(TakeError::LoaderPanicked),
        };
        self.after_operation(now);
        outcome
    }
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
