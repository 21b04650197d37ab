//! [`ManualClock`]: time that moves only when a test says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Clock, Nanos};

/// A clock that moves only when told to: the basis of every deterministic keel test, and
/// public so that your tests can drive keel primitives the same way.
///
/// Clones share one time line, so hand a clone to the primitive under test and keep one to
/// advance. It is safe to read and advance from many threads; it never moves backwards.
///
/// ```
/// use keel_timex::{Clock, ManualClock, Nanos};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let handle = clock.clone();
/// assert_eq!(clock.now(), Nanos::ZERO);
///
/// handle.advance(Duration::from_secs(1));
/// assert_eq!(clock.now(), Nanos::from_nanos(1_000_000_000));
///
/// handle.advance_to(Nanos::from_nanos(5)); // earlier than now: ignored
/// assert_eq!(clock.now().as_duration(), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at [`Nanos::ZERO`].
    pub fn new() -> ManualClock {
        ManualClock::starting_at(Nanos::ZERO)
    }

    /// A clock standing at `start`.
    pub fn starting_at(start: Nanos) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(start.as_nanos())),
        }
    }

    /// Moves time forward by `by` (saturating at [`Nanos::MAX`]) and returns the new time.
    pub fn advance(&self, by: Duration) -> Nanos {
        let by = Nanos::from_duration(by).as_nanos();
        // fetch_update instead of fetch_add so that saturation cannot be undone by a wrap.
        let prev = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            })
            .unwrap_or_else(|n| n);
        Nanos::from_nanos(prev.saturating_add(by))
    }

    /// Moves time forward to `t`. A `t` at or before the current time is ignored, because a
    /// monotonic clock never goes back. Returns the time after the call.
    pub fn advance_to(&self, t: Nanos) -> Nanos {
        let prev = self.now.fetch_max(t.as_nanos(), Ordering::AcqRel);
        Nanos::from_nanos(prev.max(t.as_nanos()))
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Nanos {
        // Acquire pairs with the AcqRel in `advance`, so whatever a test did before advancing
        // is visible to code that observes the new time.
        Nanos::from_nanos(self.now.load(Ordering::Acquire))
    }
}
