//! [`WindowUnderTest`]: the adapter the rolling-window suite drives, and its implementations
//! for keel and each peer.

use std::time::Duration;

use keel_rollingwindow::{RollingWindow, SumCount};
use parking_lot::Mutex;
use rs_zero::resil::{WindowConfig, WindowOutcome};

mod mutex_window;

pub use mutex_window::{MutexWindow, MutexWindowBucket};

/// A rolling window of `{sum, count}`-like buckets as the suite sees it.
pub trait WindowUnderTest: Send + Sync + 'static {
    const NAME: &'static str;
    /// A window of `size` buckets covering `interval` each.
    fn with_buckets(size: usize, interval: Duration) -> Self;
    /// Records one event of value `v` (peers that only count events ignore `v`).
    fn add(&self, v: i64);
    /// Reduces the whole window to its number of events.
    fn count(&self) -> u64;
}

/// keel's [`RollingWindow`] of [`SumCount<i64>`] on the default, process-wide `CoarseClock`.
#[derive(Debug)]
pub struct Keel(RollingWindow<SumCount<i64>>);

impl WindowUnderTest for Keel {
    const NAME: &'static str = "keel";

    fn with_buckets(size: usize, interval: Duration) -> Self {
        Keel(RollingWindow::new(size, interval).expect("the suite's window configuration is valid"))
    }

    #[inline]
    fn add(&self, v: i64) {
        self.0.add(v);
    }

    fn count(&self) -> u64 {
        self.0.fold(0, |n, b| n + b.count)
    }
}

/// `rs-zero`'s window: a ring of outcome buckets tagged with their generation.
#[derive(Debug)]
pub struct RsZero(Mutex<rs_zero::resil::RollingWindow>);

impl WindowUnderTest for RsZero {
    const NAME: &'static str = "rs-zero (parking_lot Mutex)";

    fn with_buckets(size: usize, interval: Duration) -> Self {
        RsZero(Mutex::new(rs_zero::resil::RollingWindow::new(
            WindowConfig {
                buckets: size,
                bucket_duration: interval,
            },
        )))
    }

    #[inline]
    fn add(&self, _v: i64) {
        // It counts outcomes rather than summing values; a success is the breaker's add.
        self.0.lock().record(WindowOutcome::Success);
    }

    fn count(&self) -> u64 {
        self.0.lock().snapshot().total()
    }
}

/// `rust-zero-core`'s window.
pub struct RustZeroCore(rust_zero_core::RollingWindow);

impl WindowUnderTest for RustZeroCore {
    const NAME: &'static str = "rust-zero-core";

    fn with_buckets(size: usize, interval: Duration) -> Self {
        RustZeroCore(rust_zero_core::RollingWindow::new(size, interval))
    }

    #[inline]
    fn add(&self, v: i64) {
        // Its values are f64 (asserted finite): the conversion is part of what a user pays.
        self.0.record(v as f64);
    }

    fn count(&self) -> u64 {
        self.0.snapshot().count
    }
}

crate::opaque_debug!(RustZeroCore);

#[cfg(test)]
mod tests {
    use super::*;

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
