//! [`Overloaded`] and [`ConfigError`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// The shedder refused the request: the CPU is (or within the cool-off was) above the
/// threshold and more requests are in flight than the service has shown it can sustain.
///
/// Answer quickly with HTTP [`503`](Overloaded::HTTP_STATUS) or gRPC
/// [`UNAVAILABLE`](Overloaded::GRPC_CODE); the client should back off or try another
/// instance. The fields say why, for logs.
///
/// ```
/// # use keel_shedder::Overloaded;
/// assert_eq!(Overloaded::HTTP_STATUS, 503);
/// assert_eq!(Overloaded::GRPC_CODE, 14);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overloaded {
    pub(crate) cpu: Option<u32>,
    pub(crate) in_flight: u64,
    pub(crate) limit: f64,
}

impl Overloaded {
    /// The HTTP status an overloaded server answers with: 503 Service Unavailable.
    pub const HTTP_STATUS: u16 = 503;
    /// The gRPC status code: 14, `UNAVAILABLE` (the client may retry elsewhere).
    pub const GRPC_CODE: i32 = 14;

    /// A refusal with these figures, for tests of code that handles one (an error
    /// handler, a fallback). The shedder itself fills them from its decision.
    pub fn new(cpu: Option<u32>, in_flight: u64, limit: f64) -> Overloaded {
        Overloaded {
            cpu,
            in_flight,
            limit,
        }
    }

    /// The CPU usage (millis) at the decision, if there was a signal.
    pub fn cpu(&self) -> Option<u32> {
        self.cpu
    }

    /// Requests in flight at the decision (for a refusal that repeats the one before it,
    /// at that decision: see the crate docs' "Refusals are the cheapest decision").
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The in-flight limit they exceeded (max flight × the CPU's overload factor).
    pub fn limit(&self) -> f64 {
        self.limit
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("service overloaded")
    }
}

impl Error for Overloaded {}

/// A shedder configuration that cannot work, rejected by
/// [`Builder::build`](crate::Builder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The CPU threshold must lie in 1..=999 millis: at 1000 or more the overload factor
    /// divides by zero and nothing is ever shed (go-zero accepts it silently), at 0 the
    /// service always counts as overloaded.
    ThresholdOutOfRange {
        /// The threshold given.
        threshold: u32,
    },
    /// A window needs at least one bucket.
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
    /// `window / buckets` is shorter than a nanosecond.
    WindowTooShort {
        /// The window given.
        window: Duration,
        /// The bucket count given.
        buckets: u32,
    },
    /// Latency sampling needs a period of at least 1 (1 = time every request).
    ZeroSamplePeriod,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ThresholdOutOfRange { threshold } => write!(
                f,
                "CPU threshold {threshold} is out of range: it must lie in 1..=999 millis"
            ),
            ConfigError::ZeroBuckets => f.write_str("a shedder window needs at least one bucket"),
            ConfigError::TooManyBuckets { buckets, max } => write!(
                f,
                "a shedder window of {buckets} buckets is above the maximum of {max} buckets"
            ),
            ConfigError::WindowTooLong { window, max } => write!(
                f,
                "a shedder window of {window:?} is longer than the maximum of {max:?} (584 years)"
            ),
            ConfigError::WindowTooShort { window, buckets } => write!(
                f,
                "a window of {window:?} cannot be split into {buckets} buckets"
            ),
            ConfigError::ZeroSamplePeriod => {
                f.write_str("the latency sample period must be at least 1")
            }
        }
    }
}

impl Error for ConfigError {}
