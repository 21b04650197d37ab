//! Coalescing of concurrent calls: while a call for a key is in flight, further calls for the
//! same key wait for it and share its result instead of running their own (go-zero's
//! `SingleFlight`). The typical use is cache-stampede protection: when a hot entry expires,
//! one caller reloads it and the others get that load's value.
//!
//! Results are shared only among *concurrent* callers: once a flight ends its key is free,
//! and nothing is cached. Put a cache in front for that.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Barrier;
//! use keel_syncx::singleflight::SingleFlight;
//!
//! let flights: SingleFlight<String, String, std::io::Error> = SingleFlight::new();
//! let loads = AtomicUsize::new(0);
//! let barrier = Barrier::new(8);
//! std::thread::scope(|s| {
//!     for _ in 0..8 {
//!         s.spawn(|| {
//!             barrier.wait();
//!             let profile = flights.run("user:42".to_string(), || {
//!                 loads.fetch_add(1, Ordering::Relaxed);
//!                 std::thread::sleep(std::time::Duration::from_millis(20)); // the slow load
//!                 Ok("alice".to_string())
//!             });
//!             assert_eq!(profile.unwrap(), "alice");
//!         });
//!     }
//! });
//! // Usually 1; more only if a thread arrived after an earlier load had finished.
//! assert!(loads.load(Ordering::Relaxed) >= 1);
//! assert_eq!(flights.in_flight(), 0);
//! ```
//!
//! The same value serves async callers through [`SingleFlight::run_async`], on any runtime
//! (the waiting state holds the followers' wakers; no runtime is needed), and sync and async
//! callers of one key may mix:
//!
//! ```
//! use std::sync::Arc;
//! use keel_syncx::singleflight::SingleFlight;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let flights: Arc<SingleFlight<u64, Arc<str>, std::io::Error>> = Arc::default();
//! let tasks: Vec<_> = (0..10)
//!     .map(|_| {
//!         let flights = Arc::clone(&flights);
//!         tokio::spawn(async move {
//!             flights.run_async(7, || async { Ok(Arc::from("seven")) }).await
//!         })
//!     })
//!     .collect();
//! for task in tasks {
//!     assert_eq!(&*task.await.unwrap().unwrap(), "seven");
//! }
//! # });
//! ```
//!
//! # Differences from go-zero
//!
//! - **Errors are shared through an `Arc`:** every caller of a failed flight
//!   gets [`FlightError::Failed`] with the leader's error, so `E` need not be `Clone`. Values
//!   are cloned to each follower; make `V` cheap to clone (an `Arc<T>`) when it is large.
//! - **A panic is not a zero value.** go-zero's followers get `(nil, nil)` when the leader
//!   panics. Here they get [`FlightError::LeaderPanicked`], the leader's caller gets the
//!   panic itself, and the key is freed, so the next call runs the closure again.
//! - **Cancellation hands over** (async only, Go has no equivalent): if the leader's future is
//!   dropped before it finishes, one of the followers waiting at that moment takes over and
//!   runs *its own* closure, and the other followers wait for that one. With nobody waiting,
//!   the key is simply freed. A dropped follower just leaves. No caller is ever left waiting
//!   on a flight nobody runs.
//! - `DoEx`'s `fresh` flag is the `bool` of [`SingleFlight::run_ex`]: true for the caller
//!   whose closure produced the result (the leader, or the follower that took over).
//!
//! # Implementation
//!
//! The keys in flight sit in 16 hash tables (a shard per key hash), each behind its own
//! mutex. A leader that nobody joins inserts its key, runs, and removes the key: two short
//! critical sections and no allocation. The state followers wait on (outcome, condition
//! variable, wakers) is allocated by the first follower and published to by the leader when
//! it ends. The outcome is written once and read without a lock: the followers a leader wakes
//! all at once do not queue on a lock to read it.

mod call;
mod error;
mod shards;

#[cfg(all(test, loom))]
mod loom_tests;

use std::fmt;
use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::pin::pin;
use std::task::{Poll, Waker};

use call::{Call, Follower, Leader, Wait};
pub use error::FlightError;
use shards::{Found, Shards};

use crate::metrics::SingleFlightMetrics;
use crate::sync::{Arc, lock};

