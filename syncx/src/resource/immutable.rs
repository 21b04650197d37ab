//! [`ImmutableResource`]: fetch once, retry failures at most once per interval.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use keel_timex::{Clock, MonotonicClock, Nanos};

use crate::sync::{Condvar, Mutex, lock, wait};

type Fetch<T, E> = Box<dyn Fn() -> Result<T, E> + Send + Sync>;

/// A value fetched lazily by the first [`get`](ImmutableResource::get) and kept for good.
/// A failed fetch is cached and returned until the retry interval has passed (default 1 s);
/// the next `get` after that fetches again.
///
/// - **Fast path:** once fetched, `get` is one `OnceLock` read and an `Arc` clone, with no
///   lock.
/// - **One fetch at a time:** concurrent getters wait for the running fetch and share its
///   result, value or error (go-zero PR #5065).
/// - **Panics:** a panicking fetch propagates to the caller that ran it and leaves the
///   resource unfetched with no error cached; callers that waited for it wake and fetch
///   themselves, one at a time. Nobody hangs.
///
/// `fetch` runs on the calling thread, outside any lock; it must not call `get` on the same
/// resource (that deadlocks, as in go-zero).
///
/// ```
/// use keel_syncx::resource::ImmutableResource;
/// use keel_timex::ManualClock;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let attempts = Arc::new(AtomicUsize::new(0));
/// let clock = ManualClock::new();
/// let counter = attempts.clone();
/// let endpoint = ImmutableResource::new(move || {
///     match counter.fetch_add(1, Ordering::Relaxed) {
///         0 => Err("discovery down"),
///         _ => Ok("10.0.0.7:8080"),
///     }
/// })
/// .retry_interval(Duration::from_secs(5))
/// .clock(clock.clone());
///
/// assert_eq!(*endpoint.get().unwrap_err(), "discovery down");
/// assert_eq!(*endpoint.get().unwrap_err(), "discovery down"); // cached, no second fetch
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(*endpoint.get().unwrap(), "10.0.0.7:8080");
/// assert_eq!(attempts.load(Ordering::Relaxed), 2);
/// ```
///
/// # Differences from go-zero
///
/// - The error is typed and shared as `Arc<E>`, the value as `Arc<T>`.
/// - The fetch runs outside the lock, and a panicking fetch leaves nobody stuck (waiters fetch
///   themselves); go-zero fetches under its mutex.
/// - A failure is retried once `retry_interval` has passed *or exactly elapsed*
///   (go-zero: strictly after), so an interval of zero retries on every `get` even under a
///   [`ManualClock`](keel_timex::ManualClock) that stands still.
/// - A fetch cannot return "nothing" (go-zero's `(nil, nil)` leaves the resource unset); use
///   an error for that.
/// - Time comes from the resource's [`Clock`], so tests advance a `ManualClock` instead of
///   sleeping.
pub struct ImmutableResource<T, E, C = MonotonicClock> {
    fetch: Fetch<T, E>,
    value: OnceLock<Arc<T>>,
    state: Mutex<FetchState<E>>,
    /// Notified at the end of every fetch, however it ended.
    fetched: Condvar,
    retry_interval: Duration,
    clock: C,
}

struct FetchState<E> {
    /// A caller is running `fetch`.
    fetching: bool,
    /// Bumped at the end of every fetch, so waiters can tell "it ended" from a spurious
    /// wake-up.
    round: u64,
    /// The last fetch's error and when it returned; cleared by a success or a panic.
    error: Option<(Arc<E>, Nanos)>,
    /// Callers blocked in `get` on the running fetch.
    waiting: usize,
}

impl<T, E> ImmutableResource<T, E, MonotonicClock> {
    /// A resource that `fetch` will produce on the first [`get`](Self::get). Failures are
    /// retried at most once a second; see [`retry_interval`](Self::retry_interval).
    pub fn new<F>(fetch: F) -> ImmutableResource<T, E, MonotonicClock>
    where
        F: Fn() -> Result<T, E> + Send + Sync + 'static,
    {
        ImmutableResource {
            fetch: Box::new(fetch),
            value: OnceLock::new(),
            state: Mutex::new(FetchState {
                fetching: false,
                round: 0,
                error: None,
                waiting: 0,
            }),
            fetched: Condvar::new(),
            retry_interval: Duration::from_secs(1),
            clock: MonotonicClock::new(),
        }
    }
}

