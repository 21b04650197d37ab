//! [`Limit`]: a counting limit with RAII permits, taken at once, blocking, with a timeout or
//! asynchronously (go-zero's `Limit` and `TimeoutLimit` in one type).
//!
//! ```
//! use keel_syncx::limit::Limit;
//! use std::time::Duration;
//!
//! let limit = Limit::new(2)?;
//! let a = limit.try_acquire().expect("2 free");
//! let b = limit.acquire(); // blocks only while none is free
//! assert!(limit.try_acquire().is_none());
//! assert!(limit.acquire_timeout(Duration::from_millis(1)).is_err());
//!
//! drop(a); // the permit goes back when dropped; it cannot go back twice
//! assert_eq!(limit.available(), 1);
//! # drop(b);
//! # Ok::<(), keel_syncx::limit::ConfigError>(())
//! ```
//!
//! Asynchronously, on any executor (the waker is queued in the limit; no runtime needed):
//!
//! ```
//! use keel_syncx::limit::Limit;
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! let limit = Limit::new(1)?;
//! block_on(async {
//!     let permit = limit.acquire_async().await;
//!     assert_eq!(limit.available(), 0);
//!     drop(permit);
//! });
//! assert_eq!(limit.available(), 1);
//! # Ok::<(), keel_syncx::limit::ConfigError>(())
//! ```
//!
//! # Differences from go-zero
//!
//! - **Permits are RAII guards.** go-zero's `Return()` can be called too often and answers
//!   `ErrLimitReturn`; here a [`Permit`] goes back when dropped, exactly once, also when the
//!   holder panics. There is no return method and so no such error.
//! - **No lost wake-ups.** go-zero's `TimeoutLimit` signals a `Cond` whose `Signal` is lost
//!   when nobody is waiting yet, so a borrower that has failed `TryBorrow` but not yet started
//!   to wait can sleep its whole timeout while a token is free. Here a waiter is queued under
//!   the limit's lock before it sleeps, and a release hands its permit to the oldest queued
//!   waiter directly.
//! - **FIFO among waiters, no queue jumping.** While waiters are queued, a released permit goes
//!   to the oldest of them, and [`try_acquire`](Limit::try_acquire) answers `None` rather than
//!   take a permit promised to a waiter. (A Go channel does not promise that.)
//! - **Typed errors:** a capacity of zero is a [`ConfigError`] (go-zero's channel of capacity
//!   0 would block forever), a timeout is [`Timeout`].
//! - **Async and cancel-safe:** [`acquire_async`](Limit::acquire_async) needs no runtime;
//!   dropping its future gives back a permit it had already been handed, so cancellation
//!   (`select!`, `timeout`) never leaks one.
//!
//! # Cost
//!
//! Taking and giving back a permit when nobody waits is one compare-and-swap and one
//! `fetch_add` on one atomic word; the lock is touched only when the word's waiter flag says
//! that someone is queued.

mod acquire;
mod error;
mod permit;
pub(crate) mod queue;

#[cfg(all(test, loom))]
mod loom_tests;

use std::fmt;
use std::time::{Duration, Instant};

pub use acquire::Acquire;
pub use error::{ConfigError, Timeout};
pub use permit::{OwnedPermit, Permit};

use crate::metrics::LimitMetrics;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, lock, wait, wait_timeout};
use queue::WaitQueue;

/// Set in [`Inner::state`] while at least one waiter is queued.
const QUEUED: usize = 1;
/// One permit in [`Inner::state`] (the count sits above the flag bit).
const ONE: usize = 2;

/// The name of a limit built without one.
const DEFAULT_NAME: &str = "limit";

