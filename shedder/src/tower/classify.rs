//! [`Classify`]: which results count as passes.

/// Decides whether a finished call reports a pass or a failure to the shedder.
///
/// A pass records the call's latency and counts toward the throughput the shedder has
/// seen; a failure only gives its in-flight slot back. So a call that did not do the
/// real work (an error, an HTTP 5xx answered in a microsecond) should be a failure: as
/// a pass it would teach the shedder a throughput and a latency the service does not
/// have.
///
/// [`DefaultClassifier`] counts every `Err` as a failure and every `Ok` as a pass. Any
/// closure `Fn(&Result<Res, Err>) -> bool` (returning `true` for a failure) is a
/// classifier too, for services whose errors travel in the response:
///
/// ```
/// use keel_shedder::tower::Classify;
/// use std::convert::Infallible;
///
/// // HTTP-like: a 5xx did not do the work, a 4xx was refused by the handler itself.
/// let classifier = |r: &Result<u16, Infallible>| matches!(r, Ok(status) if *status >= 500);
/// assert!(classifier.is_failure(&Ok(500)));
/// assert!(!classifier.is_failure(&Ok(404)));
/// ```
pub trait Classify<Res, Err> {
    /// Whether `result` counts as a failure (`false`: a pass).
    fn is_failure(&self, result: &Result<Res, Err>) -> bool;
}

/// The default classifier: `Ok` is a pass, `Err` a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<Res, Err> Classify<Res, Err> for DefaultClassifier {
    #[inline]
    fn is_failure(&self, result: &Result<Res, Err>) -> bool {
        result.is_err()
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
