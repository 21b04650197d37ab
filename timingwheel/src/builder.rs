//! [`Builder`]: validated settings, and the choice of driver.

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use keel_timex::{Clock, MonotonicClock};

use crate::core::{Geometry, Wheel};
use crate::metrics::WheelMetrics;
use crate::shared::{NO_DRIVER, Shared};
use crate::{ConfigError, TimingWheel};

/// Settings of a [`TimingWheel`], checked when it is built.
///
/// | setting | default | accepted | meaning |
/// |---|---|---|---|
/// | `tick` | (required) | at least 1 ns; any length | the resolution: timers fire at tick starts |
/// | [`slots_per_level`](Builder::slots_per_level) | 64 | a power of two, 2..=64 | slots of each level |
/// | [`levels`](Builder::levels) | 6 | at least 1, `slots^levels` at most 2^60 (and more than 2 ticks) | each level spans `slots` times the one below |
/// | [`capacity`](Builder::capacity) | 0 | at most [`MAX_CAPACITY`](Builder::MAX_CAPACITY) (2^22) | timers to reserve room for up front |
/// | [`clock`](Builder::clock) | [`MonotonicClock`] | any | where "now" comes from |
/// | [`name`](Builder::name) | `"timingwheel"` | any | the `name` label of its metrics (feature `metrics`) |
///
/// Anything else is a [`ConfigError`] from `build`, `spawn` or `stream`.
///
/// The longest delay accepted, [`TimingWheel::max_delay`], is `tick × (slots^levels −
/// slots^(levels − 1) − 1)`: the span of the wheel less one top-level slot (which keeps the
/// furthest deadline apart from the present), less the tick under way. It is accepted at
/// any moment, mid-tick included; with the defaults, 2^36 − 2^30 − 1 ticks (a 1 ms tick
/// gives 783 days). It saturates at `u64::MAX` ns (584 years) for very long ticks. The
/// wheel's own time stops 2^64 − 2^62 ns (438 years) after it was built.
///
/// ```
/// use keel_timingwheel::{Builder, TimerError};
/// use std::time::Duration;
///
/// let wheel = Builder::new(Duration::from_millis(1)).build::<u64, ()>()?;
/// let max = Duration::from_millis((1 << 36) - (1 << 30) - 1);
/// assert_eq!(wheel.max_delay(), max);
/// assert_eq!(wheel.set(1, (), max), Ok(None));
/// let longer = max + Duration::from_nanos(1);
/// assert_eq!(wheel.set(2, (), longer), Err(TimerError::DelayTooLong { max }));
/// # Ok::<(), keel_timingwheel::ConfigError>(())
/// ```
///
/// go-zero's wheel has one level of `numSlots` slots and counts laps per entry, so every
/// tick scans a slot's worth of far-away timers; this wheel's levels make each tick's work
/// proportional to what comes due.
#[derive(Debug, Clone)]
pub struct Builder<C = MonotonicClock> {
    tick: Duration,
    slots_per_level: usize,
    levels: usize,
    capacity: usize,
    clock: C,
    name: Cow<'static, str>,
}

impl Builder<MonotonicClock> {
    /// The largest [`capacity`](Builder::capacity): 2^22 timers (128 MiB of entries for
    /// `u64` keys and values, reserved at `build`). The wheel grows past its capacity as
    /// timers come, up to about 4.29 billion; the capacity only says what to reserve before.
    pub const MAX_CAPACITY: usize = 1 << 22;

    /// The [`name`](Builder::name) of a wheel not given one: `"timingwheel"`.
    pub const DEFAULT_NAME: &'static str = "timingwheel";

    /// Settings for a wheel of `tick` resolution, on the precise monotonic clock.
    pub fn new(tick: Duration) -> Builder<MonotonicClock> {
        Builder {
            tick,
            slots_per_level: 64,
            levels: 6,
            capacity: 0,
            clock: MonotonicClock::new(),
            name: Cow::Borrowed(Builder::DEFAULT_NAME),
        }
    }
}

impl<C: Clock> Builder<C> {
    /// Slots per level: a power of two from 2 to 64. Default 64.
    pub fn slots_per_level(mut self, slots: usize) -> Self {
        self.slots_per_level = slots;
        self
    }

