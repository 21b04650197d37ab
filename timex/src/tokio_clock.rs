//! [`TokioClock`]: follows `tokio::time::pause()` and `advance()`.

use crate::{Clock, MonotonicClock, Nanos};

/// A clock that reads [`tokio::time::Instant`], so it stands still under
/// `tokio::time::pause()` and jumps with `tokio::time::advance()` and auto-advance.
///
/// Its readings start at the [`MonotonicClock`] reading taken at construction, so unpaused
/// they are comparable with the other real clocks. It costs one `tokio::time::Instant::now()`
/// per read (the same as `std`, plus one flag check when tokio's `test-util` is on).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use keel_timex::{Clock, TokioClock};
/// use std::time::Duration;
///
/// let clock = TokioClock::new();
/// let start = clock.now();
/// tokio::time::sleep(Duration::from_secs(3600)).await; // paused: returns at once
/// assert_eq!(clock.now() - start, Duration::from_secs(3600));
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Copy, Clone, Debug)]
pub struct TokioClock {
    base: tokio::time::Instant,
    base_nanos: Nanos,
}

impl TokioClock {
    /// A clock reading tokio's (possibly paused) time.
    pub fn new() -> TokioClock {
        TokioClock {
            base: tokio::time::Instant::now(),
            base_nanos: MonotonicClock::new().now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Nanos {
        self.base_nanos + tokio::time::Instant::now().saturating_duration_since(self.base)
    }
}
