//! The process-wide origin that the real clocks measure from.

use std::sync::OnceLock;
use std::time::Instant;

/// Fixed by the first real clock created in the process. Shared so that readings of
/// [`MonotonicClock`](crate::MonotonicClock) and [`CoarseClock`](crate::CoarseClock) are
/// comparable.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

pub(crate) fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds from `origin` to `instant`, saturating (an `Instant` before the origin reads 0,
/// one 584 years later reads `u64::MAX`).
#[inline]
pub(crate) fn nanos_since(origin: Instant, instant: Instant) -> u64 {
    let n = instant.saturating_duration_since(origin).as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}
