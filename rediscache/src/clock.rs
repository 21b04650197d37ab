//! [`UnixClock`]: the default clock, on a time line every instance shares.

use std::time::{SystemTime, UNIX_EPOCH};

use keel_timex::{Clock, CoarseClock, MonotonicClock, Nanos};

/// Wall-clock time: nanoseconds since the Unix epoch, never decreasing.
///
/// The cache's logical expiries are stored in Redis and compared by every instance, so
/// they must be on one time line across processes and hosts: a monotonic clock's origin is
/// per process. Instances' clocks disagree by their hosts' skew (NTP keeps it to
/// milliseconds), which moves when an entry counts as expired by that much; nothing else
/// depends on it.
///
/// Reading it is cheap (a hot local hit reads it twice): the system's time is read once,
/// when the clock is created, and then advanced by keel-timex's
/// [`CoarseClock`](keel_timex::CoarseClock) (one atomic load, about 1 ms resolution, which is
/// the precision of the expiries written to Redis). So the clock follows the system clock's
/// rate (NTP's slewing included, as `CLOCK_MONOTONIC` does) but not later steps of it: a
/// process started before the system clock was stepped keeps the old offset (a step back
/// never makes it go back). Clones share the reading.
///
/// Tests share one [`ManualClock`](keel_timex::ManualClock) between their instances
/// instead.
#[derive(Debug, Clone)]
pub struct UnixClock {
    /// Unix time at the coarse clock's origin.
    offset: u64,
    coarse: CoarseClock,
}

impl Default for UnixClock {
    fn default() -> UnixClock {
        UnixClock::new()
    }
}

impl UnixClock {
    /// A clock on the system's time, as of now.
    pub fn new() -> UnixClock {
        let since_origin = MonotonicClock::new().now().as_nanos();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        UnixClock {
            offset: unix.saturating_sub(since_origin),
            coarse: CoarseClock::new(),
        }
    }
}

impl Clock for UnixClock {
    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from_nanos(self.offset.saturating_add(self.coarse.now().as_nanos()))
    }

    /// A precise reading on the same time line (for measuring a duration).
    fn now_precise(&self) -> Nanos {
        let since_origin = MonotonicClock::new().now().as_nanos();
        Nanos::from_nanos(self.offset.saturating_add(since_origin))
    }
}
