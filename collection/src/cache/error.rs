//! The cache's errors: a configuration refused at `build`, and why a `take` has no value.

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
    /// The capacity does not fit the shards (more than about 4 billion entries per shard).
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
                    "a capacity of {n} entries does not fit the cache's shards"
                )
            }
        }
    }
}

impl Error for ConfigError {}

/// Why [`Cache::take`](super::Cache::take) (or one of its variants) returned no value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TakeError {
    /// The loader returned an error. Every caller that joined that load gets the same error;
    /// nothing was cached, so the next `take` loads again.
    Failed(LoadError),
    /// The loader panicked. Every caller that joined that load gets this; nothing was cached,
    /// so the next `take` loads again.
    LoaderPanicked,
    /// The key is known not to exist: [`take`](super::Cache::take) met a "not found" remembered
    /// by negative caching, or joined a [`take_optional`](super::Cache::take_optional) load
    /// that found nothing.
    NotFound,
}

impl fmt::Display for TakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeError::Failed(e) => write!(f, "the cache loader failed: {e}"),
            TakeError::LoaderPanicked => f.write_str("the cache loader panicked"),
            TakeError::NotFound => f.write_str("the key was not found by the cache loader"),
        }
    }
}

impl Error for TakeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TakeError::Failed(e) => Some(e),
            TakeError::LoaderPanicked | TakeError::NotFound => None,
        }
    }
}

/// A loader's error, shared by every caller of one load (cloning is an `Arc` clone).
///
/// Loaders may return any error that converts into `Box<dyn Error + Send + Sync>` (a
/// `std::io::Error`, a `String`, your own error type, `anyhow::Error`); get it back with
/// [`downcast_ref`](LoadError::downcast_ref).
///
/// ```
/// use keel_collection::cache::{Cache, TakeError};
/// use std::time::Duration;
///
/// let cache: Cache<&str, u64> = Cache::new(Duration::from_secs(60))?;
/// let error = cache
///     .take("user:7", || Err(std::io::Error::other("database down")))
///     .unwrap_err();
/// let TakeError::Failed(load) = error else { panic!("expected the loader's error") };
/// assert_eq!(load.downcast_ref::<std::io::Error>().unwrap().to_string(), "database down");
/// # Ok::<(), keel_collection::cache::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct LoadError(Arc<dyn Error + Send + Sync>);

impl LoadError {
    pub(super) fn new(error: Box<dyn Error + Send + Sync>) -> Self {
        LoadError(Arc::from(error))
    }

    /// The loader's error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The loader's error, if it is a `T`.
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for LoadError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// What a load in flight ends with when it has no value: shared with every joined caller.
#[derive(Debug)]
pub(super) enum Failure {
    Load(LoadError),
    Panicked,
}

impl Failure {
    pub(super) fn to_take_error(&self) -> TakeError {
        match self {
            Failure::Load(e) => TakeError::Failed(e.clone()),
            Failure::Panicked => TakeError::LoaderPanicked,
        }
    }
}