impl<T, E, C: Clock> ImmutableResource<T, E, C> {
    /// How long a failed fetch's error is returned before the next `get` fetches again
    /// (go-zero's `WithRefreshIntervalOnFailure`; default 1 s). Zero retries on every `get`.
    #[must_use]
    pub fn retry_interval(mut self, interval: Duration) -> ImmutableResource<T, E, C> {
        self.retry_interval = interval;
        self
    }

    /// Measures the retry interval with `clock` (a
    /// [`ManualClock`](keel_timex::ManualClock) in tests).
    #[must_use]
    pub fn clock<C2: Clock>(self, clock: C2) -> ImmutableResource<T, E, C2> {
        ImmutableResource {
            fetch: self.fetch,
            value: self.value,
            state: self.state,
            fetched: self.fetched,
            retry_interval: self.retry_interval,
            clock,
        }
    }

    /// The value, fetching it first if no fetch has succeeded yet.
    ///
    /// Returns the cached error while a failure is younger than the retry interval, and the
    /// shared result of a fetch that another caller ran while this one waited.
    ///
    /// # Panics
    ///
    /// If this caller runs `fetch` and it panics, the panic propagates (and the resource
    /// stays unfetched).
    #[inline]
    pub fn get(&self) -> Result<Arc<T>, Arc<E>> {
        match self.value.get() {
            Some(value) => Ok(Arc::clone(value)),
            None => self.get_slow(),
        }
    }

    /// The value if a fetch has succeeded; never fetches.
    pub fn peek(&self) -> Option<Arc<T>> {
        self.value.get().cloned()
    }

    /// How many callers are blocked in [`get`](Self::get) waiting for the fetch another
    /// caller is running now (a snapshot): they will share its result (or, if it panics, fetch
    /// themselves). For metrics and for tests that must know their getters have joined a
    /// fetch.
    pub fn waiting(&self) -> usize {
        lock(&self.state).waiting
    }

    #[cold]
    fn get_slow(&self) -> Result<Arc<T>, Arc<E>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(value) = self.value.get() {
                return Ok(Arc::clone(value));
            }
            if state.fetching {
                let round = state.round;
                state.waiting += 1;
                state = wait(&self.fetched, state);
                state.waiting -= 1;
                if state.round != round {
                    // A fetch ended while we waited: share its result. After a panic neither
                    // is set, and we loop to fetch ourselves.
                    if let Some(value) = self.value.get() {
                        return Ok(Arc::clone(value));
                    }
                    if let Some((error, _)) = &state.error {
                        return Err(Arc::clone(error));
                    }
                }
                continue;
            }
            if let Some((error, at)) = &state.error
                && self.clock.now() < *at + self.retry_interval
            {
                return Err(Arc::clone(error));
            }
            break;
        }
        state.fetching = true;
        drop(state);

        let on_panic = EndOnPanic(self);
        let result = (self.fetch)();
        let now = self.clock.now();
        std::mem::forget(on_panic);

        let mut state = lock(&self.state);
        state.fetching = false;
        state.round = state.round.wrapping_add(1);
        let result = match result {
            Ok(value) => {
                let value = Arc::new(value);
                state.error = None;
                // Only the one fetching caller sets it, once: this cannot fail.
                let _ = self.value.set(Arc::clone(&value));
                Ok(value)
            }
            Err(error) => {
                let error = Arc::new(error);
                state.error = Some((Arc::clone(&error), now));
                Err(error)
            }
        };
        drop(state);
        self.fetched.notify_all();
        result
    }
}

/// Ends a fetch that unwinds: unfetched, no error cached, waiters woken to fetch themselves.
struct EndOnPanic<'a, T, E, C>(&'a ImmutableResource<T, E, C>);

impl<T, E, C> Drop for EndOnPanic<'_, T, E, C> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.fetching = false;
        state.round = state.round.wrapping_add(1);
        state.error = None;
        drop(state);
        self.0.fetched.notify_all();
    }
}

impl<T, E, C> fmt::Debug for ImmutableResource<T, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImmutableResource")
            .field("fetched", &self.value.get().is_some())
            .field("retry_interval", &self.retry_interval)
            .finish_non_exhaustive()
    }
}
