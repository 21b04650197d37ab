//! Peer: `rust_zero_core::RollingWindow` from crates.io.

use std::time::Duration;

use super::WindowUnderTest;

/// `rust-zero-core`'s window: a `std::sync::Mutex` around a `VecDeque` of buckets (count,
/// sum, min, max), with an `Instant::now()` per record. Used as published.
pub struct RustZeroCore(rust_zero_core::RollingWindow);

impl WindowUnderTest for RustZeroCore {
    const NAME: &'static str = "rust-zero-core";

    fn with_buckets(size: usize, interval: Duration) -> Self {
        RustZeroCore(rust_zero_core::RollingWindow::new(size, interval))
    }

    #[inline]
    fn add(&self, v: i64) {
        // Its values are f64 (it asserts they are finite), so this conversion is part of
        // what a user pays.
        self.0.record(v as f64);
    }

    fn count(&self) -> u64 {
        self.0.snapshot().count
    }
}

crate::opaque_debug!(RustZeroCore);
