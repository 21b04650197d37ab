//! [`Closed`], [`ResourceError`] and [`CloseErrors`].

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The [`ResourceManager`](super::ResourceManager) was closed; it holds and creates nothing
/// any more.
///
/// ```
/// # use keel_syncx::resource::Closed;
/// assert_eq!(Closed::new().to_string(), "resource manager is closed");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Closed {
    _private: (),
}

impl Closed {
    /// The error (for tests and fallbacks that need one).
    pub const fn new() -> Closed {
        Closed { _private: () }
    }
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("resource manager is closed")
    }
}

impl Error for Closed {}

/// Why [`ResourceManager::get_or_create`](super::ResourceManager::get_or_create) returned
/// no resource.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResourceError<E> {
    /// The manager was closed before or while the resource was created (go-zero panics
    /// here).
    Closed(Closed),
    /// `create` failed. The error is shared (hence the `Arc`) with callers that waited for
    /// the same create, and is not cached: the next call creates again.
    Create(Arc<E>),
}

impl<E> ResourceError<E> {
    /// Whether the manager was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, ResourceError::Closed(_))
    }

    /// The create error, if that is why.
    pub fn create_error(&self) -> Option<&E> {
        match self {
            ResourceError::Create(e) => Some(e),
            ResourceError::Closed(_) => None,
        }
    }
}

impl<E> Clone for ResourceError<E> {
    fn clone(&self) -> ResourceError<E> {
        match self {
            ResourceError::Closed(c) => ResourceError::Closed(*c),
            ResourceError::Create(e) => ResourceError::Create(Arc::clone(e)),
        }
    }
}

impl<E> From<Closed> for ResourceError<E> {
    fn from(c: Closed) -> ResourceError<E> {
        ResourceError::Closed(c)
    }
}

impl<E: fmt::Display> fmt::Display for ResourceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceError::Closed(c) => c.fmt(f),
            ResourceError::Create(e) => write!(f, "creating resource failed: {e}"),
        }
    }
}

impl<E: Error + 'static> Error for ResourceError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ResourceError::Closed(c) => Some(c),
            ResourceError::Create(e) => Some(&**e),
        }
    }
}

/// The resources whose [`Close::close`](super::Close::close) failed during
/// [`ResourceManager::close`](super::ResourceManager::close), with their keys, in no
/// particular order. Never empty. Like Go's `errors.Join`, `Display` puts one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseErrors<K, E> {
    errors: Vec<(K, E)>,
}

impl<K, E> CloseErrors<K, E> {
    pub(super) fn new(errors: Vec<(K, E)>) -> CloseErrors<K, E> {
        debug_assert!(!errors.is_empty());
        CloseErrors { errors }
    }

    /// Each failed key and its error.
    pub fn errors(&self) -> &[(K, E)] {
        &self.errors
    }

    /// Each failed key and its error, owned.
    pub fn into_errors(self) -> Vec<(K, E)> {
        self.errors
    }
}

impl<K, E: fmt::Display> fmt::Display for CloseErrors<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (_, e)) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<K: fmt::Debug, E: fmt::Debug + fmt::Display> Error for CloseErrors<K, E> {}
