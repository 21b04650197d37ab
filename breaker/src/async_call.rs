//! The async twins of the `call*` methods.

use std::fmt;
use std::future::Future;

use keel_timex::Clock;

use crate::breaker::settle;
use crate::{Breaker, BreakerError, Rejected};

// # Async calls
//
// The future is created by the caller but only polled if the breaker admits the call, so a
// rejected call never starts. If the returned future is dropped before the inner one
// finishes (a timeout around it, a client that went away), the permit inside is dropped
// unresolved and the call counts as a **failure**: a cancelled call is most often a slow
// one. Nothing else is left behind, and no task is spawned.
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
        let result = fut.await;
        settle(permit, &result, acceptable);
        result.map_err(BreakerError::Inner)
    }

    /// Like [`call_async_with`](Breaker::call_async_with), but a rejection is answered by
    /// `fallback` instead of an error.
    pub async fn call_async_with_fallback<T, E: fmt::Display>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
        acceptable: impl FnOnce(&E) -> bool,
        fallback: impl FnOnce(Rejected) -> Result<T, E>,
    ) -> Result<T, E> {
        match self.call_async_with(fut, acceptable).await {
            Ok(v) => Ok(v),
            Err(BreakerError::Inner(e)) => Err(e),
            Err(BreakerError::Rejected(r)) => fallback(r),
        }
    }
}
