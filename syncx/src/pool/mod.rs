//! [`Pool`]: a bounded object pool with LIFO reuse, an optional max idle age and a custom
//! destructor (go-zero's `Pool` with `WithMaxAge`), sync and async.
//!
//! ```
//! use keel_syncx::pool::Pool;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! static OPENED: AtomicU32 = AtomicU32::new(0);
//! // A fallible factory, like opening a connection.
//! let pool = Pool::builder(2, || {
//!     Ok::<_, std::io::Error>(format!("conn-{}", OPENED.fetch_add(1, Ordering::Relaxed)))
//! })
//! .max_age(Duration::from_secs(30))
//! .build()?;
//!
//! let conn = pool.get()?; // blocks only while 2 objects are out
//! assert_eq!(*conn, "conn-0");
//! drop(conn); // back to the pool
//! assert_eq!(*pool.get()?, "conn-0"); // the most recently returned is reused
//!
//! let broken = pool.get()?;
//! broken.discard(); // destroyed instead of returned
//! assert_eq!(*pool.get()?, "conn-1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Asynchronously, on any executor (the waker is queued in the pool; no runtime needed):
//!
//! ```
//! use keel_syncx::pool::Pool;
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! let pool = Pool::builder(1, || Ok::<_, std::io::Error>(vec![0u8; 16])).build()?;
//! block_on(async {
//!     let mut buffer = pool.get_async().await?;
//!     buffer[0] = 1;
//!     Ok::<_, keel_syncx::pool::PoolError<std::io::Error>>(())
//! })?;
//! assert_eq!(pool.idle(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from go-zero
//!
//! - **RAII objects.** go-zero's `Put` takes anything (and ignores nil); here a [`Pooled`]
//!   returns itself when dropped, so an object cannot be returned twice or to the wrong pool,
//!   and [`discard`](Pooled::discard) / [`detach`](Pooled::detach) free its slot explicitly.
//! - **Fallible factory.** `create` returns a `Result` ([`PoolError::Create`]); if it fails or
//!   panics, the slot reserved for it is freed and a waiter is woken. In go-zero a panicking
//!   `create` leaves its slot counted forever.
//! - **Destroy outside the lock.** go-zero destroys expired objects while holding the pool's
//!   lock, so a slow close stalls every `Get`/`Put`. Here `destroy` runs after the lock is
//!   released; the object's slot stays counted until it has finished, so at most `max_size`
//!   objects exist at any time, counting the ones being created or destroyed.
//! - **Timeouts and async:** [`get_timeout`](Pool::get_timeout), [`try_get`](Pool::try_get),
//!   [`get_async`](Pool::get_async) (cancel-safe) and, with feature `tokio`,
//!   `get_timeout_async`.
//! - **No lost wake-ups, FIFO among waiters:** a returned object or freed slot wakes the
//!   oldest waiter; a waiter woken for nothing (another caller got there first) keeps its place
//!   in line, and a woken async waiter that is dropped passes its wake-up on.
//! - **Typed configuration errors** instead of a panic for `max_size` 0.
//! - **Idle objects are destroyed when the pool is dropped** (go-zero has no close).

mod builder;
mod error;
mod get;
mod pooled;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use builder::Builder;
pub use error::{ConfigError, PoolError};
pub use get::Get;
pub use pooled::Pooled;

use crossbeam_utils::CachePadded;
use keel_timex::{Clock, MonotonicClock, Nanos};
use pooled::Recycle;

use crate::limit::queue::{WaitQueue, Wake};
use crate::metrics::{PoolMetrics, WaitStart};
use crate::sync::{Mutex, MutexGuard, lock, wait, wait_timeout};

/// A pool's factory.
type Create<T, E> = Box<dyn Fn() -> Result<T, E> + Send + Sync>;
/// A pool's destructor.
type Destroy<T> = Box<dyn Fn(T) + Send + Sync>;

