//! [`Builder`]: validated construction of a [`RollingWindow`].

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};

use crate::window::RollingWindow;
use crate::{Bucket, ConfigError};

/// Configures a [`RollingWindow`]; made by [`RollingWindow::builder`].
///
/// Bounds, checked by `build`: `size` in `1..=`[`MAX_SIZE`](crate::MAX_SIZE) (65 536
/// buckets: each writing thread holds `size` buckets, and a read visits all of them), an
/// `interval` of at least 1 ns, and `size × interval` at most 2^64 − 1 ns (584 years).
///
/// ```
/// use keel_rollingwindow::{RollingWindow, SumCount};
/// use std::time::Duration;
///
/// let window = RollingWindow::<SumCount<i64>>::builder(50, Duration::from_millis(100))
///     .ignore_current_bucket(true)
///     .build()?;
/// assert_eq!(window.span(), Duration::from_secs(5));
///
/// let err = RollingWindow::<SumCount<i64>>::builder(0, Duration::from_millis(100)).build();
/// assert!(err.is_err());
/// # Ok::<(), keel_rollingwindow::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until .build() is called"]
pub struct Builder<B> {
    size: usize,
    interval: Duration,
    ignore_current: bool,
    _bucket: PhantomData<fn() -> B>,
}

impl<B: Bucket> Builder<B> {
    pub(crate) fn new(size: usize, interval: Duration) -> Builder<B> {
        Builder {
            size,
            interval,
            ignore_current: false,
            _bucket: PhantomData,
        }
    }

    /// Leave out the bucket being filled right now when reading, as go-zero's
    /// `IgnoreCurrentBucket` option: a partial slice would bias per-bucket statistics such
    /// as a maximum. Only applies while the newest written slice is the current one. Off by
    /// default.
    pub fn ignore_current_bucket(mut self, ignore: bool) -> Builder<B> {
        self.ignore_current = ignore;
        self
    }

    /// Builds the window on the process-wide [`CoarseClock`] (about 1 ms resolution, one
    /// atomic load per add).
    pub fn build(self) -> Result<RollingWindow<B, CoarseClock>, ConfigError> {
        self.validate()?;
        // Validate first so that a bad configuration does not start the clock upkeep.
        self.build_with_clock(CoarseClock::new())
    }

    /// Builds the window on `clock`, e.g. a [`ManualClock`](keel_timex::ManualClock) in
    /// tests. The grid of buckets is anchored at `clock.now()` at this call.
    pub fn build_with_clock<C: Clock>(self, clock: C) -> Result<RollingWindow<B, C>, ConfigError> {
        let interval = self.validate()?;
        Ok(RollingWindow::from_parts(
            self.size,
            interval,
            self.ignore_current,
            clock,
        ))
    }

    /// The interval in nanoseconds, if the configuration is valid.
    fn validate(&self) -> Result<u64, ConfigError> {
        if self.size == 0 {
            return Err(ConfigError::ZeroSize);
        }
        if self.size > crate::MAX_SIZE {
            return Err(ConfigError::TooManyBuckets {
                size: self.size,
                max: crate::MAX_SIZE,
            });
        }
        if self.interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        let overflow = ConfigError::SpanOverflow {
            size: self.size,
            interval: self.interval,
        };
        let interval = u64::try_from(self.interval.as_nanos()).map_err(|_| overflow.clone())?;
        u64::try_from(self.size)
            .ok()
            .and_then(|size| size.checked_mul(interval))
            .ok_or(overflow)?;
        Ok(interval)
    }
}

impl<B> fmt::Debug for Builder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("size", &self.size)
            .field("interval", &self.interval)
            .field("ignore_current_bucket", &self.ignore_current)
            .finish()
    }
}