    /// Levels. Default 6. `slots^levels` may be at most 2^60 ticks.
    pub fn levels(mut self, levels: usize) -> Self {
        self.levels = levels;
        self
    }

    /// Room for `timers` timers, reserved up front (no growth until then, and memory is
    /// never given back below it). At most [`MAX_CAPACITY`](Builder::MAX_CAPACITY).
    pub fn capacity(mut self, timers: usize) -> Self {
        self.capacity = timers;
        self
    }

    /// The clock: a [`ManualClock`](keel_timex::ManualClock) for tests, a
    /// [`CoarseClock`](keel_timex::CoarseClock) to save ~25 ns per operation when the tick is
    /// 10 ms or longer (its readings lag by up to about a millisecond), `TokioClock` under
    /// tokio's paused time.
    pub fn clock<C2: Clock>(self, clock: C2) -> Builder<C2> {
        Builder {
            tick: self.tick,
            slots_per_level: self.slots_per_level,
            levels: self.levels,
            capacity: self.capacity,
            clock,
            name: self.name,
        }
    }

    /// The wheel's name: the `name` label of its metrics (feature `metrics`; see
    /// `METRICS.md`). Default [`DEFAULT_NAME`](Builder::DEFAULT_NAME), `"timingwheel"`.
    /// Wheels with the same name share their series, so give each one its own. Any string
    /// is accepted; without the feature the name is not used.
    ///
    /// ```
    /// use keel_timingwheel::Builder;
    /// use std::time::Duration;
    ///
    /// let sessions = Builder::new(Duration::from_secs(1))
    ///     .name("sessions")
    ///     .build::<u64, ()>()?;
    /// sessions.set(1, (), Duration::from_secs(30))?;
    /// let owned = format!("shard-{}", 3);
    /// let shard = Builder::new(Duration::from_millis(10)).name(owned).build::<u64, ()>()?;
    /// # let _ = shard;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    fn validate(&self) -> Result<Geometry, ConfigError> {
        if self.tick.is_zero() {
            return Err(ConfigError::ZeroTick);
        }
        let n = self.slots_per_level;
        if !(2..=64).contains(&n) || !n.is_power_of_two() {
            return Err(ConfigError::SlotsPerLevel(n));
        }
        let bits = n.trailing_zeros() as usize;
        let ticks_bits = bits.checked_mul(self.levels);
        if self.levels == 0 || ticks_bits.is_none_or(|b| b > 60) {
            return Err(ConfigError::Levels {
                levels: self.levels,
                slots_per_level: n,
            });
        }
        let geometry = Geometry::new(bits as u32, self.levels as u32);
        if geometry.range() < 2 {
            // 2 slots on 1 level: the span less one top-level slot cannot hold one tick.
            return Err(ConfigError::Levels {
                levels: self.levels,
                slots_per_level: n,
            });
        }
        if self.capacity > Builder::MAX_CAPACITY {
            return Err(ConfigError::Capacity(self.capacity));
        }
        Ok(geometry)
    }

    pub(crate) fn shared<K: Hash + Eq, V>(
        self,
        wake_at: u64,
    ) -> Result<Arc<Shared<K, V, C>>, ConfigError> {
        let geometry = self.validate()?;
        let wheel = Wheel::new(geometry, self.capacity);
        // Registered now, with the recorder installed at this moment.
        let metrics = WheelMetrics::new(self.name);
        Ok(Arc::new(Shared::new(
            wheel,
            self.clock,
            self.tick,
            wake_at,
            geometry.range(),
            metrics,
        )))
    }

    /// A wheel with no driver: call [`TimingWheel::advance`] to fire what is due (tests,
    /// or embedding in an event loop of your own, woken at
    /// [`next_deadline`](TimingWheel::next_deadline)).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for invalid settings.
    pub fn build<K: Hash + Eq, V>(self) -> Result<TimingWheel<K, V, C>, ConfigError> {
        Ok(TimingWheel::from_shared(self.shared(NO_DRIVER)?))
    }
}
