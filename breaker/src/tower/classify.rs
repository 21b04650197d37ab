//! [`Classify`]: which responses count as failures.

use std::fmt;

/// Decides whether a finished call counts as a success or a failure for the breaker.
///
/// [`DefaultClassifier`] counts every `Err` as a failure and every `Ok` as a success. Any
/// closure `Fn(&Result<Res, Err>) -> bool` (returning `true` for a failure) is a classifier
/// too, for services whose errors travel in the response, such as HTTP status codes:
///
/// ```
/// use keel_breaker::tower::Classify;
/// use std::convert::Infallible;
///
/// // HTTP-like: 5xx is the dependency failing, 4xx is the caller's fault.
/// let classifier = |r: &Result<u16, Infallible>| matches!(r, Ok(status) if *status >= 500);
/// assert!(classifier.is_failure(&Ok(503)));
/// assert!(!classifier.is_failure(&Ok(404)));
/// ```
///
/// A failure is recorded with [`OwnedPermit::failure_with`](crate::OwnedPermit::failure_with)
/// when [`reason`](Classify::reason) gives a text (the default classifier gives the error's
/// `Display`, so it shows in [`Breaker::recent_failures`](crate::Breaker::recent_failures)),
/// and with a plain [`failure`](crate::OwnedPermit::failure) otherwise (closures).
pub trait Classify<Res, Err> {
    /// Whether `result` counts as a failure.
    fn is_failure(&self, result: &Result<Res, Err>) -> bool;

    /// The text to keep among the breaker's recent failures when `result` is a failure.
    /// `None` (the provided default) records the failure without a reason.
    fn reason<'a>(&self, result: &'a Result<Res, Err>) -> Option<&'a dyn fmt::Display> {
        let _ = result;
        None
    }
}

/// The default classifier: `Ok` is a success, `Err` a failure whose `Display` text is kept
/// among the breaker's [recent failures](crate::Breaker::recent_failures).
///
/// It needs the service's error to implement [`Display`](fmt::Display), as
/// [`Breaker::call`](crate::Breaker::call) does; for other errors pass a closure such as
/// `|r: &Result<_, MyError>| r.is_err()` to
/// [`BreakerLayer::classifier`](super::BreakerLayer::classifier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<Res, Err: fmt::Display> Classify<Res, Err> for DefaultClassifier {
    #[inline]
    fn is_failure(&self, result: &Result<Res, Err>) -> bool {
        result.is_err()
    }

    fn reason<'a>(&self, result: &'a Result<Res, Err>) -> Option<&'a dyn fmt::Display> {
        result.as_ref().err().map(|e| e as &dyn fmt::Display)
    }
}

impl<F, Res, Err> Classify<Res, Err> for F
where
    F: Fn(&Result<Res, Err>) -> bool,
{
    #[inline]
    fn is_failure(&self, result: &Result<Res, Err>) -> bool {
        self(result)
    }
}
