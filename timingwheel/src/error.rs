//! [`TimerError`], [`ConfigError`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Why an operation on a [`TimingWheel`](crate::TimingWheel) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerError {
    /// The wheel was stopped ([`stop`](crate::TimingWheel::stop), or every handle dropped).
    Closed,
    /// The delay is longer than the wheel's
    /// [`max_delay`](crate::TimingWheel::max_delay): `tick × (slots^levels −
    /// slots^(levels − 1) − 1)`. Add a level or use a longer tick.
    DelayTooLong {
        /// The longest delay the wheel accepts, at any moment: setting a delay up to it
        /// succeeds.
        max: Duration,
    },
    /// The wheel already holds its maximum of about 4.29 billion timers.
    Full,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerError::Closed => f.write_str("the timing wheel is stopped"),
            TimerError::DelayTooLong { max } => {
                write!(f, "delay beyond the timing wheel's span (at most {max:?})")
            }
            TimerError::Full => f.write_str("the timing wheel holds the most timers it can"),
        }
    }
}

impl Error for TimerError {}

/// Invalid [`Builder`](crate::Builder) settings, reported by `build`/`spawn`/`stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The tick must be at least one nanosecond.
    ZeroTick,
    /// Slots per level must be a power of two from 2 to 64 (one `u64` occupancy bitmap per
    /// level).
    SlotsPerLevel(usize),
    /// Levels must be at least 1, slots^levels at most 2^60 ticks, and the span must hold
    /// a one-tick delay (2 slots need 2 levels).
    Levels {
        /// The levels asked for.
        levels: usize,
        /// The slots per level asked for.
        slots_per_level: usize,
    },
    /// The capacity to reserve is above
    /// [`Builder::MAX_CAPACITY`](crate::Builder::MAX_CAPACITY) (2^22 timers).
    Capacity(usize),
    /// The driver thread could not be spawned.
    Spawn(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroTick => f.write_str("timing wheel tick must be longer than zero"),
            ConfigError::SlotsPerLevel(n) => write!(
                f,
                "timing wheel slots per level must be a power of two in 2..=64, got {n}"
            ),
            ConfigError::Levels {
                levels,
                slots_per_level,
            } => write!(
                f,
                "timing wheel levels must be >= 1 with slots^levels <= 2^60, got {levels} levels of {slots_per_level} slots"
            ),
            ConfigError::Capacity(n) => {
                write!(
                    f,
                    "timing wheel capacity {n} is above the maximum of {} timers reserved up front",
                    crate::Builder::MAX_CAPACITY
                )
            }
            ConfigError::Spawn(e) => {
                write!(f, "could not spawn the timing wheel's driver thread: {e}")
            }
        }
    }
}

impl Error for ConfigError {}
