//! [`Permit`] and [`OwnedPermit`]: the right to make one call, and the duty to report it.

use std::fmt;
use std::sync::Arc;

use keel_timex::{Clock, CoarseClock};

use crate::breaker::Inner;
use crate::stats::Outcome;

/// Permission to make one call, from [`Breaker::allow`](crate::Breaker::allow).
///
/// Report how the call went with [`success`](Permit::success) or
/// [`failure`](Permit::failure). A permit dropped without either counts as a **failure**:
/// that covers a panic unwinding through the call and a future cancelled mid-call (most often
/// a timeout, which is what a breaker should hear about), as go-zero's deferred guard does.
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
#[must_use = "dropping the permit records a failure; call .success() when the call worked"]
#[clippy::has_significant_drop]
pub struct Permit<'a, C: Clock = CoarseClock> {
    inner: &'a Inner<C>,
    armed: bool,
}

/// A [`Permit`] that owns a handle to its breaker, for futures and services that must be
/// `'static` (tower); from [`Breaker::allow_owned`](crate::Breaker::allow_owned). Same
/// contract; it costs one reference-count increment more.
#[must_use = "dropping the permit records a failure; call .success() when the call worked"]
#[clippy::has_significant_drop]
pub struct OwnedPermit<C: Clock = CoarseClock> {
    inner: Arc<Inner<C>>,
    armed: bool,
}

/// The methods both permits share; `$inner` turns `self.inner` into an `&Inner`.
macro_rules! permit_methods {
    ($permit:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? C: Clock> $permit<$($lt,)? C> {
            /// Records a success.
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
                    self.inner.record(outcome);
                }
            }
        }

        impl<$($lt,)? C: Clock> Drop for $permit<$($lt,)? C> {
            fn drop(&mut self) {
                self.settle(Outcome::Failure);
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
        Permit { inner, armed }
    }
}

impl<C: Clock> OwnedPermit<C> {
    pub(crate) fn new(inner: Arc<Inner<C>>, armed: bool) -> Self {
        OwnedPermit { inner, armed }
    }
}
