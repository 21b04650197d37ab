//! The [`Clock`] trait every time-dependent keel primitive is generic over.

use crate::Nanos;

/// A source of monotonic time.
///
/// Readings never decrease for one clock (and its clones). keel primitives take their clock
/// through their builder and are generic over it, so the default real clock is a static call
/// with no `dyn` on the hot path, and a test swaps in a [`ManualClock`](crate::ManualClock).
///
/// Read it **once per operation** and pass the reading down: one read of
/// [`MonotonicClock`](crate::MonotonicClock) costs about as much as two uncontended atomic
/// adds, and two reads in one decision can disagree.
///
/// # Implementing
///
/// `now` must be cheap, must never decrease, and clones must share one time line. Readings of
/// two different clock types are only comparable when both say so (the real clocks of this
/// crate share one origin).
///
/// ```
/// use keel_timex::{Clock, ManualClock, Nanos};
/// use std::time::Duration;
///
/// fn elapsed_since<C: Clock>(clock: &C, start: Nanos) -> Duration {
///     clock.now() - start
/// }
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(elapsed_since(&clock, start), Duration::from_millis(250));
/// ```
pub trait Clock: Clone + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Nanos;

    /// The current time at full precision, on the same time line as [`now`](Clock::now).
    ///
    /// For measuring short durations (a request's latency) with a clock whose `now` is
    /// cached and coarse: [`CoarseClock`](crate::CoarseClock) answers this from the precise
    /// monotonic clock (same origin), every other clock of this crate with `now`. The
    /// default is `now`.
    #[inline]
    fn now_precise(&self) -> Nanos {
        self.now()
    }
}
