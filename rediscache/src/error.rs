//! The cache's errors.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A configuration [`Builder::build`](crate::Builder::build) refused. Every bound is
/// documented on the builder method that sets it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cache name was empty, or held `{` or `}` (they would break the keys' hash tag).
    Name(String),
    /// A duration was outside its bounds: which option, the value.
    Duration(&'static str, Duration),
    /// The jitter was outside `0.0..=1.0` (or not a number).
    Jitter(f64),
    /// The local tier's capacity was zero.
    ZeroCapacity,
    /// More delete retries than [`MAX_DELETE_ATTEMPTS`](crate::MAX_DELETE_ATTEMPTS).
    DeleteAttempts(u32),
    /// The local tier (keel-collection's cache) refused its configuration.
    Local(keel_collection::cache::ConfigError),
    /// The timing wheel of the delete retries refused its configuration.
    RetryWheel(String),
    /// `build` was called outside a tokio runtime: the subscription and the delete retries
    /// run as tokio tasks.
    NoRuntime,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Name(n) => {
                write!(
                    f,
                    "the cache name must be non-empty without '{{' or '}}', got {n:?}"
                )
            }
            ConfigError::Duration(what, d) => write!(f, "{what} out of bounds: {d:?}"),
            ConfigError::Jitter(j) => write!(f, "the jitter must be in 0.0..=1.0, got {j}"),
            ConfigError::ZeroCapacity => f.write_str("the local capacity must be greater than 0"),
            ConfigError::DeleteAttempts(n) => write!(
                f,
                "at most {} delete attempts, got {n}",
                crate::MAX_DELETE_ATTEMPTS
            ),
            ConfigError::Local(e) => write!(f, "the local tier: {e}"),
            ConfigError::RetryWheel(e) => write!(f, "the delete retry wheel: {e}"),
            ConfigError::NoRuntime => f.write_str("build the cache inside a tokio runtime"),
        }
    }
}

impl Error for ConfigError {}

/// What kind of Redis failure an operation met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisErrorKind {
    /// No reply within the cache's [`timeout`](crate::Builder::timeout) (or the client's).
    Timeout,
    /// Not connected, connection refused, reset or lost. Server-wide.
    Connection,
    /// The server answered with an error (read-only replica, out of memory, loading, a
    /// script error, a wrong type at the key, a cluster redirect not followed).
    Server,
    /// A reply that is not what the command answers.
    UnexpectedReply,
}

/// A Redis command that failed. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisError {
    kind: RedisErrorKind,
    message: Arc<str>,
}

