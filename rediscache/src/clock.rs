//! [`UnixClock`]: the default clock, on a time line every instance shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use keel_timex::{Clock, Nanos};

/// Wall-clock time: nanoseconds since the Unix epoch, never decreasing for one clock (and
/// its clones).
///
/// The cache's logical expiries are stored in Redis and compared by every instance, so
/// they must be on one time line across processes and hosts: a monotonic clock's origin is
/// per process. Instances' clocks disagree by their hosts' skew (NTP keeps it to
/// milliseconds), which moves when an entry counts as expired by that much; nothing else
/// depends on it. A reading that would go back (the system clock was stepped back) repeats
/// the last reading instead.
///
/// Tests share one [`ManualClock`](keel_timex::ManualClock) between their instances
/// instead.
#[derive(Debug, Clone, Default)]
pub struct UnixClock {
    /// The latest reading, so that readings never decrease.
    last: Arc<AtomicU64>,
}

impl UnixClock {
    /// A clock reading the system's time.
    pub fn new() -> UnixClock {
        UnixClock::default()
    }
}

impl Clock for UnixClock {
    fn now(&self) -> Nanos {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        // Relaxed: the value itself is the only thing published.
        let previous = self.last.fetch_max(system, Ordering::Relaxed);
        Nanos::from_nanos(previous.max(system))
    }
}
