//! [`LimitError`], the error of a call through a
//! [`RateLimitService`](super::RateLimitService), and [`find_denied`] for errors that have
//! been boxed on the way.

use std::error::Error;
use std::fmt;

use crate::Denied;

/// The error of a call through a [`RateLimitService`](super::RateLimitService): the
/// limiter refused it, or the inner service ran and returned its own error, unchanged.
///
/// Not boxed: match [`LimitError::Limited`] to answer `429 Too Many Requests` (or 503 when
/// a Redis-backed limiter is down and fails closed: [`http_status`](LimitError::http_status))
/// with a `Retry-After` header of [`retry_after_secs`](LimitError::retry_after_secs), or
/// gRPC `RESOURCE_EXHAUSTED`. It implements `std::error::Error` when `E` does, so it
/// converts into tower's `BoxError`; from there [`find_denied`] gets the refusal back.
///
/// ```
/// use keel_limiter::Denied;
/// use keel_limiter::tower::LimitError;
/// use std::time::Duration;
///
/// let err = LimitError::<std::io::Error>::Limited(Denied::Limited {
///     retry_after: Duration::from_millis(1500),
/// });
/// assert!(err.is_limited());
/// assert_eq!(err.http_status(), Some(429));
/// assert_eq!(err.retry_after_secs(), Some(2)); // rounded up: never too early
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError<E> {
    /// The limiter refused the call; the inner service was not called.
    Limited(Denied),
    /// The inner service's own error.
    Inner(E),
}

impl<E> LimitError<E> {
    /// Whether the limiter refused the call (for any [`Denied`] reason, a failing backend
    /// included).
    pub fn is_limited(&self) -> bool {
        matches!(self, LimitError::Limited(_))
    }

    /// The refusal, if the limiter refused the call.
    pub fn denied(&self) -> Option<Denied> {
        match self {
            LimitError::Limited(denied) => Some(*denied),
            LimitError::Inner(_) => None,
        }
    }

    /// The inner service's error, if it was called.
    pub fn inner(&self) -> Option<&E> {
        match self {
            LimitError::Inner(e) => Some(e),
            LimitError::Limited(_) => None,
        }
    }

    /// The inner service's error, if it was called.
    pub fn into_inner(self) -> Option<E> {
        match self {
            LimitError::Inner(e) => Some(e),
            LimitError::Limited(_) => None,
        }
    }

    /// The refusal's status ([`Denied::http_status`]: 429, or 503 for
    /// [`Denied::Unavailable`]); `None` for an inner error, whose status only the
    /// application knows.
    pub fn http_status(&self) -> Option<u16> {
        self.denied().map(|denied| denied.http_status())
    }

    /// The refusal's wait in whole seconds ([`Denied::retry_after_secs`]): its
    /// [`retry_after`](Denied::retry_after) rounded up, and at least 1 (a header of 0 would
    /// invite an immediate retry, refused again). `None` when waiting does not help or the
    /// wait is unknown ([`Denied::NeverFits`], [`Denied::Unavailable`]) and for an inner
    /// error. (The responses of features `axum` and `tonic` add a `Retry-After` of 1 to the
    /// 503 / `UNAVAILABLE` of [`Denied::Unavailable`], to slow down immediate retries.)
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.denied()?.retry_after_secs()
    }
}

impl<E> From<Denied> for LimitError<E> {
    fn from(denied: Denied) -> Self {
        LimitError::Limited(denied)
    }
}

impl<E: fmt::Display> fmt::Display for LimitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::Limited(denied) => denied.fmt(f),
            LimitError::Inner(e) => e.fmt(f),
        }
    }
}

/// The source is the [`Denied`] or the inner error, so [`find_denied`] and other walkers of
/// the source chain see through a boxed `LimitError`.
impl<E: Error + 'static> Error for LimitError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            LimitError::Limited(denied) => Some(denied),
            LimitError::Inner(e) => Some(e),
        }
    }
}

/// The [`Denied`] refusal in `err` or its chain of sources, if any.
///
/// For stacks where the error has been boxed on the way up (tower's `BoxError`: a
/// `Timeout` or `map_err` above the limiter), where it may be a `Denied`, a
/// [`LimitError<E>`] of any `E`, or an error wrapping one of those.
///
/// ```
/// use keel_limiter::Denied;
/// use keel_limiter::tower::{LimitError, find_denied};
/// use std::error::Error;
///
/// let refused: Box<dyn Error + Send + Sync> =
///     Box::new(LimitError::<std::io::Error>::Limited(Denied::Unavailable));
/// assert_eq!(find_denied(&*refused), Some(Denied::Unavailable));
/// let other: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert_eq!(find_denied(&*other), None);
/// ```
pub fn find_denied(err: &(dyn Error + 'static)) -> Option<Denied> {
    std::iter::successors(Some(err), |&e| e.source())
        .find_map(|e| e.downcast_ref::<Denied>().copied())
}