impl RedisError {
    pub(crate) fn new(kind: RedisErrorKind, message: impl Into<Arc<str>>) -> RedisError {
        RedisError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn timeout(after: Duration) -> RedisError {
        RedisError::new(
            RedisErrorKind::Timeout,
            format!("no reply within {after:?}"),
        )
    }

    pub(crate) fn from_redis(e: &redis::RedisError) -> RedisError {
        let kind = if e.is_timeout() {
            RedisErrorKind::Timeout
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            RedisErrorKind::Connection
        } else if matches!(
            e.kind(),
            // An error code the client does not know (`WRONGTYPE`, a module's) is `Extension`.
            redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
        ) {
            RedisErrorKind::Server
        } else if e.kind() == redis::ErrorKind::UnexpectedReturnType
            || e.kind() == redis::ErrorKind::Parse
        {
            RedisErrorKind::UnexpectedReply
        } else {
            RedisErrorKind::Connection
        };
        RedisError::new(kind, e.to_string())
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> RedisErrorKind {
        self.kind
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis {:?} error: {}", self.kind, self.message)
    }
}

impl Error for RedisError {}

/// Why [`RedisCache::take`](crate::RedisCache::take) (or
/// [`take_optional`](crate::RedisCache::take_optional)) returned no value; `E` is the
/// loader's error type.
#[derive(Debug)]
#[non_exhaustive]
pub enum TakeError<E = Infallible> {
    /// The loader failed; every caller that shared that load gets the same `Arc`. Nothing
    /// was cached.
    Loader(Arc<E>),
    /// The loader panicked (the panic was caught). Nothing was cached; the rebuild lease,
    /// if this instance held it, is released.
    LoaderPanicked,
    /// The key does not exist: the loader said so now, or a placeholder remembers it
    /// ([`take`](crate::RedisCache::take) only; `take_optional` answers `Ok(None)`).
    NotFound,
    /// Redis failed and the policy is [`FailurePolicy::FailFast`](crate::FailurePolicy):
    /// the loader was not called.
    Redis(RedisError),
    /// Another instance holds the key's rebuild lease, and no value appeared within
    /// [`lease_wait`](crate::Builder::lease_wait) (and there was no stale value to serve).
    Busy,
    /// Redis failed, the policy is [`FailurePolicy::Load`](crate::FailurePolicy), and all
    /// of its limit's permits were taken: the loader was not called.
    Overloaded(RedisError),
    /// [`take_blocking`](crate::RedisCache::take_blocking) (or
    /// [`take_optional_blocking`](crate::RedisCache::take_optional_blocking)) was called
    /// from inside a tokio runtime, where blocking the thread would stall the runtime's
    /// tasks: use [`take`](crate::RedisCache::take) there. Nothing was read or loaded.
    InAsyncContext,
}

impl<E> TakeError<E> {
    /// The loader's error, if it returned one.
    pub fn loader_error(&self) -> Option<&E> {
        match self {
            TakeError::Loader(e) => Some(e),
            _ => None,
        }
    }
}

impl<E> Clone for TakeError<E> {
    fn clone(&self) -> Self {
        match self {
            TakeError::Loader(e) => TakeError::Loader(Arc::clone(e)),
            TakeError::LoaderPanicked => TakeError::LoaderPanicked,
            TakeError::NotFound => TakeError::NotFound,
            TakeError::Redis(e) => TakeError::Redis(e.clone()),
            TakeError::Busy => TakeError::Busy,
            TakeError::Overloaded(e) => TakeError::Overloaded(e.clone()),
            TakeError::InAsyncContext => TakeError::InAsyncContext,
        }
    }
}

impl<E: fmt::Display> fmt::Display for TakeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeError::Loader(e) => write!(f, "the cache loader failed: {e}"),
            TakeError::LoaderPanicked => f.write_str("the cache loader panicked"),
            TakeError::NotFound => f.write_str("the key was not found"),
            TakeError::Redis(e) => write!(f, "cache unavailable (fail fast): {e}"),
            TakeError::Busy => {
                f.write_str("another instance is rebuilding the key; no value in time")
            }
            TakeError::Overloaded(e) => {
                write!(f, "cache unavailable and the database limit is full: {e}")
            }
            TakeError::InAsyncContext => f.write_str(
                "a blocking cache read inside an async context (use take, not take_blocking)",
            ),
        }
    }
}

impl<E: Error + 'static> Error for TakeError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TakeError::Loader(e) => Some(&**e),
            TakeError::Redis(e) | TakeError::Overloaded(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`RedisCache::set`](crate::RedisCache::set) failed. This instance's local tier no
/// longer holds the key either way.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SetError {
    /// The codec refused the value; nothing was written.
    Codec(Arc<crate::CodecError>),
    /// Redis failed; the old value (if any) may remain in Redis and other instances.
    Redis(RedisError),
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::Codec(e) => write!(f, "the value was not stored: {e}"),
            SetError::Redis(e) => write!(f, "the value was not stored: {e}"),
        }
    }
}

impl Error for SetError {}

/// Why [`RedisCache::del`](crate::RedisCache::del) did not complete.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DelError {
    /// Redis failed; the delete (and its invalidation message) is queued and retried in
    /// the background with backoff (see [`Builder::delete_retries`](crate::Builder::delete_retries)).
    /// Until it succeeds, other instances may serve the old value.
    Queued(RedisError),
    /// Redis failed and retries are off (or the retry queue is closed): nothing more will
    /// be attempted.
    Failed(RedisError),
}

impl DelError {
    /// The Redis error.
    pub fn redis_error(&self) -> &RedisError {
        match self {
            DelError::Queued(e) | DelError::Failed(e) => e,
        }
    }
}

impl fmt::Display for DelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelError::Queued(e) => write!(f, "delete failed, queued for retry: {e}"),
            DelError::Failed(e) => write!(f, "delete failed: {e}"),
        }
    }
}

impl Error for DelError {}
