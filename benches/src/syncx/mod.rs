//! The primitives the `syncx` suite drives: keel-syncx's singleflight, limit and pool, and
//! their peers, each behind a small adapter trait.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ahash::RandomState;
use keel_syncx::limit::Limit;
use keel_syncx::pool::Pool;
use keel_syncx::singleflight::{FlightError, SingleFlight};
use parking_lot::{Condvar, Mutex};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore};

pub const KEY: u64 = 42;
pub const STR_KEY: &str = "42";
pub const VALUE: u64 = 7;
pub const TASKS: usize = 100;
pub const RUNTIME_THREADS: usize = 2;
pub const LIMIT_CAPACITY: usize = 1024;
pub const POOL_SIZE: usize = 16;

/// Polls `future` once with a no-op waker; it must be ready.
#[inline]
pub fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an uncontended flight is ready at its first poll"),
    }
}

/// A counting limit as the suite sees it.
pub trait LimitUnderTest: Sync {
    const NAME: &'static str;

    /// A limit of `capacity` permits.
    fn with_capacity(capacity: usize) -> Self;

    /// Takes a permit without waiting and returns it at once (RAII drop): `false` if none was free.
    fn try_acquire_release(&self) -> bool;

    /// Permits free now.
    fn available(&self) -> usize;
}

/// keel's `Limit`: `try_acquire()`, then dropping the `Permit`.
#[derive(Debug)]
pub struct KeelLimit(pub Limit);

impl LimitUnderTest for KeelLimit {
    const NAME: &'static str = "keel";

    fn with_capacity(capacity: usize) -> Self {
        KeelLimit(Limit::new(capacity).expect("a valid capacity"))
    }

    #[inline]
    fn try_acquire_release(&self) -> bool {
        self.0.try_acquire().is_some()
    }

    fn available(&self) -> usize {
        self.0.available()
    }
}

/// tokio's `Semaphore`: `try_acquire()`, then dropping the `SemaphorePermit`.
#[derive(Debug)]
pub struct TokioSemaphore(pub Semaphore);

impl LimitUnderTest for TokioSemaphore {
    const NAME: &'static str = "tokio Semaphore";

    fn with_capacity(capacity: usize) -> Self {
        TokioSemaphore(Semaphore::new(capacity))
    }

    #[inline]
    fn try_acquire_release(&self) -> bool {
        self.0.try_acquire().is_ok()
    }

    fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// The minimal blocking limit, written here as the hand-made peer.
#[derive(Debug)]
pub struct MutexCondvarLimit {
    available: Mutex<usize>,
    released: Condvar,
}

/// A permit of [`MutexCondvarLimit`]; dropping it returns it and wakes one waiter.
#[derive(Debug)]
pub struct MutexPermit<'a>(&'a MutexCondvarLimit);

impl MutexCondvarLimit {
    #[inline]
    pub fn try_acquire(&self) -> Option<MutexPermit<'_>> {
        let mut available = self.available.lock();
        if *available == 0 {
            return None;
        }
        *available -= 1;
        Some(MutexPermit(self))
    }

    pub fn acquire(&self) -> MutexPermit<'_> {
        let mut available = self.available.lock();
        while *available == 0 {
            self.released.wait(&mut available);
        }
        *available -= 1;
        MutexPermit(self)
    }
}

impl Drop for MutexPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.0.available.lock() += 1;
        self.0.released.notify_one();
    }
}

impl LimitUnderTest for MutexCondvarLimit {
    const NAME: &'static str = "mutex+condvar";

    fn with_capacity(capacity: usize) -> Self {
        MutexCondvarLimit {
            available: Mutex::new(capacity),
            released: Condvar::new(),
        }
    }

    #[inline]
    fn try_acquire_release(&self) -> bool {
        self.try_acquire().is_some()
    }

    fn available(&self) -> usize {
        *self.available.lock()
    }
}

/// An object pool of `u64` as the suite sees it.
pub trait PoolUnderTest: Sync {
    const NAME: &'static str;

    /// An empty pool of at most `max_size` objects (the peer has no bound), creating `0`.
    fn with_max_size(max_size: usize) -> Self;

    /// Gets an object, reads it, and returns it to the pool (RAII drop): `false` if none came.
    fn get_put(&self) -> bool;

    /// Objects idle in the pool now.
    fn idle(&self) -> usize;
}

/// keel's `Pool::builder(max_size, || Ok(0u64)).build()` (no max age): `get()`.
#[derive(Debug)]
pub struct KeelPool(pub Pool<u64, Infallible>);