/// Runs a closure once per key among concurrent callers and shares its result.
///
/// The first caller for a key (the *leader*) runs its closure; callers arriving while it
/// runs (the *followers*) wait and get a clone of its value, or its error shared through
/// [`FlightError::Failed`]. When the flight ends the key is free again.
///
/// `K` is the key (`Hash + Eq`), `V` the value (`Clone`), `E` the closure's error. A
/// `SingleFlight` is `Send + Sync` when `K` and `V` are `Send` and `E` is `Send + Sync`:
/// share it by reference (`std::thread::scope`) or in an `Arc`.
///
/// A closure must not call into the same key's flight (it would wait for itself, forever,
/// as in go-zero); other keys are fine.
///
/// See the [module docs](self) for examples, the differences from go-zero and how a
/// cancelled async leader is replaced.
pub struct SingleFlight<K, V, E> {
    shards: Shards<K, V, E>,
    metrics: SingleFlightMetrics,
    name: Box<str>,
}

/// The name of a group built without one.
const DEFAULT_NAME: &str = "singleflight";

/// # Constructors and inspection
impl<K, V, E> SingleFlight<K, V, E> {
    /// An empty group: no key in flight. Its name is `"singleflight"`.
    #[must_use]
    pub fn new() -> Self {
        Self::with_name(DEFAULT_NAME)
    }

    /// An empty group named `name`: with feature `metrics`, its calls are counted as
    /// `keel_singleflight_calls_total{name}` (see the [crate docs](crate#metrics)).
    ///
    /// ```
    /// use keel_syncx::singleflight::SingleFlight;
    ///
    /// let profiles: SingleFlight<u64, String, std::io::Error> = SingleFlight::with_name("profiles");
    /// assert_eq!(profiles.name(), "profiles");
    /// assert_eq!(profiles.run(7, || Ok("ada".to_string())).unwrap(), "ada");
    /// ```
    #[must_use]
    pub fn with_name(name: impl Into<String>) -> Self {
        let name: Box<str> = name.into().into_boxed_str();
        Self {
            shards: Shards::new(),
            metrics: SingleFlightMetrics::new(&name),
            name,
        }
    }

    /// An empty group that records no metrics, whatever the features: for a group inside
    /// another primitive that counts what it does itself (keel-collection's cache counts its
    /// loads as `keel_cache_loads_total`, not as singleflight calls). Its name is
    /// `"singleflight"`.
    ///
    /// ```
    /// use keel_syncx::singleflight::SingleFlight;
    ///
    /// let loads: SingleFlight<u64, u64, ()> = SingleFlight::without_metrics();
    /// assert_eq!(loads.run(1, || Ok(10)), Ok(10));
    /// ```
    #[must_use]
    pub fn without_metrics() -> Self {
        Self {
            shards: Shards::new(),
            metrics: SingleFlightMetrics::none(),
            name: DEFAULT_NAME.into(),
        }
    }

    /// The group's name: given to [`with_name`](Self::with_name), else `"singleflight"`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of keys in flight now: a flight counts from the moment its leader starts
    /// until its result is handed out.
    ///
    /// Each shard is read under its own lock, so under concurrent use this is an estimate.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shards.len()
    }

    /// The callers waiting on `key`'s flight now (followers, not its leader); 0 if `key` is
    /// not in flight. For metrics ("how much load did coalescing absorb") and for tests that
    /// must know their followers have joined.
    #[must_use]
    pub fn waiting(&self, key: &K) -> usize
    where
        K: Hash + Eq,
    {
        let hash = self.shards.hash(key);
        lock(self.shards.shard(hash)).waiting(hash, key)
    }
}

/// # Coalesced calls
impl<K: Hash + Eq, V: Clone, E> SingleFlight<K, V, E> {
    /// Runs `f` for `key` unless a call for `key` is in flight, in which case it waits for
    /// that call (blocking the thread) and returns a clone of its result.
    ///
    /// # Errors
    ///
    /// - [`FlightError::Failed`] with `f`'s error, or with the error of the flight joined.
    /// - [`FlightError::LeaderPanicked`] if the flight joined panicked.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic propagates to this caller, after the callers waiting on it
    /// were given [`FlightError::LeaderPanicked`] and the key was freed.
    ///
    /// # Examples
    ///
    /// ```
    /// use keel_syncx::singleflight::{FlightError, SingleFlight};
    ///
    /// let flights: SingleFlight<&str, u32, String> = SingleFlight::new();
    /// assert_eq!(flights.run("a", || Ok(1)).unwrap(), 1);
    /// let error = flights.run("a", || Err("down".to_string())).unwrap_err();
    /// assert!(matches!(error, FlightError::Failed(e) if *e == "down"));
    /// ```
    pub fn run<F>(&self, key: K, f: F) -> Result<V, FlightError<E>>
    where
        F: FnOnce() -> Result<V, E>,
    {
        self.run_ex(key, f).0
    }

