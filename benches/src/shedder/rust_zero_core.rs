//! Peer: `rust_zero_core::load::AdaptiveShedder` from crates.io, in its go-zero-style mode.

use std::sync::Mutex;
use std::time::Duration;

use rust_zero_core::load::{AdaptiveShedder, LoadShedderConfig, ShedPermit};

use super::{CAPACITY, ShedderUnderTest};

/// `AdaptiveShedder::new(LoadShedderConfig::production(CAPACITY))` over go-zero's window of
/// 5 s in 50 buckets, its CPU signal its own process sampler (not injectable).
pub struct RustZeroCore {
    shedder: AdaptiveShedder,
    /// The rejecting setup's permits, held open.
    _held: Mutex<Vec<ShedPermit>>,
}

impl RustZeroCore {
    fn build() -> AdaptiveShedder {
        AdaptiveShedder::new(
            LoadShedderConfig::production(CAPACITY)
                .with_rolling_window(Duration::from_millis(100), 50),
        )
    }
}

impl ShedderUnderTest for RustZeroCore {
    const NAME: &'static str = "rust-zero-core";

    fn admitting() -> Self {
        RustZeroCore {
            shedder: RustZeroCore::build(),
            _held: Mutex::new(Vec::new()),
        }
    }

    /// Permits taken until it refuses one: at [`CAPACITY`] in flight (or earlier, if the
    /// process is busy enough for its own CPU signal) and held open.
    fn overloaded() -> Self {
        let shedder = RustZeroCore::build();
        let held: Vec<ShedPermit> = std::iter::from_fn(|| shedder.try_acquire())
            .take(CAPACITY + 1)
            .collect();
        assert!(held.len() <= CAPACITY, "refused nothing at its capacity");
        RustZeroCore {
            shedder,
            _held: Mutex::new(held),
        }
    }

    #[inline]
    fn request(&self) -> bool {
        // Dropping the permit records the completion.
        self.shedder.try_acquire().is_some()
    }
}

crate::opaque_debug!(RustZeroCore);
