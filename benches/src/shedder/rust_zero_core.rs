//! Peer: `rust_zero_core::load::AdaptiveShedder` from crates.io, in its go-zero-style mode.

use std::sync::Mutex;
use std::time::Duration;

use rust_zero_core::load::{AdaptiveShedder, LoadShedderConfig, ShedPermit};

use super::{CAPACITY, ShedderUnderTest};

/// `AdaptiveShedder::new(LoadShedderConfig::production(CAPACITY))` over go-zero's window of
/// 5 s in 50 buckets (its own default is 1 s in 10), everything else at its defaults (CPU
/// threshold 0.9, 1 s cool-down): its CPU- and throughput-aware mode, the one modelled on
/// go-zero. Its CPU signal is its own process sampler (`getrusage` at most every 100 ms,
/// behind a `std::sync::Mutex`), which cannot be replaced from outside the crate. An
/// admission loads the in-flight count, reads `Instant::now()`, locks the state, rotates the
/// `VecDeque` of buckets, folds it for the Little's-law limit, reads the CPU sampler, CASes
/// the in-flight count and locks again for its EWMA; dropping the permit reads the clock
/// twice and locks to record the completion.
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
