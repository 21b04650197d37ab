//! [`Denied`], [`ConfigError`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

use crate::Rate;

/// Why a request was not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// Over the limit: retry after `retry_after` (when enough tokens will have refilled, or
    /// the fixed window ends).
    Limited {
        /// How long until the same request would be allowed, if nothing else takes tokens.
        retry_after: Duration,
    },
    /// Asking for more than the bucket can ever hold (`n > burst`): waiting will never
    /// help, so this is reported at once instead of being retried forever.
    NeverFits {
        /// Tokens asked for.
        n: u32,
        /// The bucket's capacity.
        burst: u32,
    },
    /// The backend failed and the failure policy is
    /// [`FailClosed`](crate::FailurePolicy::FailClosed).
    Unavailable,
    /// A new key arrived while the in-memory table was at its key cap and no idle key could
    /// be evicted (see `max_keys`); retry after `retry_after`, when the oldest entry is idle.
    KeyCapacity {
        /// When an entry is sure to be evictable.
        retry_after: Duration,
    },
}

impl Denied {
    /// The HTTP status a server answers with: 429 Too Many Requests, or 503 when the
    /// limiter's backend is down and the policy is fail-closed.
    pub fn http_status(&self) -> u16 {
        match self {
            Denied::Unavailable => 503,
            _ => 429,
        }
    }

    /// The gRPC status code a server answers with: 8, `RESOURCE_EXHAUSTED`, or 14,
    /// `UNAVAILABLE`, when the limiter's backend is down and the policy is fail-closed (the
    /// client may retry elsewhere). With feature `tonic`, `tonic::Status::from(denied)`
    /// builds the whole status.
    ///
    /// ```
    /// # use keel_limiter::Denied;
    /// assert_eq!(Denied::Unavailable.grpc_code(), 14);
    /// assert_eq!(Denied::NeverFits { n: 3, burst: 2 }.grpc_code(), 8);
    /// ```
    pub fn grpc_code(&self) -> i32 {
        match self {
            Denied::Unavailable => 14,
            _ => 8,
        }
    }

    /// How long to wait before retrying, if waiting helps (the `Retry-After` header).
    pub fn retry_after(&self) -> Option<Duration> {
        match *self {
            Denied::Limited { retry_after } | Denied::KeyCapacity { retry_after } => {
                Some(retry_after)
            }
            Denied::NeverFits { .. } | Denied::Unavailable => None,
        }
    }

    /// [`retry_after`](Denied::retry_after) in whole seconds, as a `Retry-After` header
    /// carries it: rounded up (a client retrying on time is not refused again), and at
    /// least 1 (a header of 0 would invite an immediate retry, refused again). `None` when
    /// waiting does not help or the wait is unknown ([`Denied::NeverFits`],
    /// [`Denied::Unavailable`]).
    ///
    /// ```
    /// # use keel_limiter::Denied;
    /// # use std::time::Duration;
    /// let limited = Denied::Limited { retry_after: Duration::from_millis(1500) };
    /// assert_eq!(limited.retry_after_secs(), Some(2));
    /// let limited = Denied::Limited { retry_after: Duration::from_millis(10) };
    /// assert_eq!(limited.retry_after_secs(), Some(1));
    /// assert_eq!(Denied::Unavailable.retry_after_secs(), None);
    /// ```
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after().map(|d| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            secs.max(1)
        })
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Limited { retry_after } => {
                write!(f, "rate limited: retry after {retry_after:?}")
            }
            Denied::NeverFits { n, burst } => write!(
                f,
                "{n} tokens can never be granted: the bucket holds at most {burst}"
            ),
            Denied::Unavailable => f.write_str("rate limiter backend unavailable"),
            Denied::KeyCapacity { retry_after } => {
                write!(
                    f,
                    "rate limiter key table full: retry after {retry_after:?}"
                )
            }
        }
    }
}

impl Error for Denied {}

/// A limiter configuration that cannot work, refused at construction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A rate of zero tokens, or over a zero period.
    ZeroRate,
    /// A bucket that holds no token.
    ZeroBurst,
    /// A period limiter with a quota of zero.
    ZeroQuota,
    /// A period limiter with a period shorter than 1 ms (windows are counted in whole
    /// milliseconds), zero included.
    ZeroPeriod,
    /// A quota above what the in-memory window counts (2^24 − 2 per window).
    QuotaTooLarge {
        /// The quota given.
        quota: u32,
    },
    /// More than one token per nanosecond.
    RateTooHigh {
        /// The rate given.
        rate: Rate,
    },
    /// `burst × interval`, the time an empty bucket takes to fill, is longer than
    /// [`TokenBuilder::MAX_REFILL`](crate::TokenBuilder::MAX_REFILL) (2^62 − 1 ns, about
    /// 146 years).
    BurstTooLong {
        /// The rate given.
        rate: Rate,
        /// The burst given.
        burst: u32,
    },
    /// A key cap of zero.
    ZeroMaxKeys,
    /// The Redis URL or client could not be used.
    Redis(String),
    /// A lease batch must lie in `1..=burst` (and below 2^24).
    LeaseOutOfRange {
        /// The batch given.
        batch: u32,
        /// The bucket's capacity.
        burst: u32,
    },
    /// A lease takes tokens from a shared bucket: it needs the Redis backend.
    LeaseNeedsRedis,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroRate => {
                f.write_str("a rate needs at least one token per non-zero period")
            }
            ConfigError::ZeroBurst => f.write_str("a token bucket needs a burst of at least 1"),
            ConfigError::ZeroQuota => f.write_str("a period limiter needs a quota of at least 1"),
            ConfigError::ZeroPeriod => {
                f.write_str("a period limiter needs a period of at least 1 ms")
            }
            ConfigError::QuotaTooLarge { quota } => {
                write!(
                    f,
                    "quota {quota} is above the in-memory limit of 16777214 per window"
                )
            }
            ConfigError::RateTooHigh { rate } => {
                write!(f, "rate {rate:?} is above one token per nanosecond")
            }
            ConfigError::BurstTooLong { rate, burst } => {
                write!(
                    f,
                    "a burst of {burst} at {rate:?} takes longer than the maximum of {:?} \
                     (146 years) to refill",
                    crate::TokenBuilder::MAX_REFILL
                )
            }
            ConfigError::ZeroMaxKeys => f.write_str("max_keys must be at least 1"),
            ConfigError::Redis(e) => write!(f, "redis: {e}"),
            ConfigError::LeaseOutOfRange { batch, burst } => {
                write!(
                    f,
                    "a lease of {batch} tokens must lie in 1..={burst} (the burst)"
                )
            }
            ConfigError::LeaseNeedsRedis => {
                f.write_str("a lease takes tokens from a shared bucket: configure redis too")
            }
        }
    }
}

impl Error for ConfigError {}
