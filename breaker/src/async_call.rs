//! The async twins of the `call*` methods.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;

use keel_timex::Clock;

use crate::breaker::settle;
use crate::deadline::Guarded;
use crate::{Breaker, BreakerError};

// # Async calls
//
// The future is created by the caller but only polled if the breaker admits the call, so a
// rejected call never starts. With a [`Builder::timeout`](crate::Builder::timeout) the call
// ends at the deadline with `BreakerError::TimedOut`, a failure. If the returned future is
// dropped before the inner one finishes (a client that went away, a sibling that failed, a
// timeout *around* it), the call is a cancellation and counts as `OnCancel` says (by
// default nothing, unless slower than the slow-call threshold). A panic in the inner future
// is a failure. Nothing else is left behind, and no task is spawned.
impl<C: Clock> Breaker<C> {
    /// Awaits `fut` if the breaker allows it; an `Err` counts as a failure.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let breaker = keel_breaker::Breaker::new();
    /// let v = breaker.call_async(async { Ok::<_, std::io::Error>(7) }).await;
    /// assert_eq!(v.unwrap(), 7);
    /// # }
    /// ```
    pub async fn call_async<T, E: fmt::Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, BreakerError<E>> {
        self.call_async_with(fut, |_| false).await
    }

    /// Like [`call_async`](Breaker::call_async); an error for which `acceptable` returns
    /// `true` counts as a success. The error is returned either way.
    pub async fn call_async_with<T, E: fmt::Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
        acceptable: impl FnOnce(&E) -> bool,
    ) -> Result<T, BreakerError<E>> {
        let permit = self.allow()?;
        let (result, permit) = Guarded::new(fut, permit, self.timeout()).await?;
        settle(permit, &result, acceptable);
        result.map_err(BreakerError::Inner)
    }

    /// Like [`call_async_with`](Breaker::call_async_with), but when the breaker rejects the
    /// call or its deadline ends it, `fallback` answers instead (a cached value, a default);
    /// it is told which of the two happened.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use keel_breaker::{Breaker, Mode};
    ///
    /// let breaker = Breaker::new();
    /// breaker.set_mode(Mode::ForcedOpen);
    /// let query = async { Ok::<_, std::io::Error>("fresh") };
    /// let v = breaker
    ///     .call_async_with_fallback(query, |_| false, |_why| Ok("cached"))
    ///     .await;
    /// assert_eq!(v.unwrap(), "cached");
    /// # }
    /// ```
    pub async fn call_async_with_fallback<T, E: fmt::Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
        acceptable: impl FnOnce(&E) -> bool,
        fallback: impl FnOnce(BreakerError<Infallible>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self.call_async_with(fut, acceptable).await {
            Ok(v) => Ok(v),
            Err(BreakerError::Inner(e)) => Err(e),
            Err(BreakerError::Rejected(r)) => fallback(BreakerError::Rejected(r)),
            Err(BreakerError::TimedOut(t)) => fallback(BreakerError::TimedOut(t)),
        }
    }
}