/// A bounded pool of reusable objects (connections, buffers, clients).
///
/// At most [`max_size`](Pool::max_size) objects exist at once. [`get`](Pool::get) hands out
/// the most recently returned idle object (LIFO, as go-zero: warm objects stay warm, and cold
/// ones age out), creates one if none is idle and there is room, or else waits for one to come
/// back. An idle object older than [`max_age`](Builder::max_age) since its last return is
/// destroyed instead of handed out.
///
/// Clones share one pool. The factory runs outside the pool's lock (so slow creation does not
/// stall returns), and so does `destroy`.
///
/// | method | when all `max_size` objects are out |
/// |---|---|
/// | [`try_get`](Pool::try_get) | `Ok(None)` |
/// | [`get`](Pool::get) | blocks the thread |
/// | [`get_timeout`](Pool::get_timeout) | blocks at most that long, then [`PoolError::Timeout`] |
/// | [`get_async`](Pool::get_async) | waits without blocking, on any executor |
/// | `get_timeout_async` (feature `tokio`) | waits at most that long (tokio's timer) |
///
/// Timeouts are real time; the [clock](Builder::clock) only ages idle objects.
///
/// # Differences from go-zero
///
/// See the [module documentation](self#differences-from-go-zero).
pub struct Pool<T, E, C = MonotonicClock> {
    inner: Arc<Inner<T, E, C>>,
    /// The same allocation as `inner`, as the trait object `Pooled` returns objects through.
    recycler: Arc<dyn Recycle<T>>,
}

/// What every clone of a pool shares.
///
/// # Ground rules
///
/// `size` counts every object that exists or is about to: idle, handed out, being created or
/// being destroyed. It goes up under the lock before `create` runs and down under the lock
/// after `destroy` has run, so it never undercounts. Every event that may let a waiter proceed
/// (an object returned, a slot freed) wakes one queued waiter per object or slot, after the lock
/// is released.
struct Inner<T, E, C> {
    max_size: usize,
    max_age: Option<Duration>,
    create: Create<T, E>,
    destroy: Option<Destroy<T>>,
    clock: C,
    /// On lines of its own, laid out so that a get or a put touches one line of it (the
    /// lock, the idle objects' vector, the size and the queue's length): on two threads
    /// that line is what moves between cores with the lock.
    state: CachePadded<Mutex<State<T>>>,
    name: Box<str>,
    /// The gauges are set under `state`'s lock, so they end on the pool's last state.
    metrics: PoolMetrics,
}

/// The pool's state under its lock. `repr(C)`: the fields a get or a put reads come first,
/// on the lock's line (see [`Inner::state`]).
#[repr(C)]
struct State<T> {
    /// Idle objects, the most recently returned last.
    idle: Vec<Idle<T>>,
    /// Objects idle, out, being created or being destroyed.
    size: usize,
    /// Threads and tasks waiting for an object or a slot.
    queue: WaitQueue,
}

/// An idle object and when it was returned (zero when there is no max age).
struct Idle<T> {
    value: T,
    returned_at: Nanos,
}

/// What a `get` found under the lock.
enum Step<T> {
    /// An idle object, fresh enough.
    Reuse(T),
    /// A slot is reserved for a new object.
    Create,
    /// Nothing idle and no room: wait.
    Wait,
}

/// Objects met expired during one `get`, to destroy outside the lock, and how many of their
/// slots to free afterwards (all, or all but the one reused for a new object).
struct Expired<T> {
    values: Vec<T>,
    slots: usize,
}

impl<T, E> Pool<T, E>
where
    T: Send + 'static,
    E: 'static,
{
    /// A builder for a pool of at most `max_size` objects made by `create`.
    ///
    /// `create` runs outside the pool's lock whenever nothing is idle and there is room. It
    /// may fail ([`PoolError::Create`]) or panic; either way its slot is freed again.
    pub fn builder(
        max_size: usize,
        create: impl Fn() -> Result<T, E> + Send + Sync + 'static,
    ) -> Builder<T, E> {
        Builder::new(max_size, Box::new(create))
    }
}

