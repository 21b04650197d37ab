//! [`ConfigError`] and [`PoolError`].

use std::error::Error;
use std::fmt;

/// A [`Pool`](super::Pool) that cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// A pool of at most zero objects could never hand one out (go-zero panics).
    ZeroMaxSize,
    /// A max age of zero would expire every object the moment it is returned; leave
    /// `max_age` unset to keep idle objects forever.
    ZeroMaxAge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroMaxSize => f.write_str("a pool needs a max size of at least 1"),
            ConfigError::ZeroMaxAge => {
                f.write_str("a pool's max age must be above zero (leave it unset for none)")
            }
        }
    }
}

impl Error for ConfigError {}

/// Why a [`Pool`](super::Pool) handed out no object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError<E> {
    /// No object was idle and the factory failed with this error. The slot it was to fill is
    /// free again.
    Create(E),
    /// Every object was in use and none came back in time.
    Timeout,
}

impl<E> PoolError<E> {
    /// The factory's error, if that is what this is.
    pub fn into_create(self) -> Option<E> {
        match self {
            PoolError::Create(e) => Some(e),
            PoolError::Timeout => None,
        }
    }

    /// Whether no object came in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PoolError::Timeout)
    }
}

impl<E: fmt::Display> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Create(e) => write!(f, "creating a pooled object failed: {e}"),
            PoolError::Timeout => f.write_str("timed out waiting for a pooled object"),
        }
    }
}

impl<E: Error + 'static> Error for PoolError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PoolError::Create(e) => Some(e),
            PoolError::Timeout => None,
        }
    }
}
