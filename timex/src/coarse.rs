//! [`CoarseClock`]: a cached reading refreshed by one shared upkeep thread.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::origin::{nanos_since, origin};
use crate::{Clock, Nanos};

/// How often the upkeep thread refreshes the cached reading.
const RESOLUTION: Duration = Duration::from_millis(1);

/// The one upkeep of the process, shared by every `CoarseClock` alive. The upkeep thread holds
/// the strong reference that keeps it alive; it clears this slot and exits once no clock has
/// been alive for [`IDLE_GRACE_TICKS`], after which a `CoarseClock::new` starts afresh.
static SHARED: Mutex<Weak<Shared>> = Mutex::new(Weak::new());

struct Shared {
    /// Nanoseconds since the origin, as of the last refresh. Padded so that readers on other
    /// cores never share a cache line with the `Arc` reference counts.
    now: CachePadded<AtomicU64>,
    origin: Instant,
    /// False only if the upkeep thread could not be spawned; readers then fall back to a
    /// precise read, so the clock stays correct, merely slower.
    cached: bool,
}

impl Shared {
    #[inline]
    fn precise(&self) -> u64 {
        nanos_since(self.origin, Instant::now())
    }
}

/// A cheap real clock for hot paths: one atomic load (about 1.5-2 ns) instead of a
/// `clock_gettime` (about 26 ns).
///
/// One upkeep thread per process stores a fresh reading every millisecond; every `CoarseClock`
/// reads that shared value. The thread is started by the first `CoarseClock::new()` and
/// shared by all clones and later calls. It exits about a second after the last handle is
/// dropped (the grace keeps code that creates and drops clocks in a loop from starting a
/// thread each time); the next `new()` starts it again. Waking a thread 1000 times a second
/// costs a fraction of a percent of one core.
///
/// # Resolution
///
/// A reading lags real time by up to about one millisecond, plus however long the OS delays
/// the upkeep thread when every core is busy. It never runs ahead of
/// [`MonotonicClock`](crate::MonotonicClock) and never decreases. That is plenty for
/// bucketed statistics (a 100 ms bucket cannot tell 1 ms apart), and wrong for measuring a
/// 50 µs request: use `MonotonicClock` for latency.
///
/// Its readings share an origin with `MonotonicClock`, so the two can be compared, but do not
/// mix them inside one measurement: a coarse reading taken after a precise one can be smaller.
///
/// ```
/// use keel_timex::{Clock, CoarseClock};
///
/// let clock = CoarseClock::new();
/// let before = clock.now();
/// // The upkeep moves the reading on about every millisecond (later if the OS is busy).
/// let moved = (0..10_000).any(|_| {
///     std::thread::sleep(std::time::Duration::from_millis(1));
///     clock.now() > before
/// });
/// assert!(moved);
/// ```
#[derive(Clone)]
pub struct CoarseClock {
    shared: Arc<Shared>,
}

impl CoarseClock {
    /// A handle to the process-wide coarse clock, starting its upkeep thread if none runs.
    ///
    /// Never fails: if the OS refuses the thread, every read falls back to a precise
    /// `Instant::now()`.
    pub fn new() -> CoarseClock {
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = slot.upgrade() {
            return CoarseClock { shared };
        }
        let origin = origin();
        let shared = Arc::new(Shared {
            now: CachePadded::new(AtomicU64::new(nanos_since(origin, Instant::now()))),
            origin,
            cached: true,
        });
        match spawn_upkeep(Arc::clone(&shared)) {
            Ok(()) => {
                *slot = Arc::downgrade(&shared);
                CoarseClock { shared }
            }
            // No upkeep: a private clock that reads precisely, and no registry entry, so the
            // next `new` tries to start the thread again.
            Err(_) => CoarseClock {
                shared: Arc::new(Shared {
                    now: CachePadded::new(AtomicU64::new(0)),
                    origin,
                    cached: false,
                }),
            },
        }
    }

    /// How often the cached reading is refreshed (1 ms).
    pub const fn resolution() -> Duration {
        RESOLUTION
    }
}

/// How long the upkeep keeps running with no `CoarseClock` alive, so that code which creates
/// and drops clocks (or windows) in a loop does not start a thread each time.
const IDLE_GRACE_TICKS: u32 = 1000;

fn spawn_upkeep(shared: Arc<Shared>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("keel-coarse-clock".into())
        .spawn(move || {
            let mut idle_ticks = 0;
            loop {
                thread::sleep(RESOLUTION);
                // fetch_max keeps the cached value monotonic whatever the scheduling.
                shared.now.fetch_max(shared.precise(), Ordering::Release);
                // The upkeep holds one strong reference; a count of 1 means no clock is alive.
                if Arc::strong_count(&shared) > 1 {
                    idle_ticks = 0;
                    continue;
                }
                idle_ticks += 1;
                if idle_ticks < IDLE_GRACE_TICKS {
                    continue;
                }
                // Decide under the registry lock: `new` upgrades under the same lock, so no
                // handle can appear between this check and the slot being cleared.
                let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
                if Arc::strong_count(&shared) == 1 {
                    *slot = Weak::new();
                    return;
                }
                idle_ticks = 0;
            }
        })
        .map(drop)
}

impl Default for CoarseClock {
    fn default() -> Self {
        CoarseClock::new()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Nanos {
        if self.shared.cached {
            // Relaxed is enough: the value is a self-contained number, and it publishes no
            // other data.
            Nanos::from_nanos(self.shared.now.load(Ordering::Relaxed))
        } else {
            Nanos::from_nanos(self.shared.precise())
        }
    }

    /// One `Instant::now()` on the shared origin: readings compare with `now`.
    #[inline]
    fn now_precise(&self) -> Nanos {
        Nanos::from_nanos(self.shared.precise())
    }
}

impl fmt::Debug for CoarseClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoarseClock")
            .field("now", &self.now())
            .field("cached", &self.shared.cached)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MonotonicClock;

    #[test]
    fn clones_and_new_handles_share_one_upkeep() {
        let a = CoarseClock::new();
        let b = CoarseClock::new();
        assert!(Arc::ptr_eq(&a.shared, &b.shared));
        assert!(Arc::ptr_eq(&a.shared, &a.clone().shared));
    }

    #[test]
    fn never_ahead_of_the_precise_clock() {
        let coarse = CoarseClock::new();
        let precise = MonotonicClock::new();
        for _ in 0..1000 {
            let c = coarse.now();
            let p = precise.now();
            assert!(c <= p, "coarse {c:?} ahead of precise {p:?}");
        }
    }
}
