//! [`Rejected`], [`BreakerError`] and [`ConfigError`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// The breaker refused the call: the downstream is failing and this request was dropped to
/// give it room. Retrying at once is likely to be refused too.
///
/// ```
/// # use keel_breaker::Rejected;
/// assert_eq!(Rejected::new().to_string(), "circuit breaker is open");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rejected {
    _private: (),
}

impl Rejected {
    /// A rejection (for fallbacks and tests that need one).
    pub const fn new() -> Rejected {
        Rejected { _private: () }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit breaker is open")
    }
}

impl Error for Rejected {}

/// The result error of a call through a breaker: either the breaker refused it, or the call
/// ran and returned its own error, kept as it was.
///
/// Map it to a 503 / `UNAVAILABLE` with [`is_rejected`](BreakerError::is_rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError<E> {
    /// The breaker refused the call; it did not run.
    Rejected(Rejected),
    /// The call ran and failed (or failed acceptably) with this error.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// Whether the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, BreakerError::Rejected(_))
    }

    /// The call's own error, if it ran.
    pub fn inner(&self) -> Option<&E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::Rejected(_) => None,
        }
    }

    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::Rejected(_) => None,
        }
    }
}

impl<E> From<Rejected> for BreakerError<E> {
    fn from(r: Rejected) -> Self {
        BreakerError::Rejected(r)
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Rejected(r) => r.fmt(f),
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Rejected(r) => Some(r),
            BreakerError::Inner(e) => Some(e),
        }
    }
}

/// A configuration the breaker refuses, from [`Builder::build`](crate::Builder::build).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `k` must be a finite number of at least 1.1 (go-zero's `minK`); go-zero uses 1.5.
    KOutOfRange {
        /// The value given.
        k: f64,
    },
    /// The window needs at least one bucket; go-zero uses 40.
    ZeroBuckets,
    /// The window must give every bucket at least one nanosecond.
    WindowTooShort {
        /// The window given.
        window: Duration,
        /// The bucket count given.
        buckets: u32,
    },
    /// The force-pass interval must be longer than zero; go-zero uses 1 s.
    ZeroForcePass,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::KOutOfRange { k } => {
                write!(
                    f,
                    "breaker k must be a finite number >= 1.1 (go-zero uses 1.5), got {k}"
                )
            }
            ConfigError::ZeroBuckets => f.write_str("breaker window needs at least 1 bucket"),
            ConfigError::WindowTooShort { window, buckets } => write!(
                f,
                "breaker window {window:?} is too short for {buckets} buckets of at least 1 ns"
            ),
            ConfigError::ZeroForcePass => {
                f.write_str("breaker force-pass interval must be longer than zero")
            }
        }
    }
}

impl Error for ConfigError {}
