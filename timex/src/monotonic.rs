//! [`MonotonicClock`]: the precise real clock.

use std::time::Instant;

use crate::origin::{nanos_since, origin};
use crate::{Clock, Nanos};

/// The precise real clock: [`std::time::Instant`] measured from the process-wide origin.
///
/// Use it where nanoseconds matter, such as measuring one request's latency. One read costs
/// about 26 ns on our reference machine (a vDSO `clock_gettime`), so hot paths that only need
/// to know *which* 100 ms bucket they are in should use [`CoarseClock`](crate::CoarseClock).
///
/// It does not follow `tokio::time::pause()`; see [`TokioClock`](crate#tokio-paused-time).
///
/// ```
/// use keel_timex::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// ```
#[derive(Copy, Clone, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A handle to the precise clock. Cheap: it copies the process origin.
    pub fn new() -> MonotonicClock {
        MonotonicClock { origin: origin() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from_nanos(nanos_since(self.origin, Instant::now()))
    }
}
