//! [`Nanos`]: a point on keel's monotonic time line.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in monotonic time: whole nanoseconds since the process-wide origin.
///
/// Every real clock in this crate ([`MonotonicClock`](crate::MonotonicClock),
/// [`CoarseClock`](crate::CoarseClock)) measures from the same origin, fixed the first time
/// any of them is created, so their readings can be compared with each other. A
/// [`ManualClock`](crate::ManualClock) measures from wherever its test puts it.
///
/// One `u64` of nanoseconds lasts 584 years, so overflow is not a practical concern; all
/// arithmetic still saturates instead of wrapping or panicking.
///
/// ```
/// use keel_timex::Nanos;
/// use std::time::Duration;
///
/// let start = Nanos::from_nanos(1_000);
/// let later = start + Duration::from_micros(2);
/// assert_eq!(later.as_nanos(), 3_000);
/// assert_eq!(later - start, Duration::from_micros(2));
/// assert_eq!(start - later, Duration::ZERO); // saturates, never panics
/// ```
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(u64);

impl Nanos {
    /// The origin itself.
    pub const ZERO: Nanos = Nanos(0);
    /// The largest representable point, about 584 years after the origin.
    pub const MAX: Nanos = Nanos(u64::MAX);

    /// A point `nanos` nanoseconds after the origin.
    #[inline]
    pub const fn from_nanos(nanos: u64) -> Nanos {
        Nanos(nanos)
    }

    /// A point `d` after the origin, saturating at [`Nanos::MAX`].
    #[inline]
    pub const fn from_duration(d: Duration) -> Nanos {
        let n = d.as_nanos();
        if n > u64::MAX as u128 {
            Nanos::MAX
        } else {
            Nanos(n as u64)
        }
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the origin as a [`Duration`].
    #[inline]
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// How long after `earlier` this point is; zero if `earlier` is in fact later.
    #[inline]
    pub const fn duration_since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` if that passes [`Nanos::MAX`].
    #[inline]
    pub const fn checked_add(self, d: Duration) -> Option<Nanos> {
        let add = d.as_nanos();
        if add > u64::MAX as u128 {
            return None;
        }
        match self.0.checked_add(add as u64) {
            Some(n) => Some(Nanos(n)),
            None => None,
        }
    }

    /// `self + d`, saturating at [`Nanos::MAX`].
    #[inline]
    pub const fn saturating_add(self, d: Duration) -> Nanos {
        match self.checked_add(d) {
            Some(n) => n,
            None => Nanos::MAX,
        }
    }

    /// `self - d`, saturating at [`Nanos::ZERO`].
    #[inline]
    pub const fn saturating_sub(self, d: Duration) -> Nanos {
        let sub = d.as_nanos();
        if sub > self.0 as u128 {
            Nanos::ZERO
        } else {
            Nanos(self.0 - sub as u64)
        }
    }
}

impl Add<Duration> for Nanos {
    type Output = Nanos;
    /// Saturating: never panics.
    #[inline]
    fn add(self, d: Duration) -> Nanos {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Nanos {
    type Output = Nanos;
    /// Saturating at the origin: never panics.
    #[inline]
    fn sub(self, d: Duration) -> Nanos {
        self.saturating_sub(d)
    }
}

impl Sub<Nanos> for Nanos {
    type Output = Duration;
    /// The elapsed time, zero if `earlier` is later (like [`Nanos::duration_since`]).
    #[inline]
    fn sub(self, earlier: Nanos) -> Duration {
        self.duration_since(earlier)
    }
}

impl From<Duration> for Nanos {
    fn from(d: Duration) -> Nanos {
        Nanos::from_duration(d)
    }
}

impl From<Nanos> for Duration {
    fn from(n: Nanos) -> Duration {
        n.as_duration()
    }
}

impl fmt::Debug for Nanos {
    /// Shown as the duration since the origin, e.g. `Nanos(1.5ms)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nanos({:?})", self.as_duration())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Nanos::MAX + Duration::from_secs(1), Nanos::MAX);
        assert_eq!(Nanos::ZERO - Duration::from_secs(1), Nanos::ZERO);
        assert_eq!(Nanos::from_duration(Duration::MAX), Nanos::MAX);
        assert_eq!(Nanos::from_nanos(5).checked_add(Duration::MAX), None);
        assert_eq!(Nanos::from_nanos(5) - Nanos::from_nanos(9), Duration::ZERO);
    }

    #[test]
    fn debug_shows_duration() {
        assert_eq!(
            format!("{:?}", Nanos::from_nanos(1_500_000)),
            "Nanos(1.5ms)"
        );
    }
}
