//! [`WindowUnderTest`]: the adapter the rolling-window suite drives, and its implementations
//! for keel and each peer.

use std::time::Duration;

mod keel;
mod mutex_window;
mod rs_zero;
mod rust_zero_core;

pub use keel::Keel;
pub use mutex_window::{MutexWindow, MutexWindowBucket};
pub use rs_zero::RsZero;
pub use rust_zero_core::RustZeroCore;

/// A rolling window of `{sum, count}`-like buckets as the suite sees it: one generic driver
/// runs every implementation, so each one only says how to build, add and reduce.
pub trait WindowUnderTest: Send + Sync + 'static {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;
    /// A window of `size` buckets covering `interval` each.
    fn with_buckets(size: usize, interval: Duration) -> Self;
    /// Records one event of value `v` (peers that only count events ignore `v`).
    fn add(&self, v: i64);
    /// Reduces the whole window to its number of events, as a breaker reads its statistics
    /// before each decision.
    fn count(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the wiring of each adapter: a benchmark of an adapter whose `add` went nowhere
    /// would look fast for the wrong reason.
    fn counts_every_add<W: WindowUnderTest>() {
        let w = W::with_buckets(40, Duration::from_secs(60));
        for _ in 0..10 {
            w.add(1);
        }
        assert_eq!(w.count(), 10, "{}", W::NAME);
    }

    #[test]
    fn every_adapter_counts_its_adds() {
        counts_every_add::<Keel>();
        counts_every_add::<MutexWindow>();
        counts_every_add::<RustZeroCore>();
        counts_every_add::<RsZero>();
    }
}
