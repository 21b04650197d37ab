//! The cache's errors: a configuration refused at `build`, and why a `take` has no value.

use std::any::Any;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A cache configuration [`Builder::build`](super::Builder::build) refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The time to live was zero: nothing could ever be served.
    ZeroTtl,
    /// The negative time to live was zero; leave it unset to not cache "not found".
    ZeroNegativeTtl,
    /// The capacity was zero; leave it unset for an unbounded cache.
    ZeroCapacity,
    /// The jitter fraction was outside `0.0..1.0` (or not a number).
    Jitter(f64),
    /// The shard count was not a power of two between 1 and [`MAX_SHARDS`](super::MAX_SHARDS).
    Shards(usize),
    /// The expiry tick was zero.
    ZeroExpiryTick,
    /// The statistics interval was zero.
    ZeroReportInterval,
    /// The capacity does not fit the shards: more than 2^31 − 1 entries per shard (so at
    /// most that times the shard count, 1024 shards at most).
    CapacityTooLarge(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroTtl => f.write_str("the cache's time to live must be greater than 0"),
            ConfigError::ZeroNegativeTtl => {
                f.write_str("the negative time to live must be greater than 0 (or left unset)")
            }
            ConfigError::ZeroCapacity => {
                f.write_str("the cache's capacity must be greater than 0 (or left unset)")
            }
            ConfigError::Jitter(j) => {
                write!(f, "the expiry jitter must be in 0.0..1.0, got {j}")
            }
            ConfigError::Shards(n) => write!(
                f,
                "the shard count must be a power of two from 1 to {}, got {n}",
                super::MAX_SHARDS
            ),
            ConfigError::ZeroExpiryTick => f.write_str("the expiry tick must be greater than 0"),
            ConfigError::ZeroReportInterval => {
                f.write_str("the statistics interval must be greater than 0")
            }
            ConfigError::CapacityTooLarge(n) => {
                write!(
                    f,
                    "a capacity of {n} entries does not fit the cache's shards: at most {} per shard",
                    super::shard::MAX_PER_SHARD
                )
            }
        }
    }
}

impl Error for ConfigError {}

/// Why [`Cache::take`](super::Cache::take) (or one of its variants) returned no value; `E`
/// is the loader's error type.
///
/// The loader's error reaches the caller typed: [`Failed`](TakeError::Failed) holds it in an
/// [`Arc`], the very same one for every caller that shared the load (as moka's
/// `try_get_with` gives `Arc<E>`), so `E` need not be `Clone`. The default, `Infallible`, is
/// the error of a loader that cannot fail: only a panic or a remembered "not found" is left.
///
/// ```
/// use keel_collection::cache::{Cache, TakeError};
/// use std::time::Duration;
///
/// #[derive(Debug, PartialEq)]
/// enum DbError { Timeout, Refused }
///
/// let cache: Cache<&str, u64> = Cache::new(Duration::from_secs(60))?;
/// let error = cache.take("user:7", || Err(DbError::Timeout)).unwrap_err();
/// let TakeError::Failed(db) = &error else { panic!("expected the loader's error") };
/// assert_eq!(**db, DbError::Timeout); // an Arc<DbError>: no downcast
/// assert_ne!(error.failed(), Some(&DbError::Refused));
/// # Ok::<(), keel_collection::cache::ConfigError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TakeError<E = Infallible> {
    /// The loader returned this error. Every caller that joined that load (and whose loader
    /// has the same error type: see [`Cache::take`](super::Cache::take)) gets the same `Arc`;
    /// nothing was cached, so the next `take` loads again.
    Failed(Arc<E>),
    /// The loader panicked. Every caller that joined that load gets this; nothing was cached,
    /// so the next `take` loads again.
    LoaderPanicked,
    /// The key is known not to exist: [`take`](super::Cache::take) met a "not found" remembered
    /// by negative caching, or joined a [`take_optional`](super::Cache::take_optional) load
    /// that found nothing.
    NotFound,
}

impl<E> TakeError<E> {
    /// The loader's error, if it returned one.
    #[must_use]
    pub fn failed(&self) -> Option<&E> {
        match self {
            TakeError::Failed(error) => Some(error),
            TakeError::LoaderPanicked | TakeError::NotFound => None,
        }
    }
}

// By hand: a derive would require `E: Clone`, but the error is shared through an `Arc`.
impl<E> Clone for TakeError<E> {
    fn clone(&self) -> Self {
        match self {
            TakeError::Failed(error) => TakeError::Failed(Arc::clone(error)),
            TakeError::LoaderPanicked => TakeError::LoaderPanicked,
            TakeError::NotFound => TakeError::NotFound,
        }
    }
}

impl<E: fmt::Display> fmt::Display for TakeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeError::Failed(e) => write!(f, "the cache loader failed: {e}"),
            TakeError::LoaderPanicked => f.write_str("the cache loader panicked"),
            TakeError::NotFound => f.write_str("the key was not found by the cache loader"),
        }
    }
}

impl<E: Error + 'static> Error for TakeError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TakeError::Failed(e) => Some(&**e),
            TakeError::LoaderPanicked | TakeError::NotFound => None,
        }
    }
}

/// What a load in flight ends with when it has no value: shared with every joined caller.
///
/// Callers of one key may have loaders with different error types, so the error is kept as
/// `Any` and each caller takes it back as its own type, or learns that it cannot.
#[derive(Debug)]
pub(super) enum Failure {
    /// An `Arc<E>` of the leader's `E`: downcasting gives every caller that very `Arc`.
    Load(Arc<dyn Any + Send + Sync>),
    Panicked,
}

impl Failure {
    /// The loader's error as a caller whose loader fails with `E` sees it, or `None` if the
    /// load failed with another type (the caller must load for itself).
    pub(super) fn to_take_error<E: Send + Sync + 'static>(&self) -> Option<TakeError<E>> {
        match self {
            Failure::Load(error) => Arc::clone(error)
                .downcast::<E>()
                .ok()
                .map(TakeError::Failed),
            Failure::Panicked => Some(TakeError::LoaderPanicked),
        }
    }
}
