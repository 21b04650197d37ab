//! The primitives the `syncx` suite drives: keel-syncx's singleflight, limit and pool, and
//! their peers, each behind a small adapter trait.

mod batch;
mod limit;
mod pool;
mod singleflight;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub use self::batch::{Batch, CoalescerUnderTest, SpawnOnly, runtime};
pub use self::limit::{KeelLimit, LimitUnderTest, MutexCondvarLimit, MutexPermit, TokioSemaphore};
pub use self::pool::{KeelPool, MutexPooled, MutexVecPool, PoolUnderTest};
pub use self::singleflight::{
    AsyncSingleflight, KeelRun, KeelRunAsync, LeaderUnderTest, MutexCoalescer,
};

/// The key of every flight: the same each iteration (a flight frees its key when it ends).
pub const KEY: u64 = 42;

/// async_singleflight's key: it takes `&str` keys only (and stores them as `String`s).
pub const STR_KEY: &str = "42";

/// What every flight's work returns.
pub const VALUE: u64 = 7;

/// Tasks per batch of the 100-task group: 1 leader and 99 followers of one key.
pub const TASKS: usize = 100;

/// Worker threads of the 100-task group's multi-thread runtime.
pub const RUNTIME_THREADS: usize = 2;

/// Permits of every limit: far above what two benchmark threads hold, so `try_acquire`
/// never fails.
pub const LIMIT_CAPACITY: usize = 1024;

/// Max size of every pool: above the two benchmark threads, so `get` never waits.
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
