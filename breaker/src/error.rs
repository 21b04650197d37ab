//! [`Rejected`], [`BreakerError`] and [`ConfigError`].

use std::convert::Infallible;
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
    /// `503 Service Unavailable`: the status an HTTP server answers a rejection with.
    pub const HTTP_STATUS: u16 = 503;
    /// gRPC `UNAVAILABLE` (14).
    pub const GRPC_CODE: i32 = 14;
    /// The `Retry-After` an HTTP server sends with a rejection, in seconds: the breaker lets
    /// a probe through at least once a second (the default force-pass interval), so a
    /// client that comes back sooner is likely refused again.
    pub const RETRY_AFTER_SECS: u64 = 1;

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

/// The call ran past the breaker's deadline ([`Builder::timeout`](crate::Builder::timeout)):
/// it was ended there and counted as a failure.
///
/// ```
/// # use keel_breaker::TimedOut;
/// # use std::time::Duration;
/// let t = TimedOut::new(Duration::from_millis(250));
/// assert_eq!(t.after(), Duration::from_millis(250));
/// assert_eq!(t.to_string(), "call timed out after 250ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimedOut {
    after: Duration,
}

impl TimedOut {
    /// `504 Gateway Timeout`: the status an HTTP server answers a dependency's timeout with.
    pub const HTTP_STATUS: u16 = 504;
    /// gRPC `DEADLINE_EXCEEDED` (4).
    pub const GRPC_CODE: i32 = 4;

    /// A timeout after `after` (for fallbacks and tests that need one).
    pub const fn new(after: Duration) -> TimedOut {
        TimedOut { after }
    }

    /// The deadline the call ran past.
    pub const fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call timed out after {:?}", self.after)
    }
}

impl Error for TimedOut {}

/// The result error of a call through a breaker: the breaker refused it, the breaker's
/// deadline ended it, or the call ran and returned its own error, kept as it was.
///
/// `T` is what a timeout carries: [`TimedOut`] for async and tower calls, which a
/// [`timeout`](crate::Builder::timeout) can end; [`Infallible`] for synchronous calls, which
/// cannot be interrupted, so a `match` on their result needs no `TimedOut` arm.
///
/// Answer with [`http_status`](BreakerError::http_status) (503 for a rejection, 504 for a
/// timeout) or [`grpc_code`](BreakerError::grpc_code); with feature `axum` it is a response
/// itself.
///
/// ```
/// use keel_breaker::{Breaker, BreakerError, Mode};
///
/// let breaker = Breaker::new();
/// breaker.set_mode(Mode::ForcedOpen);
/// match breaker.call(|| Ok::<_, std::io::Error>("row")) {
///     Ok(row) => println!("{row}"),
///     Err(BreakerError::Rejected(r)) => assert_eq!(r.to_string(), "circuit breaker is open"),
///     Err(BreakerError::Inner(e)) => panic!("{e}"),
///     // no `TimedOut` arm: a synchronous call cannot time out
/// }
/// let err: BreakerError<std::io::Error> = breaker.allow().unwrap_err().into();
/// assert_eq!(err.http_status(), Some(503));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError<E, T = TimedOut> {
    /// The breaker refused the call; it did not run.
    Rejected(Rejected),
    /// The call ran past the breaker's deadline and was ended (counted as a failure).
    TimedOut(T),
    /// The call ran and failed (or failed acceptably) with this error.
    Inner(E),
}

impl<E, T> BreakerError<E, T> {
    /// Whether the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, BreakerError::Rejected(_))
    }

    /// Whether the breaker's deadline ended the call.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, BreakerError::TimedOut(_))
    }

    /// The call's own error, if it ran to completion.
    pub fn inner(&self) -> Option<&E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::Rejected(_) | BreakerError::TimedOut(_) => None,
        }
    }

    /// The call's own error, if it ran to completion.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::Rejected(_) | BreakerError::TimedOut(_) => None,
        }
    }

    /// The breaker's part as an HTTP status: 503 for a rejection, 504 for a timeout; `None`
    /// for the call's own error, whose status only the application knows.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            BreakerError::Rejected(_) => Some(Rejected::HTTP_STATUS),
            BreakerError::TimedOut(_) => Some(TimedOut::HTTP_STATUS),
            BreakerError::Inner(_) => None,
        }
    }

    /// The breaker's part as a gRPC status code: `UNAVAILABLE` (14) for a rejection,
    /// `DEADLINE_EXCEEDED` (4) for a timeout; `None` for the call's own error.
    pub fn grpc_code(&self) -> Option<i32> {
        match self {
            BreakerError::Rejected(_) => Some(Rejected::GRPC_CODE),
            BreakerError::TimedOut(_) => Some(TimedOut::GRPC_CODE),
            BreakerError::Inner(_) => None,
        }
    }
}

impl<E> BreakerError<E, Infallible> {
    /// The same error in the async calls' type (for code that handles both).
    pub fn widen(self) -> BreakerError<E> {
        match self {
            BreakerError::Rejected(r) => BreakerError::Rejected(r),
            BreakerError::Inner(e) => BreakerError::Inner(e),
        }
    }
}

impl<E> From<TimedOut> for BreakerError<E> {
    fn from(t: TimedOut) -> Self {
        BreakerError::TimedOut(t)
    }
}

impl<E, T> From<Rejected> for BreakerError<E, T> {
    fn from(r: Rejected) -> Self {
        BreakerError::Rejected(r)
    }
}

impl<E: fmt::Display, T: fmt::Display> fmt::Display for BreakerError<E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Rejected(r) => r.fmt(f),
            BreakerError::TimedOut(t) => t.fmt(f),
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static, T: Error + 'static> Error for BreakerError<E, T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Rejected(r) => Some(r),
            BreakerError::TimedOut(t) => Some(t),
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
    /// More buckets than [`Builder::MAX_BUCKETS`](crate::Builder::MAX_BUCKETS).
    TooManyBuckets {
        /// The bucket count given.
        buckets: u32,
        /// The most accepted.
        max: u32,
    },
    /// A window longer than [`Builder::MAX_WINDOW`](crate::Builder::MAX_WINDOW) (584 years).
    WindowTooLong {
        /// The window given.
        window: Duration,
        /// The longest accepted.
        max: Duration,
    },
    /// The window must give every bucket at least one nanosecond.
    WindowTooShort {
        /// The window given.
        window: Duration,
        /// The bucket count given.
        buckets: u32,
    },
    /// The force-pass interval must be longer than zero; go-zero uses 1 s.
    ZeroForcePass,
    /// The slow-call threshold must be longer than zero (every call would be slow).
    ZeroSlowCall,
    /// The call timeout must be longer than zero (every call would time out).
    ZeroTimeout,
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
            ConfigError::TooManyBuckets { buckets, max } => write!(
                f,
                "breaker window of {buckets} buckets is above the maximum of {max} buckets"
            ),
            ConfigError::WindowTooLong { window, max } => write!(
                f,
                "breaker window {window:?} is longer than the maximum of {max:?} (584 years)"
            ),
            ConfigError::WindowTooShort { window, buckets } => write!(
                f,
                "breaker window {window:?} is too short for {buckets} buckets of at least 1 ns"
            ),
            ConfigError::ZeroForcePass => {
                f.write_str("breaker force-pass interval must be longer than zero")
            }
            ConfigError::ZeroSlowCall => {
                f.write_str("breaker slow-call threshold must be longer than zero")
            }
            ConfigError::ZeroTimeout => {
                f.write_str("breaker call timeout must be longer than zero")
            }
        }
    }
}

impl Error for ConfigError {}
