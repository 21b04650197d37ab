//! [`LeaderUnderTest`]: one uncontended flight, for keel's sync and async calls and the two
//! peers; and the peers themselves, async_singleflight's `Group` and the hand-written
//! [`MutexCoalescer`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use ahash::RandomState;
use keel_syncx::singleflight::{FlightError, SingleFlight};
use parking_lot::{Condvar, Mutex};

use super::{STR_KEY, poll_ready};

/// A coalescer as the leader group sees it (empty when `default`): one call for `key` that
/// nobody joins, whose work returns `value` at once.
pub trait LeaderUnderTest: Sync + Default {
    /// The benchmark id, and the name in the report.
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

/// keel's `SingleFlight<u64, u64, Infallible>`, called with `run_async` (polled once with
/// a no-op waker in the leader group, spawned in the 100-task group).
#[derive(Debug, Default)]
pub struct KeelRunAsync(pub SingleFlight<u64, u64, Infallible>);

impl KeelRunAsync {
    /// `run_async` for `key`, whose work is `work`.
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

/// async_singleflight 0.5's `Group<u64, Infallible>`: `work(&str, future)`. Its keys are
/// `&str` (stored as a `String` per flight), so every flight uses [`STR_KEY`].
#[derive(Debug, Default)]
pub struct AsyncSingleflight(pub async_singleflight::Group<u64, Infallible>);

impl AsyncSingleflight {
    /// `work` for [`STR_KEY`], whose future is `work`.
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

/// The minimal correct synchronous singleflight, the hand-made peer: a `parking_lot::Mutex`
/// around a map of flights, each a value under its own mutex and a `Condvar`.
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
    /// Runs `f` for `key`, or waits for the flight in progress for `key` and returns its
    /// value.
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

    /// Whether no flight is in progress.
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
