//! [`ConfigError`]: why a window could not be built.

use std::fmt;
use std::time::Duration;

/// A rejected window configuration. Returned by
/// [`Builder::build`](crate::Builder::build); a window never panics over its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `size` was 0; a window needs at least one bucket (go-zero panics here).
    ZeroSize,
    /// The bucket interval was zero.
    ZeroInterval,
    /// More buckets than [`MAX_SIZE`](crate::MAX_SIZE): every writing thread allocates
    /// `size` buckets and every read visits them, so a larger window cannot be served.
    TooManyBuckets {
        /// The requested number of buckets.
        size: usize,
        /// The largest number accepted, [`MAX_SIZE`](crate::MAX_SIZE).
        max: usize,
    },
    /// `size × interval` does not fit in 584 years of nanoseconds.
    SpanOverflow {
        /// The requested number of buckets.
        size: usize,
        /// The requested bucket interval.
        interval: Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroSize => f.write_str("rolling window size must be at least 1 bucket"),
            ConfigError::ZeroInterval => {
                f.write_str("rolling window bucket interval must be longer than zero")
            }
            ConfigError::TooManyBuckets { size, max } => write!(
                f,
                "rolling window of {size} buckets is larger than the maximum of {max} buckets"
            ),
            ConfigError::SpanOverflow { size, interval } => write!(
                f,
                "rolling window of {size} buckets of {interval:?} overflows 2^64 nanoseconds; \
                 use fewer or shorter buckets"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
