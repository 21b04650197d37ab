//! [`ClockUnderTest`]: the adapter the clock suite drives, for keel's clocks and std's.

use std::time::Instant;

use keel_timex::{Clock, CoarseClock, ManualClock, MonotonicClock, Nanos};

/// A clock as the `clock now` benchmark sees it: made once, then read in a loop.
pub trait ClockUnderTest {
    const NAME: &'static str;
    type Reading;
    /// A ready-to-read clock (for [`CoarseClock`], with its upkeep thread running).
    fn create() -> Self;
    /// One reading.
    fn read(&self) -> Self::Reading;
}

/// `std::time::Instant::now()`: the baseline every keel clock is compared against.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdInstant;

impl ClockUnderTest for StdInstant {
    const NAME: &'static str = "std Instant::now";
    type Reading = Instant;
    fn create() -> Self {
        StdInstant
    }
    #[inline]
    fn read(&self) -> Instant {
        Instant::now()
    }
}

/// The keel clocks all read through [`Clock::now`]; only the name differs.
macro_rules! keel_clock {
    ($clock:ty, $name:literal) => {
        impl ClockUnderTest for $clock {
            const NAME: &'static str = $name;
            type Reading = Nanos;
            fn create() -> Self {
                <$clock>::new()
            }
            #[inline]
            fn read(&self) -> Nanos {
                self.now()
            }
        }
    };
}

keel_clock!(MonotonicClock, "keel MonotonicClock");
keel_clock!(CoarseClock, "keel CoarseClock");
keel_clock!(ManualClock, "keel ManualClock");
