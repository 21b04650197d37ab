//! The map-reduce rows the `mapreduce` suite times: keel-mapreduce's two flavours and their
//! peers over [`ITEMS`] items (x → 2x, summed), and the fan-out of [`FAN_OUT_ITEMS`] sleeps.

mod flavour_async;
mod flavour_thread;

use std::time::Duration;

pub use self::flavour_async::{ASYNC_ROWS, Call, FAN_OUT_ROWS, NewCall, runtime};
pub use self::flavour_thread::{
    PIPELINE_BATCH, PIPELINE_BATCHES, PIPELINE_CAPACITY, THREAD_ROWS, ThreadCall, pool,
};

/// Items per call.
pub const ITEMS: u64 = 100_000;

/// What every call over `0..ITEMS` returns: the sum of `2x`.
pub const SUM: u64 = ITEMS * (ITEMS - 1);

/// Worker threads of the tokio runtime and of rayon's pool: the peer figures' 2.
pub const RUNTIME_THREADS: usize = 2;

/// Items of the fan-out call.
pub const FAN_OUT_ITEMS: u64 = 8;

/// What each fan-out item awaits (`tokio::time::sleep`).
pub const FAN_OUT_SLEEP: Duration = Duration::from_millis(1);
