//! [`ConfigError`] and [`Timeout`].

use std::error::Error;
use std::fmt;

/// A [`Limit`](super::Limit) that cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit of zero permits could never hand one out.
    ZeroCapacity,
    /// More permits than one atomic word can count (see
    /// [`Limit::MAX_CAPACITY`](super::Limit::MAX_CAPACITY)).
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroCapacity => f.write_str("a limit needs at least one permit"),
            ConfigError::CapacityTooLarge { capacity } => write!(
                f,
                "a limit holds at most {} permits, not {capacity}",
                super::Limit::MAX_CAPACITY
            ),
        }
    }
}

impl Error for ConfigError {}

/// No permit became free in time (go-zero's `ErrTimeout`, "borrow timeout").
///
/// ```
/// # use keel_syncx::limit::Timeout;
/// assert_eq!(Timeout::new().to_string(), "timed out waiting for a permit");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timeout {
    _private: (),
}

impl Timeout {
    /// A timeout (for fallbacks and tests that need one).
    pub const fn new() -> Timeout {
        Timeout { _private: () }
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for a permit")
    }
}

impl Error for Timeout {}