/// A counting limit: at most [`capacity`](Limit::capacity) [`Permit`]s are out at once.
///
/// Clones share one pool of permits. A permit goes back when it is dropped. Ways to take one:
///
/// | method | when none is free |
/// |---|---|
/// | [`try_acquire`](Limit::try_acquire), [`try_acquire_owned`](Limit::try_acquire_owned) | `None` |
/// | [`acquire`](Limit::acquire) | blocks the thread |
/// | [`acquire_timeout`](Limit::acquire_timeout) | blocks at most that long, then [`Timeout`] |
/// | [`acquire_async`](Limit::acquire_async) | waits without blocking, on any executor |
/// | `acquire_timeout_async` (feature `tokio`) | waits at most that long (tokio's timer) |
///
/// # Fairness
///
/// Blocked threads and waiting tasks are served in arrival order: a permit given back while
/// some are queued goes to the oldest. A `try_acquire` does not jump that queue.
///
/// # Differences from go-zero
///
/// See the [module documentation](self#differences-from-go-zero): RAII permits instead of
/// `Return()` and `ErrLimitReturn`, no lost wake-ups, a typed [`ConfigError`] for a zero
/// capacity, and async acquisition that survives cancellation.
#[derive(Clone)]
pub struct Limit {
    pub(super) inner: Arc<Inner>,
}

/// The state all clones share.
///
/// # Ground rules
///
/// `state` holds `permits * ONE | QUEUED`. The permit count changes by compare-and-swap
/// (take) or `fetch_add` (give back) anywhere; the `QUEUED` flag changes only under the
/// `queue` lock, and it is set exactly while the queue is not empty. A release reads the flag
/// in the same read-modify-write that adds its permit, so it cannot miss a waiter that queued
/// before it, and a waiter that queues after it sees its permit in the word: no lost wake-up,
/// and no `SeqCst` store-load pair to get right.
pub(crate) struct Inner {
    state: AtomicUsize,
    capacity: usize,
    queue: Mutex<WaitQueue>,
    name: Box<str>,
    /// `in_use` moves where a permit leaves or re-enters `state`'s count, so it equals
    /// `capacity - available` whenever no acquisition or release is under way.
    pub(crate) metrics: LimitMetrics,
}

/// The outcome of [`Inner::take_or_queue`].
enum Queued<T> {
    /// A permit was free and is now the caller's.
    Taken,
    /// The caller is queued with this ticket.
    Waiting(T),
}

impl Limit {
    /// The largest capacity: the permit count shares its word with one flag bit.
    pub const MAX_CAPACITY: usize = usize::MAX / ONE;

    /// A limit of `capacity` permits, all free.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for 0, [`ConfigError::CapacityTooLarge`] above
    /// [`MAX_CAPACITY`](Limit::MAX_CAPACITY).
    pub fn new(capacity: usize) -> Result<Limit, ConfigError> {
        Limit::with_name(capacity, DEFAULT_NAME)
    }