impl PoolUnderTest for KeelPool {
    const NAME: &'static str = "keel";

    fn with_max_size(max_size: usize) -> Self {
        KeelPool(
            Pool::builder(max_size, || Ok(0u64))
                .build()
                .expect("a valid pool"),
        )
    }

    #[inline]
    fn get_put(&self) -> bool {
        match self.0.get() {
            Ok(object) => {
                black_box(*object);
                true
            }
            Err(_) => false,
        }
    }

    fn idle(&self) -> usize {
        self.0.idle()
    }
}

/// The minimal pool, written here as the hand-made peer.
#[derive(Debug)]
pub struct MutexVecPool {
    idle: Mutex<Vec<u64>>,
}

/// An object of [`MutexVecPool`]; dropping it returns it.
#[derive(Debug)]
pub struct MutexPooled<'a> {
    value: u64,
    pool: &'a MutexVecPool,
}

impl MutexVecPool {
    #[inline]
    pub fn get(&self) -> MutexPooled<'_> {
        let value = self.idle.lock().pop().unwrap_or(0);
        MutexPooled { value, pool: self }
    }
}

impl Drop for MutexPooled<'_> {
    #[inline]
    fn drop(&mut self) {
        self.pool.idle.lock().push(self.value);
    }
}

impl PoolUnderTest for MutexVecPool {
    const NAME: &'static str = "mutex vec pool";

    fn with_max_size(_max_size: usize) -> Self {
        MutexVecPool {
            idle: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    fn get_put(&self) -> bool {
        black_box(self.get().value);
        true
    }

    fn idle(&self) -> usize {
        self.idle.lock().len()
    }
}

/// A coalescer as the leader group sees it (empty when `default`).
pub trait LeaderUnderTest: Sync + Default {
    const NAME: &'static str;

    /// Leads a flight for `key` whose work returns `value`; returns what the flight gave.
    fn lead(&self, key: u64, value: u64) -> u64;
}

/// What keel's `run` gave: the value (the work never fails and never panics here).
fn keel_value(result: Result<u64, FlightError<Infallible>>) -> u64 {
    match result {
        Ok(value) => value,
        Err(e) => panic!("a flight that cannot fail failed: {e}"),
    }
}

/// keel's `SingleFlight<u64, u64, Infallible>`, called with the synchronous `run`.
#[derive(Debug, Default)]
pub struct KeelRun(pub SingleFlight<u64, u64, Infallible>);

impl LeaderUnderTest for KeelRun {
    const NAME: &'static str = "keel run";

    #[inline]
    fn lead(&self, key: u64, value: u64) -> u64 {
        keel_value(self.0.run(key, || Ok(value)))
    }
}

/// keel's `SingleFlight<u64, u64, Infallible>`.
#[derive(Debug, Default)]
pub struct KeelRunAsync(pub SingleFlight<u64, u64, Infallible>);

impl KeelRunAsync {
    pub async fn call(&self, key: u64, work: impl Future<Output = u64>) -> u64 {
        keel_value(self.0.run_async(key, || async { Ok(work.await) }).await)
    }
}

impl LeaderUnderTest for KeelRunAsync {
    const NAME: &'static str = "keel run_async";

    #[inline]
    fn lead(&self, key: u64, value: u64) -> u64 {
        keel_value(poll_ready(
            self.0.run_async(key, || async move { Ok(value) }),
        ))
    }
}

/// async_singleflight 0.5's `Group<u64, Infallible>`: `work(&str, future)`.
#[derive(Debug, Default)]
pub struct AsyncSingleflight(pub async_singleflight::Group<u64, Infallible>);

impl AsyncSingleflight {
    pub async fn call(&self, work: impl Future<Output = u64>) -> u64 {
        let (value, _, _) = self.0.work(STR_KEY, async { Ok(work.await) }).await;
        value.expect("a flight that cannot fail gives a value")
    }
}

impl LeaderUnderTest for AsyncSingleflight {
    const NAME: &'static str = "async_singleflight";

    #[inline]
    fn lead(&self, _key: u64, value: u64) -> u64 {
        let (value, _, _) = poll_ready(self.0.work(STR_KEY, async move { Ok(value) }));
        value.expect("a flight that cannot fail gives a value")
    }
}

/// The minimal correct synchronous singleflight, the hand-made peer.
#[derive(Debug, Default)]
pub struct MutexCoalescer {
    flights: Mutex<HashMap<u64, Arc<Flight>, RandomState>>,
}

/// One flight of [`MutexCoalescer`]: its value once published.
#[derive(Debug, Default)]
struct Flight {
    value: Mutex<Option<u64>>,
    done: Condvar,
}

impl MutexCoalescer {
    pub fn run(&self, key: u64, f: impl FnOnce() -> u64) -> u64 {
        let (flight, leader) = match self.flights.lock().entry(key) {
            Entry::Occupied(e) => (Arc::clone(e.get()), false),
            Entry::Vacant(e) => (Arc::clone(e.insert(Arc::new(Flight::default()))), true),
        };
        if !leader {
            let mut value = flight.value.lock();
            loop {
                if let Some(v) = *value {
                    return v;
                }
                flight.done.wait(&mut value);
            }
        }
        let v = f();
        *flight.value.lock() = Some(v);
        flight.done.notify_all();
        self.flights.lock().remove(&key);
        v
    }

    pub fn is_empty(&self) -> bool {
        self.flights.lock().is_empty()
    }
}

impl LeaderUnderTest for MutexCoalescer {
    const NAME: &'static str = "mutex coalescer";

    #[inline]
    fn lead(&self, key: u64, value: u64) -> u64 {
        self.run(key, || value)
    }
}

/// The 100-task group's runtime: multi-thread, [`RUNTIME_THREADS`] workers, no timer.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .build()
        .expect("a tokio runtime")
}

/// An async coalescer as the 100-task group sees it (empty when `default`).
pub trait CoalescerUnderTest: Send + Sync + Default + 'static {
    const NAME: &'static str;
    const EXECUTIONS_PER_BATCH: u64 = 1;