impl<T, E, C> Pool<T, E, C>
where
    T: Send + 'static,
    E: 'static,
    C: Clock,
{
    pub(super) fn from_parts(
        max_size: usize,
        create: Create<T, E>,
        destroy: Option<Destroy<T>>,
        max_age: Option<Duration>,
        name: String,
        clock: C,
    ) -> Pool<T, E, C> {
        let name = name.into_boxed_str();
        let inner = Arc::new(Inner {
            max_size,
            max_age,
            create,
            destroy,
            clock,
            metrics: PoolMetrics::new(&name),
            name,
            state: CachePadded::new(Mutex::new(State {
                idle: Vec::new(),
                size: 0,
                queue: WaitQueue::default(),
            })),
        });
        Pool {
            recycler: inner.clone(),
            inner,
        }
    }

    /// An object: the most recently returned idle one, or a new one if none is idle and there
    /// is room; otherwise blocks until one is returned or a slot is freed (go-zero's `Get`).
    ///
    /// Not for async code: it blocks the executor's thread. Use [`get_async`](Pool::get_async).
    ///
    /// # Errors
    ///
    /// [`PoolError::Create`] when the factory fails.
    pub fn get(&self) -> Result<Pooled<'_, T>, PoolError<E>> {
        self.get_until(None)
    }

    /// Like [`get`](Pool::get), but waits at most `timeout` for an object to come back.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] when none came in time, [`PoolError::Create`] when the factory
    /// fails.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Pooled<'_, T>, PoolError<E>> {
        // A deadline too far to represent is no deadline.
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.get_until(Some(deadline)),
            None => self.get_until(None),
        }
    }

    /// An object if one is idle or there is room for a new one; `Ok(None)` when all
    /// `max_size` are out. Never waits (the factory may still take its time).
    ///
    /// # Errors
    ///
    /// The factory's error.
    pub fn try_get(&self) -> Result<Option<Pooled<'_, T>>, E> {
        let mut expired = Expired::new();
        let step = {
            let mut state = lock(&self.inner.state);
            self.inner.step(&mut state, &mut expired)
        };
        match step {
            Step::Wait => {
                self.inner.metrics.rejected();
                Ok(None)
            }
            step => match self.finish(step, expired) {
                Ok(pooled) => Ok(Some(pooled)),
                Err(PoolError::Create(e)) => Err(e),
                Err(PoolError::Timeout) => unreachable!("finish never times out"),
            },
        }
    }

    /// A future that resolves like [`get`](Pool::get) without blocking a thread.
    ///
    /// It needs no runtime: the task's waker waits in the pool's queue. It is cancel-safe:
    /// dropping it leaves the queue, and a wake-up it had received but not used goes to the
    /// next waiter. The factory runs inside `poll` (it is synchronous).
    pub fn get_async(&self) -> Get<'_, T, E, C> {
        Get::new(self)
    }

    /// Like [`get_async`](Pool::get_async), but gives up after `timeout` (tokio's timer:
    /// call it inside a tokio runtime with time enabled).
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] when no object came in time, [`PoolError::Create`] when the
    /// factory fails.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn get_timeout_async(
        &self,
        timeout: Duration,
    ) -> Result<Pooled<'_, T>, PoolError<E>> {
        let mut get = self.get_async();
        match tokio::time::timeout(timeout, &mut get).await {
            Ok(result) => result,
            Err(_) => {
                // `get` records its wait when dropped.
                self.inner.metrics.timeout();
                Err(PoolError::Timeout)
            }
        }
    }

    /// The pool's name: given to [`Builder::name`], else `"pool"`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The most objects that exist at once.
    pub fn max_size(&self) -> usize {
        self.inner.max_size
    }

    /// How many objects are idle in the pool now (a snapshot), expired ones included until
    /// a `get` meets them.
    pub fn idle(&self) -> usize {
        lock(&self.inner.state).idle.len()
    }

    /// How many objects are handed out, being created or being destroyed now (a snapshot).
    pub fn in_use(&self) -> usize {
        let state = lock(&self.inner.state);
        state.size - state.idle.len()
    }

    /// How many objects exist now: [`idle`](Pool::idle) + [`in_use`](Pool::in_use).
    pub fn len(&self) -> usize {
        lock(&self.inner.state).size
    }

    /// Whether no object exists now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many threads and tasks are waiting for an object now (a snapshot).
    pub fn waiting(&self) -> usize {
        lock(&self.inner.state).queue.len()
    }

    /// The blocking `get`, with an optional deadline.
    #[inline]
    fn get_until(&self, deadline: Option<Instant>) -> Result<Pooled<'_, T>, PoolError<E>> {
        let inner = &*self.inner;
        let mut expired = Expired::new();
        // The usual case first, in a short function: an object idle or a slot free.
        let step = inner.step(&mut lock(&inner.state), &mut expired);
        match step {
            Step::Wait => self.wait_until(deadline, expired),
            step => self.finish(step, expired),
        }
    }

    /// [`get_until`](Pool::get_until) when nothing was idle and there was no room: looks
    /// again under the lock, then queues and waits.
    #[cold]
    #[inline(never)]
    fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut expired: Expired<T>,
    ) -> Result<Pooled<'_, T>, PoolError<E>> {
        let inner = &*self.inner;
        let mut state = lock(&inner.state);
        let mut ticket = None;
        // Set when this call first waits.
        let mut waited = None;
        loop {
            match inner.step(&mut state, &mut expired) {
                Step::Wait => {}
                step => {
                    drop(state);
                    if let Some(start) = waited {
                        inner.metrics.wait_end(&inner.clock, start);
                    }
                    return self.finish(step, expired);
                }
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                drop(state);
                inner.timed_out(waited);
                return Err(PoolError::Timeout);
            }
            let start = *waited.get_or_insert_with(|| inner.metrics.wait_start(&inner.clock));
            let (id, condvar) = match ticket.take() {
                None => state.queue.register_thread(),
                Some((id, condvar)) => {
                    state.queue.requeue_thread(id, &condvar);
                    (id, condvar)
                }
            };
            state = match wait_until_woken(state, id, &condvar, deadline) {
                Ok(state) => state,
                Err(timeout) => {
                    inner.timed_out(Some(start));
                    return Err(timeout);
                }
            };
            ticket = Some((id, condvar));
        }
    }

    /// Outside the lock: hands out the object, or creates one in the reserved slot, and
    /// destroys what expired.
    #[inline]
    fn finish(&self, step: Step<T>, expired: Expired<T>) -> Result<Pooled<'_, T>, PoolError<E>> {
        let inner = &*self.inner;
        match step {
            Step::Reuse(value) => {
                inner.metrics.reused();
                // Built before destroying, so a panicking destroy returns it to the pool.
                let pooled = Pooled::new(value, self.recycler());
                if !expired.is_empty() {
                    inner.destroy_expired(expired);
                }
                Ok(pooled)
            }
            step => self.create(step, expired),
        }
    }

    /// [`finish`](Pool::finish) with a reserved slot: runs the factory (out of line: the
    /// reuse above is the path that runs millions of times).
    #[cold]
    #[inline(never)]
    fn create(&self, step: Step<T>, expired: Expired<T>) -> Result<Pooled<'_, T>, PoolError<E>> {
        let inner = &*self.inner;
        match step {
            Step::Reuse(_) => unreachable!("create is only called with a slot"),
            Step::Create => {
                let slot = SlotGuard::new(inner, 1);
                inner.destroy_expired(expired);
                // A panic here unwinds through `slot`, which frees it and wakes a waiter, and
                // through `failed`, which counts the get as an error, as a failure does.
                let failed = CreateFailed(&inner.metrics);
                let value = (inner.create)().map_err(PoolError::Create)?;
                std::mem::forget(failed);
                inner.metrics.created();
                slot.disarm();
                Ok(Pooled::new(value, self.recycler()))
            }
            Step::Wait => unreachable!("finish is only called with an object or a slot"),
        }
    }

    fn recycler(&self) -> &Arc<dyn Recycle<T>> {
        &self.recycler
    }
}