    /// A limit of `capacity` permits named `name`: with feature `metrics`, its acquisitions
    /// are counted as `keel_limit_acquires_total{name}` and its permits held shown as
    /// `keel_limit_in_use{name}` (see the [crate docs](crate#metrics)). [`new`](Limit::new)
    /// names it `"limit"`.
    ///
    /// # Errors
    ///
    /// As [`new`](Limit::new).
    ///
    /// ```
    /// use keel_syncx::limit::Limit;
    ///
    /// let uploads = Limit::with_name(4, "uploads")?;
    /// assert_eq!(uploads.name(), "uploads");
    /// assert_eq!(uploads.capacity(), 4);
    /// # Ok::<(), keel_syncx::limit::ConfigError>(())
    /// ```
    pub fn with_name(capacity: usize, name: impl Into<String>) -> Result<Limit, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if capacity > Limit::MAX_CAPACITY {
            return Err(ConfigError::CapacityTooLarge { capacity });
        }
        let name: Box<str> = name.into().into_boxed_str();
        Ok(Limit {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(capacity * ONE),
                capacity,
                queue: Mutex::new(WaitQueue::default()),
                metrics: LimitMetrics::new(&name),
                name,
            }),
        })
    }

    /// The limit's name: given to [`with_name`](Limit::with_name), else `"limit"`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many permits there are in all.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// How many permits are free now (a snapshot: other threads may change it at once).
    pub fn available(&self) -> usize {
        self.inner.state.load(Ordering::Acquire) / ONE
    }

    /// How many threads and tasks are queued for a permit now (a snapshot).
    pub fn waiting(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    /// Takes a permit if one is free and nobody is queued for it, without waiting
    /// (go-zero's `TryBorrow`).
    ///
    /// ```
    /// # use keel_syncx::limit::Limit;
    /// let limit = Limit::new(1)?;
    /// let permit = limit.try_acquire();
    /// assert!(permit.is_some());
    /// assert!(limit.try_acquire().is_none());
    /// # Ok::<(), keel_syncx::limit::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.inner.try_acquire().then(|| Permit::new(self))
    }

    /// Like [`try_acquire`](Limit::try_acquire), but the permit holds a handle on the limit
    /// and can move into a thread or a spawned task.
    ///
    /// ```
    /// # use keel_syncx::limit::Limit;
    /// let limit = Limit::new(1)?;
    /// let permit = limit.try_acquire_owned().unwrap();
    /// std::thread::spawn(move || drop(permit)).join().unwrap();
    /// assert_eq!(limit.available(), 1);
    /// # Ok::<(), keel_syncx::limit::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire_owned(&self) -> Option<OwnedPermit> {
        self.inner
            .try_acquire()
            .then(|| OwnedPermit::new(self.clone()))
    }

    /// Takes a permit, blocking the thread until one is free (go-zero's `Borrow`).
    ///
    /// Not for async code: it blocks the executor's thread. Use
    /// [`acquire_async`](Limit::acquire_async) there.
    pub fn acquire(&self) -> Permit<'_> {
        if !self.inner.try_take() {
            let taken = self.inner.acquire_slow(None);
            debug_assert!(taken, "a wait without a deadline only ends with a permit");
        }
        self.inner.metrics.acquired();
        Permit::new(self)
    }

    /// Takes a permit, blocking the thread at most `timeout` (go-zero's
    /// `TimeoutLimit.Borrow(timeout)`). A zero timeout is a [`try_acquire`](Limit::try_acquire).
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no permit came in time. A permit handed over just as the timeout
    /// expires is kept and returned, not dropped.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Permit<'_>, Timeout> {
        let metrics = &self.inner.metrics;
        if self.inner.try_take() {
            metrics.acquired();
            return Ok(Permit::new(self));
        }
        if timeout.is_zero() {
            metrics.timeout();
            return Err(Timeout::new());
        }
        // A deadline too far to represent is no deadline.
        let deadline = Instant::now().checked_add(timeout);
        if self.inner.acquire_slow(deadline) {
            metrics.acquired();
            Ok(Permit::new(self))
        } else {
            metrics.timeout();
            Err(Timeout::new())
        }
    }

    /// A future that resolves to a permit once one is free.
    ///
    /// It needs no runtime: the task's waker waits in the limit's queue. It is cancel-safe:
    /// dropping the future unqueues it, and gives back a permit that had already been handed
    /// to it, so no permit is lost (the next waiter gets it).
    pub fn acquire_async(&self) -> Acquire<'_> {
        Acquire::new(self)
    }

    /// Like [`acquire_async`](Limit::acquire_async), but gives up after `timeout` (tokio's
    /// timer: call it inside a tokio runtime with time enabled).
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no permit came in time.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn acquire_timeout_async(&self, timeout: Duration) -> Result<Permit<'_>, Timeout> {
        // The `Acquire` future counts the permit it resolves to.
        tokio::time::timeout(timeout, self.acquire_async())
            .await
            .map_err(|_| {
                self.inner.metrics.timeout();
                Timeout::new()
            })
    }
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}

impl Inner {
    /// [`try_take`](Inner::try_take) for `try_acquire*`, counted as acquired or rejected.
    #[inline]
    fn try_acquire(&self) -> bool {
        let taken = self.try_take();
        if taken {
            self.metrics.acquired();
        } else {
            self.metrics.rejected();
        }
        taken
    }