    /// One task's call: leads or joins the flight for [`KEY`] whose work is `work`.
    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send;
}

impl CoalescerUnderTest for KeelRunAsync {
    const NAME: &'static str = <KeelRunAsync as LeaderUnderTest>::NAME;

    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        KeelRunAsync::call(self, KEY, work)
    }
}

impl CoalescerUnderTest for AsyncSingleflight {
    const NAME: &'static str = <AsyncSingleflight as LeaderUnderTest>::NAME;

    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        AsyncSingleflight::call(self, work)
    }
}

/// The floor: the same tasks, spawned and joined.
#[derive(Debug, Default)]
pub struct SpawnOnly;

impl CoalescerUnderTest for SpawnOnly {
    const NAME: &'static str = "spawn only (floor)";
    const EXECUTIONS_PER_BATCH: u64 = 0;

    fn call(&self, _work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        std::future::ready(VALUE)
    }
}

/// The floor of any coalescer whose followers wait: the first caller of a batch runs the work,
/// the others each store a waker in one `Mutex<Vec<Waker>>` and are suspended, and the leader
/// bumps a generation and wakes them all; a woken follower sees the new generation without a
/// lock. No key, no map, no value hand-over, no cancellation, no panic safety: what is left is
/// the runtime's cost of a follower (a suspended first poll, a wake-up, a second poll) and one
/// short critical section, which every waiting follower pays whatever the coalescer.
#[derive(Debug, Default)]
pub struct WakeFloor {
    led: AtomicBool,
    generation: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl WakeFloor {
    async fn lead_or_wait(&self, work: impl Future<Output = u64>) -> u64 {
        if self.led.swap(true, Ordering::AcqRel) {
            // A batch's work is released only after every caller's first poll, so this is
            // the generation before the leader's bump.
            let joined = self.generation.load(Ordering::Acquire);
            poll_fn(|cx| {
                if self.generation.load(Ordering::Acquire) != joined {
                    return Poll::Ready(VALUE);
                }
                let mut wakers = self.wakers.lock();
                if self.generation.load(Ordering::Acquire) != joined {
                    return Poll::Ready(VALUE);
                }
                wakers.push(cx.waker().clone());
                Poll::Pending
            })
            .await
        } else {
            let value = work.await;
            self.led.store(false, Ordering::Release);
            let wakers = {
                let mut wakers = self.wakers.lock();
                self.generation.fetch_add(1, Ordering::AcqRel);
                std::mem::take(&mut *wakers)
            };
            wakers.into_iter().for_each(Waker::wake);
            value
        }
    }
}

impl CoalescerUnderTest for WakeFloor {
    const NAME: &'static str = "leader + waker list (wake floor)";

    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        self.lead_or_wait(work)
    }
}

/// What a batch's tasks share: the coalescer, and the work's release.
#[derive(Debug, Default)]
pub struct Batch<C> {
    subject: C,
    arrived: AtomicUsize,
    release: Notify,
    executions: AtomicU64,
}

