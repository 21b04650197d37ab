//! Peer: `rs_zero::resil::RollingWindow` from crates.io.

use std::time::Duration;

use parking_lot::Mutex;
use rs_zero::resil::{RollingWindow, WindowConfig, WindowOutcome};

use super::WindowUnderTest;

/// `rs-zero`'s window: a ring of outcome buckets tagged with their generation, with an
/// `Instant::now()` per record. It records through `&mut self`, so sharing it between
/// threads takes a lock; a `parking_lot::Mutex` is the cheapest one a user would pick.
#[derive(Debug)]
pub struct RsZero(Mutex<RollingWindow>);

impl WindowUnderTest for RsZero {
    const NAME: &'static str = "rs-zero (parking_lot Mutex)";

    fn with_buckets(size: usize, interval: Duration) -> Self {
        RsZero(Mutex::new(RollingWindow::new(WindowConfig {
            buckets: size,
            bucket_duration: interval,
        })))
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