    /// [`run`](Self::run), also telling whether this caller's `f` produced the result
    /// (go-zero's `DoEx` `fresh`): true for the leader, false for the callers that joined it.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Panics
    ///
    /// As [`run`](Self::run).
    pub fn run_ex<F>(&self, key: K, f: F) -> (Result<V, FlightError<E>>, bool)
    where
        F: FnOnce() -> Result<V, E>,
    {
        let mut leader = match self.join(key, None) {
            Joined::Leader(leader) => leader,
            Joined::Follower(follower) => match follower.wait() {
                Wait::Done(result) => {
                    self.metrics.follower();
                    return (result, false);
                }
                Wait::Lead(leader) => leader,
            },
        };
        self.metrics.leader();
        leader.running = true;
        let result = f();
        (leader.finish(result), true)
    }

    /// The async [`run`](Self::run): runs the future `f` makes for `key`, or waits for the
    /// call in flight for `key` without blocking the thread. Runtime-agnostic.
    ///
    /// Nothing happens until the returned future is first polled.
    ///
    /// # Cancellation
    ///
    /// Dropping the future of a follower just unregisters it. Dropping the leader's future
    /// before it completes hands the flight over: one of the followers waiting at that moment
    /// runs its own `f` and the others wait for it (if none waits, the key is freed). A
    /// follower that took over is a leader like any other.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Panics
    ///
    /// If `f` or its future panics, the panic propagates out of this future's `poll`, after
    /// the followers were given [`FlightError::LeaderPanicked`] and the key was freed.
    pub async fn run_async<F, Fut>(&self, key: K, f: F) -> Result<V, FlightError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.run_ex_async(key, f).await.0
    }

    /// The async [`run_ex`](Self::run_ex): [`run_async`](Self::run_async), also telling
    /// whether this caller's `f` produced the result.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Panics
    ///
    /// As [`run_async`](Self::run_async).
    pub async fn run_ex_async<F, Fut>(&self, key: K, f: F) -> (Result<V, FlightError<E>>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // Joined inside a poll: a follower stores its waker while it registers (one visit to
        // the flight's lock, not two) and is suspended at once.
        let mut key = Some(key);
        let joined = poll_fn(|cx| match key.take() {
            Some(key) => Poll::Ready(self.join(key, Some(cx.waker()))),
            None => unreachable!("ready at its first poll"),
        })
        .await;
        let mut leader = match joined {
            Joined::Leader(leader) => leader,
            Joined::Follower(mut follower) => match poll_fn(|cx| follower.poll_wait(cx)).await {
                Wait::Done(result) => {
                    self.metrics.follower();
                    return (result, false);
                }
                Wait::Lead(leader) => leader,
            },
        };
        self.metrics.leader();
        // `running` brackets the user's code, so the leader's drop can tell a panic in it
        // (unwinding) from a cancellation (dropped between polls).
        leader.running = true;
        let mut future = pin!(f());
        leader.running = false;
        let result = poll_fn(|cx| {
            leader.running = true;
            let poll = future.as_mut().poll(cx);
            leader.running = false;
            poll
        })
        .await;
        (leader.finish(result), true)
    }

    /// Leads a new flight for `key`, or joins the one in flight; an async follower's `waker`
    /// is stored as it registers.
    fn join(&self, key: K, waker: Option<&Waker>) -> Joined<'_, K, V, E> {
        let hash = self.shards.hash(&key);
        let mut shard = lock(self.shards.shard(hash));
        match shard.find_or_insert(hash, key) {
            Found::Inserted(id) => Joined::Leader(Leader::new(&self.shards, hash, id)),
            Found::Existing(slot) => {
                let call = slot.call.get_or_insert_with(|| Arc::new(Call::new()));
                // Registered under the shard lock: a leader leaving sees this follower.
                let waker = call.register(waker);
                let call = Arc::clone(call);
                Joined::Follower(Follower::new(&self.shards, hash, slot.id(), call, waker))
            }
        }
    }
}

/// Where [`SingleFlight::join`] put the caller.
enum Joined<'a, K, V, E> {
    Leader(Leader<'a, K, V, E>),
    Follower(Follower<'a, K, V, E>),
}

impl<K, V, E> Default for SingleFlight<K, V, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, E> fmt::Debug for SingleFlight<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("name", &self.name)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
