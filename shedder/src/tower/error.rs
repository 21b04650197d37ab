//! [`ShedError`], the error of a call through a [`ShedderService`](super::ShedderService),
//! and [`find_overloaded`] for errors that have been boxed on the way.

use std::error::Error;
use std::fmt;

use crate::Overloaded;

/// The error of a call through a [`ShedderService`](super::ShedderService): the shedder
/// refused it, or the inner service ran and returned its own error, unchanged.
///
/// Not boxed: match [`ShedError::Overloaded`] (or ask
/// [`http_status`](ShedError::http_status)) to answer 503 / `UNAVAILABLE`. It implements
/// `std::error::Error` when `E` does, so it converts into tower's `BoxError`; from there
/// [`find_overloaded`] gets the refusal back.
///
/// ```
/// # use keel_shedder::tower::ShedError;
/// let err: ShedError<std::io::Error> = ShedError::Inner(std::io::ErrorKind::TimedOut.into());
/// assert!(!err.is_overloaded());
/// assert_eq!(err.http_status(), None);
/// assert_eq!(err.into_inner().map(|e| e.kind()), Some(std::io::ErrorKind::TimedOut));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ShedError<E> {
    /// The shedder refused the call; the inner service was not called.
    Overloaded(Overloaded),
    /// The inner service's own error.
    Inner(E),
}

impl<E> ShedError<E> {
    /// Whether the shedder refused the call.
    pub fn is_overloaded(&self) -> bool {
        matches!(self, ShedError::Overloaded(_))
    }

    /// The refusal, if the shedder refused the call.
    pub fn overloaded(&self) -> Option<Overloaded> {
        match self {
            ShedError::Overloaded(o) => Some(*o),
            ShedError::Inner(_) => None,
        }
    }

    /// The inner service's error, if it was called.
    pub fn inner(&self) -> Option<&E> {
        match self {
            ShedError::Inner(e) => Some(e),
            ShedError::Overloaded(_) => None,
        }
    }

    /// The inner service's error, if it was called.
    pub fn into_inner(self) -> Option<E> {
        match self {
            ShedError::Inner(e) => Some(e),
            ShedError::Overloaded(_) => None,
        }
    }

    /// [`Overloaded::HTTP_STATUS`] (503) for a refusal; `None` for an inner error, whose
    /// status only the application knows.
    pub fn http_status(&self) -> Option<u16> {
        self.is_overloaded().then_some(Overloaded::HTTP_STATUS)
    }
}

impl<E> From<Overloaded> for ShedError<E> {
    fn from(o: Overloaded) -> Self {
        ShedError::Overloaded(o)
    }
}

impl<E: fmt::Display> fmt::Display for ShedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShedError::Overloaded(o) => o.fmt(f),
            ShedError::Inner(e) => e.fmt(f),
        }
    }
}

/// The source is the [`Overloaded`] or the inner error, so [`find_overloaded`] and other
/// walkers of the source chain see through a boxed `ShedError`.
impl<E: Error + 'static> Error for ShedError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ShedError::Overloaded(o) => Some(o),
            ShedError::Inner(e) => Some(e),
        }
    }
}

/// The [`Overloaded`] refusal in `err` or its chain of sources, if any.
///
/// For stacks where the error has been boxed on the way up (tower's `BoxError`: a
/// `Timeout` or `map_err` above the shedder, axum's `HandleErrorLayer`), where it may be
/// an `Overloaded`, a [`ShedError<E>`] of any `E`, or an error wrapping one of those.
///
/// ```
/// use keel_shedder::tower::find_overloaded;
/// use std::error::Error;
///
/// let boxed: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert_eq!(find_overloaded(&*boxed), None);
/// ```
pub fn find_overloaded(err: &(dyn Error + 'static)) -> Option<Overloaded> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(o) = e.downcast_ref::<Overloaded>() {
            return Some(*o);
        }
        next = e.source();
    }
    None
}
