//! keel's own window, as the suite measures it.

use std::time::Duration;

use keel_rollingwindow::{RollingWindow, SumCount};

use super::WindowUnderTest;

/// keel's [`RollingWindow`] of [`SumCount<i64>`] on the default, process-wide `CoarseClock`:
/// exactly what `RollingWindow::new` gives a user.
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