/// Sleeps on `condvar` until waiter `id` is woken (unqueued) or past `deadline`.
fn wait_until_woken<'a, T, E>(
    mut state: MutexGuard<'a, State<T>>,
    id: u64,
    condvar: &crate::sync::Condvar,
    deadline: Option<Instant>,
) -> Result<MutexGuard<'a, State<T>>, PoolError<E>> {
    loop {
        state = match deadline {
            None => wait(condvar, state),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    if state.queue.remove(id) {
                        return Err(PoolError::Timeout);
                    }
                    // Woken just now: one more look before giving up.
                    return Ok(state);
                }
                wait_timeout(condvar, state, deadline - now).0
            }
        };
        if !state.queue.is_queued(id) {
            return Ok(state);
        }
    }
}

impl<T, E, C: Clock> Inner<T, E, C> {
    /// Under the lock: what a `get` can do now. Expired idle objects met on the way go into
    /// `expired`; a new object may take over the slot of one of them.
    #[inline]
    fn step(&self, state: &mut State<T>, expired: &mut Expired<T>) -> Step<T> {
        let step = self.decide(state, expired);
        self.publish(state);
        step
    }

    /// [`step`](Inner::step) without the gauges.
    #[inline]
    fn decide(&self, state: &mut State<T>, expired: &mut Expired<T>) -> Step<T> {
        let now = self.now();
        while let Some(idle) = state.idle.pop() {
            if self.is_expired(&idle, now) {
                expired.values.push(idle.value);
                expired.slots += 1;
                continue;
            }
            return Step::Reuse(idle.value);
        }
        if expired.slots > 0 {
            expired.slots -= 1; // the new object takes this slot over
            return Step::Create;
        }
        if state.size < self.max_size {
            state.size += 1;
            return Step::Create;
        }
        Step::Wait
    }

    /// Under the lock: sets the gauges to the state's sizes.
    #[inline]
    fn publish(&self, state: &State<T>) {
        self.metrics
            .sizes(state.idle.len(), state.size - state.idle.len());
    }

    /// A `get_timeout` gave up, after waiting since `waited` if it waited.
    fn timed_out(&self, waited: Option<WaitStart>) {
        if let Some(start) = waited {
            self.metrics.wait_end(&self.clock, start);
        }
        self.metrics.timeout();
    }

