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
/// # Fan-outs through one breaker
///
/// While the breaker throttles, the few calls it admits are its probes: their successes
/// are how it notices a recovery. If one request sends several calls through the same
/// breaker and stops at the first error (`try_join!`), a rejected sibling cancels the
/// admitted ones, and a breaker whose traffic is all fanned out never hears from its probes
/// and stays open after the dependency is back. Let admitted siblings finish when one is
/// rejected: join them with `tokio::join!` and look at the results afterwards, or treat a
/// rejection as a result rather than an error inside the `try_join!` (keel's reference
/// service, `examples/service/`, does the latter). [`OnCancel::Success`] is the other way
/// out, with its own trade-off.
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
    /// Record a success unless the call was slower than the slow-call threshold: go-zero's
    /// choice (its sqlx counts `context.Canceled` as acceptable). A cancelled probe then
    /// still helps a throttling breaker close, but a caller that gives up on a stalled
    /// dependency before any deadline of the breaker's reports it healthy: use it with a
    /// [`timeout`](crate::Builder::timeout) or [`slow_call`](crate::Builder::slow_call)
    /// shorter than your callers' patience.
    Success,
}
