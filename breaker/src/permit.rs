//! [`Permit`] and [`OwnedPermit`]: the right to make one call, and the duty to report it.

use std::fmt;
use std::sync::Arc;

use keel_timex::{Clock, CoarseClock};

use crate::breaker::Inner;
use crate::stats::Outcome;

/// Permission to make one call, from [`Breaker::allow`](crate::Breaker::allow).
///
/// Report how the call went with [`success`](Permit::success) or
/// [`failure`](Permit::failure). A permit dropped without either is a **cancellation**
/// (the caller stopped waiting: a client gone, a sibling failed, a lost `select!`), which by
/// default records nothing, since it says nothing about the dependency (see
/// [`OnCancel`](crate::OnCancel)); one dropped while a panic unwinds records a **failure**.
/// With a [slow-call threshold](crate::Builder::slow_call), a call reported or cancelled
/// after running longer than the threshold is a failure whatever its result.
///
/// ```
/// let breaker = keel_breaker::Breaker::new();
/// match breaker.allow() {
///     Ok(permit) => {
///         // ... make the call ...
///         permit.success();
///     }
///     Err(rejected) => eprintln!("not calling: {rejected}"),
/// }
/// ```
#[must_use = "report the call with .success() or .failure(); dropping the permit is a cancellation"]
#[clippy::has_significant_drop]
pub struct Permit<'a, C: Clock = CoarseClock> {
    inner: &'a Inner<C>,
    armed: bool,
    /// When the call started, in clock nanoseconds; only read with a slow-call threshold.
    start: u64,
}

/// A [`Permit`] that owns a handle to its breaker, for futures and services that must be
/// `'static` (tower); from [`Breaker::allow_owned`](crate::Breaker::allow_owned). Same
/// contract; it costs one reference-count increment more.
#[must_use = "report the call with .success() or .failure(); dropping the permit is a cancellation"]
#[clippy::has_significant_drop]
pub struct OwnedPermit<C: Clock = CoarseClock> {
    inner: Arc<Inner<C>>,
    armed: bool,
    start: u64,
}

/// What the crate's futures need of either permit.
pub(crate) trait Settle {
    fn failure_with(self, reason: impl fmt::Display);
}

/// The methods both permits share.
macro_rules! permit_methods {
    ($permit:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? C: Clock> $permit<$($lt,)? C> {
            /// Records a success (a failure if the call was slower than the
            /// [slow-call threshold](crate::Builder::slow_call)).
            #[inline]
            pub fn success(mut self) {
                self.settle(Outcome::Success);
            }

            /// Records a failure.
            #[inline]
            pub fn failure(mut self) {
                self.settle(Outcome::Failure);
            }

            /// Records a failure and keeps `reason` among the breaker's
            /// [recent failures](crate::Breaker::recent_failures).
            pub fn failure_with(mut self, reason: impl fmt::Display) {
                if self.armed {
                    self.inner.reasons.push(reason.to_string());
                }
                self.settle(Outcome::Failure);
            }

            #[inline]
            fn settle(&mut self, outcome: Outcome) {
                if std::mem::take(&mut self.armed) {
                    self.inner.finish(self.start, outcome);
                }
            }
        }

        impl<$($lt,)? C: Clock> Settle for $permit<$($lt,)? C> {
            fn failure_with(self, reason: impl fmt::Display) {
                $permit::failure_with(self, reason);
            }
        }

        impl<$($lt,)? C: Clock> Drop for $permit<$($lt,)? C> {
            #[inline]
            fn drop(&mut self) {
                if std::mem::take(&mut self.armed) {
                    self.inner.abandon(self.start);
                }
            }
        }

        impl<$($lt,)? C: Clock> fmt::Debug for $permit<$($lt,)? C> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($permit))
                    .field("breaker", &self.inner.name)
                    .field("armed", &self.armed)
                    .finish()
            }
        }
    };
}

permit_methods!(Permit<'a>);
permit_methods!(OwnedPermit);

impl<'a, C: Clock> Permit<'a, C> {
    /// `armed: false` for a disabled breaker: the permit records nothing.
    #[inline]
    pub(crate) fn new(inner: &'a Inner<C>, armed: bool) -> Self {
        let start = inner.call_start(armed);
        Permit {
            inner,
            armed,
            start,
        }
    }
}

impl<C: Clock> OwnedPermit<C> {
    pub(crate) fn new(inner: Arc<Inner<C>>, armed: bool) -> Self {
        let start = inner.call_start(armed);
        OwnedPermit {
            inner,
            armed,
            start,
        }
    }
}