    /// The time for ages: the clock is read only when there is a max age.
    #[inline]
    fn now(&self) -> Nanos {
        match self.max_age {
            Some(_) => self.clock.now(),
            None => Nanos::ZERO,
        }
    }

    /// go-zero's test: expired once `returned_at + max_age < now`.
    #[inline]
    fn is_expired(&self, idle: &Idle<T>, now: Nanos) -> bool {
        self.max_age
            .is_some_and(|max_age| now.duration_since(idle.returned_at) > max_age)
    }

    /// Outside the lock: destroys each expired object, then frees their slots (also if a
    /// destroy panics; the objects not yet destroyed are then only dropped).
    fn destroy_expired(&self, expired: Expired<T>) {
        let Expired { values, slots } = expired;
        let _slots = SlotGuard::new(self, slots);
        for value in values {
            self.destroy(value);
        }
    }

    fn destroy(&self, value: T) {
        match &self.destroy {
            Some(destroy) => destroy(value),
            None => drop(value),
        }
    }

    /// Frees `slots` slots and wakes as many waiters.
    fn free_slots(&self, slots: usize) {
        if slots == 0 {
            return;
        }
        let mut wakes = Vec::new();
        {
            let mut state = lock(&self.state);
            state.size -= slots;
            self.publish(&state);
            for _ in 0..slots {
                match state.queue.pop_first() {
                    Some(wake) => wakes.push(wake),
                    None => break,
                }
            }
        }
        wakes.into_iter().for_each(Wake::wake);
    }
}

impl<T, E, C> Recycle<T> for Inner<T, E, C>
where
    T: Send + 'static,
    E: 'static,
    C: Clock,
{
    fn put(&self, value: T) {
        let returned_at = self.now();
        let wake = {
            let mut state = lock(&self.state);
            state.idle.push(Idle { value, returned_at });
            self.publish(&state);
            if state.queue.is_empty() {
                None
            } else {
                state.queue.pop_first()
            }
        };
        if let Some(wake) = wake {
            wake.wake();
        }
    }

    fn discard(&self, value: T) {
        let _slot = SlotGuard::new(self, 1);
        self.destroy(value);
    }

    fn detach(&self) {
        self.free_slots(1);
    }

    fn wait_end(&self, start: WaitStart) {
        self.metrics.wait_end(&self.clock, start);
    }
}

/// Counts a `get` as an error when dropped: its factory failed or panicked. Forgotten when
/// the factory succeeds.
struct CreateFailed<'a>(&'a PoolMetrics);

impl Drop for CreateFailed<'_> {
    fn drop(&mut self) {
        self.0.error();
    }
}

impl<T, E, C> Drop for Inner<T, E, C> {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut lock(&self.state).idle);
        // Nothing is out (an object out holds the pool), and nothing idle is left.
        self.metrics.sizes(0, 0);
        if let Some(destroy) = &self.destroy {
            idle.into_iter().for_each(|idle| destroy(idle.value));
        }
    }
}

/// Frees its slots when dropped (unwinding included), unless disarmed.
struct SlotGuard<'a, T, E, C: Clock> {
    inner: &'a Inner<T, E, C>,
    slots: usize,
}

impl<'a, T, E, C: Clock> SlotGuard<'a, T, E, C> {
    fn new(inner: &'a Inner<T, E, C>, slots: usize) -> Self {
        SlotGuard { inner, slots }
    }

    /// The slot is now an object's: keep it.
    fn disarm(mut self) {
        self.slots = 0;
    }
}

impl<T, E, C: Clock> Drop for SlotGuard<'_, T, E, C> {
    fn drop(&mut self) {
        self.inner.free_slots(self.slots);
    }
}

impl<T> Expired<T> {
    fn new() -> Expired<T> {
        Expired {
            values: Vec::new(),
            slots: 0,
        }
    }

    /// Nothing to destroy and no slot to free (the usual case: a get skips the call).
    #[inline]
    fn is_empty(&self) -> bool {
        self.values.is_empty() && self.slots == 0
    }
}

impl<T, E, C> Clone for Pool<T, E, C> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
            recycler: self.recycler.clone(),
        }
    }
}

impl<T, E, C: fmt::Debug> fmt::Debug for Pool<T, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .field("max_size", &self.inner.max_size)
            .field("max_age", &self.inner.max_age)
            .field("size", &state.size)
            .field("idle", &state.idle.len())
            .field("waiting", &state.queue.len())
            .field("clock", &self.inner.clock)
            .finish()
    }
}
