//! [`find_refusal`]: the breaker's rejection or timeout inside a boxed error.

use std::error::Error;

use super::Refusal;
use crate::{BreakerError, Rejected, TimedOut};

/// The breaker's [`Rejected`] or [`TimedOut`] in `err` or its chain of sources, if any.
///
/// For stacks where the error has been boxed on the way up (tower's `BoxError`: a layer
/// above the breaker, axum's `HandleErrorLayer`), where it may be a `Rejected`, a
/// `TimedOut`, a [`BreakerError`] of any inner error, or an error wrapping one of those.
///
/// ```
/// use keel_breaker::tower::find_refusal;
/// use keel_breaker::{BreakerError, Rejected};
/// use std::error::Error;
///
/// let boxed: Box<dyn Error + Send + Sync> =
///     Box::new(BreakerError::<std::io::Error>::Rejected(Rejected::new()));
/// assert!(find_refusal(&*boxed).unwrap().is_rejected());
/// let other: Box<dyn Error + Send + Sync> = "connection reset".into();
/// assert!(find_refusal(&*other).is_none());
/// ```
pub fn find_refusal(err: &(dyn Error + 'static)) -> Option<Refusal> {
    std::iter::successors(Some(err), |&e| e.source()).find_map(|e| {
        if let Some(r) = e.downcast_ref::<Rejected>() {
            Some(BreakerError::Rejected(*r))
        } else {
            e.downcast_ref::<TimedOut>()
                .map(|t| BreakerError::TimedOut(*t))
        }
    })
}