    /// Takes a permit if one is free and nobody is queued.
    #[inline]
    fn try_take(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state < ONE || state & QUEUED != 0 {
                return false;
            }
            // Acquire pairs with the Release of the `fetch_add` that gave this permit back,
            // so whatever its last holder did is visible to the new one.
            match self.state.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.metrics.taken();
                    return true;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Gives a permit back; hands it to the oldest waiter if the word says one is queued.
    #[inline]
    pub(crate) fn release(&self) {
        // Release: the next holder sees what this one did. The same read-modify-write reads the
        // QUEUED flag, so a waiter queued before this point cannot be missed.
        let previous = self.state.fetch_add(ONE, Ordering::Release);
        self.metrics.given_back();
        if previous & QUEUED != 0 {
            self.hand_over();
        }
    }

    /// The release slow path: under the lock, moves one free permit to the oldest waiter.
    #[cold]
    fn hand_over(&self) {
        let wake = {
            let mut queue = lock(&self.queue);
            if queue.is_empty() {
                // The waiter this release saw gave up (timeout, dropped future) in between.
                return;
            }
            let mut state = self.state.load(Ordering::Acquire);
            loop {
                if state < ONE {
                    // Another release handed this count over already (each release hands over
                    // at most one, and both added one).
                    return;
                }
                let last = queue.len() == 1;
                let next = state - ONE - if last { QUEUED } else { 0 };
                match self
                    .state
                    .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => break,
                    Err(actual) => state = actual,
                }
            }
            self.metrics.taken();
            queue.pop_first()
        };
        if let Some(wake) = wake {
            wake.wake();
        }
    }

    /// Under the queue lock: takes a free permit if nobody is queued ahead, or else sets the
    /// QUEUED flag and queues the caller through `register`.
    fn take_or_queue<T>(
        &self,
        queue: &mut WaitQueue,
        register: impl FnOnce(&mut WaitQueue) -> T,
    ) -> Queued<T> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = if state >= ONE && state & QUEUED == 0 {
                state - ONE
            } else if state & QUEUED == 0 {
                state | QUEUED
            } else {
                // Already flagged: nothing to write; the lock keeps the flag set.
                return Queued::Waiting(register(queue));
            };
            match self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next < state => {
                    self.metrics.taken();
                    return Queued::Taken;
                }
                Ok(_) => return Queued::Waiting(register(queue)),
                Err(actual) => state = actual,
            }
        }
    }

    /// Under the queue lock: takes waiter `id` out of the queue, clearing the flag if it was the
    /// last. False if it was no longer queued: a permit was handed to it.
    fn unqueue(&self, queue: &mut WaitQueue, id: u64) -> bool {
        if !queue.remove(id) {
            return false;
        }
        if queue.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::AcqRel);
        }
        true
    }

    /// The blocking slow path: queue, sleep until handed a permit or past `deadline` (`None`:
    /// none). True with a permit.
    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        let mut queue = lock(&self.queue);
        let (id, condvar) = match self.take_or_queue(&mut queue, WaitQueue::register_thread) {
            Queued::Taken => return true,
            Queued::Waiting(ticket) => ticket,
        };
        loop {
            queue = match deadline {
                None => wait(&condvar, queue),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Handed a permit at the last moment: keep it.
                        return !self.unqueue(&mut queue, id);
                    }
                    wait_timeout(&condvar, queue, deadline - now).0
                }
            };
            if !queue.is_queued(id) {
                return true;
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn zero_and_huge_capacities_are_refused() {
        assert_eq!(Limit::new(0).unwrap_err(), ConfigError::ZeroCapacity);
        assert!(matches!(
            Limit::new(usize::MAX),
            Err(ConfigError::CapacityTooLarge { .. })
        ));
        let max = Limit::new(Limit::MAX_CAPACITY).unwrap();
        assert_eq!(max.available(), Limit::MAX_CAPACITY);
        drop(max.try_acquire().unwrap());
        assert_eq!(max.available(), Limit::MAX_CAPACITY);
    }

    #[test]
    fn the_flag_tracks_the_queue() {
        let limit = Limit::new(1).unwrap();
        let held = limit.try_acquire().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| drop(limit.acquire()));
            while limit.waiting() == 0 {
                std::thread::yield_now();
            }
            assert_eq!(limit.inner.state.load(Ordering::Acquire), QUEUED);
            drop(held);
            waiter.join().unwrap();
        });
        assert_eq!(limit.inner.state.load(Ordering::Acquire), ONE);
    }
}