impl<C: CoalescerUnderTest> Batch<C> {
    async fn task(self: Arc<Self>) -> u64 {
        let work = async {
            self.release.notified().await;
            self.executions.fetch_add(1, Ordering::Relaxed);
            VALUE
        };
        let mut call = pin!(self.subject.call(work));
        let first = poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == TASKS && C::EXECUTIONS_PER_BATCH > 0 {
            self.release.notify_one();
        }
        match first {
            Poll::Ready(value) => value,
            Poll::Pending => call.await,
        }
    }

    pub fn time(self: &Arc<Self>, rt: &Runtime, iters: u64) -> Duration {
        let batch = Arc::clone(self);
        let driver = rt.spawn(async move {
            let ran = batch.executions.load(Ordering::Relaxed);
            let mut handles = Vec::with_capacity(TASKS);
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                batch.arrived.store(0, Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..TASKS {
                    handles.push(tokio::spawn(Arc::clone(&batch).task()));
                }
                let mut sum = 0;
                for handle in handles.drain(..) {
                    sum += handle.await.expect("a batch task does not panic");
                }
                total += start.elapsed();
                assert_eq!(sum, VALUE * TASKS as u64, "{}: values", C::NAME);
            }
            let ran = batch.executions.load(Ordering::Relaxed) - ran;
            assert_eq!(
                ran,
                iters * C::EXECUTIONS_PER_BATCH,
                "{}: flights run in {iters} batches",
                C::NAME
            );
            total
        });
        rt.block_on(driver).expect("the timing task does not panic")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    fn leads<L: LeaderUnderTest>() {
        let l = L::default();
        for i in 0..1000 {
            assert_eq!(l.lead(KEY, i), i, "{}", L::NAME);
        }
    }

    #[test]
    fn every_leader_runs_its_work() {
        leads::<KeelRun>();
        leads::<KeelRunAsync>();
        leads::<AsyncSingleflight>();
        leads::<MutexCoalescer>();
    }

    #[test]
    fn the_mutex_coalescer_shares_one_run() {
        let c = MutexCoalescer::default();
        let runs = std::sync::atomic::AtomicU64::new(0);
        let barrier = std::sync::Barrier::new(4);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    barrier.wait();
                    let v = c.run(KEY, || {
                        runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        thread::sleep(std::time::Duration::from_millis(50));
                        VALUE
                    });
                    assert_eq!(v, VALUE);
                });
            }
        });
        // Threads arriving after the flight ended run their own (rare with a 50 ms flight).
        assert!((1..=4).contains(&runs.into_inner()));
        assert!(c.is_empty());
    }

    #[test]
    fn every_batch_coalesces_into_one_execution() {
        let rt = runtime();
        for _ in 0..2 {
            Arc::new(Batch::<KeelRunAsync>::default()).time(&rt, 20);
            Arc::new(Batch::<AsyncSingleflight>::default()).time(&rt, 20);
            Arc::new(Batch::<WakeFloor>::default()).time(&rt, 20);
            Arc::new(Batch::<SpawnOnly>::default()).time(&rt, 20);
        }
    }

    fn limits<L: LimitUnderTest>() {
        let l = L::with_capacity(2);
        for _ in 0..1000 {
            assert!(l.try_acquire_release(), "{}", L::NAME);
        }
        assert_eq!(l.available(), 2, "{}: permits returned", L::NAME);
    }

    #[test]
    fn every_limit_returns_its_permits() {
        limits::<KeelLimit>();
        limits::<TokioSemaphore>();
        limits::<MutexCondvarLimit>();
    }

    #[test]
    fn the_mutex_limit_refuses_when_empty_and_wakes_a_waiter() {
        let l = MutexCondvarLimit::with_capacity(1);
        let held = l.try_acquire().expect("a permit");
        assert!(l.try_acquire().is_none());
        thread::scope(|s| {
            let waiter = s.spawn(|| drop(l.acquire()));
            thread::sleep(std::time::Duration::from_millis(20));
            drop(held);
            waiter.join().expect("the waiter gets the permit");
        });
        assert_eq!(l.available(), 1);
    }

    fn pools<P: PoolUnderTest>() {
        let p = P::with_max_size(2);
        for _ in 0..1000 {
            assert!(p.get_put(), "{}", P::NAME);
        }
        assert_eq!(p.idle(), 1, "{}: one object, reused", P::NAME);
    }

    #[test]
    fn every_pool_reuses_its_object() {
        pools::<KeelPool>();
        pools::<MutexVecPool>();
    }
}
