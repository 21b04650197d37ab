//! [`OnCancel`]: what a call that ends without an outcome counts as.

/// What the breaker records for a call whose permit is dropped unresolved while no panic is
/// unwinding: the caller stopped waiting. The client disconnected, a sibling of a
/// `try_join!` failed, a `select!` branch lost, a timeout *around* the call fired.
///
/// A cancellation says nothing about the dependency: counting it as a failure lets a storm
/// of client disconnects open the breaker of a perfectly healthy database (and keep it
/// open, since each rejection counts in the total). So by default it counts as nothing,
/// unless the call had already run longer than [`Builder::slow_call`](crate::Builder::slow_call)
/// when it was cancelled, which is evidence of a slow dependency and counts as a failure.
///
/// A slow dependency is caught by a deadline the breaker owns
/// ([`Builder::timeout`](crate::Builder::timeout), feature `tokio`: the expiry is a failure)
/// or by the slow-call threshold, never by cancellations. A panic while the permit is held is
/// always a failure.
///
/// ```
/// use keel_breaker::{Breaker, OnCancel};
///
/// let breaker = Breaker::new();
/// drop(breaker.allow().unwrap()); // cancelled: nothing recorded
/// assert_eq!(breaker.snapshot().history.total, 0);
/// assert_eq!(breaker.snapshot().cancelled, 1);
///
/// let strict = Breaker::builder().on_cancel(OnCancel::Failure).build()?;
/// drop(strict.allow().unwrap()); // cancelled: a failure
/// assert_eq!(strict.snapshot().history.total, 1);
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OnCancel {
    /// Record nothing, unless the call was slower than the slow-call threshold (the
    /// default). resilience4j also ignores cancelled calls; go-zero's sqlx counts a
    /// cancelled context as acceptable.
    #[default]
    Ignore,
    /// Record a failure, as a permit dropped unresolved did before keel 0.2: only for
    /// callers who cancel exclusively because the dependency is slow.
    Failure,
}
