//! Helpers shared by the cache's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

pub(crate) mod gate;

use std::time::{Duration, Instant};

use keel_collection::cache::{Builder, Cache};
use keel_timex::ManualClock;

/// How long a test waits for a state that must come before it declares a hang. Only ever
/// reached when the code under test is broken: no assertion depends on it.
pub(crate) const HANG: Duration = Duration::from_secs(30);

/// Spins (yielding the thread) until `done` holds; panics after [`HANG`] naming `what`.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < HANG, "gave up waiting for {what}");
        std::thread::yield_now();
    }
}

/// A builder on a fresh manual clock with jitter off, and the clock to drive it.
pub(crate) fn manual<K, V>(ttl: Duration) -> (Builder<K, V, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let builder = Cache::builder(ttl).jitter(0.0).clock(clock.clone());
    (builder, clock)
}

/// `Duration::from_secs`.
pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `Duration::from_millis`.
pub(crate) fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// `Duration::from_nanos`.
pub(crate) fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

/// [`wait_until`] for async code: yields to the runtime between checks.
pub(crate) async fn wait_until_async(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < HANG, "gave up waiting for {what}");
        tokio::task::yield_now().await;
    }
}
