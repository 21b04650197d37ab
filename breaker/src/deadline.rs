//! [`Guarded`]: a call's future with its permit, the breaker's deadline and a panic check.
//!
//! Shared by [`Breaker::call_async`](crate::Breaker::call_async) and the tower layer, so
//! both settle the same way: a panic inside the call is a failure (whatever the executor
//! does with the future afterwards), the deadline's expiry is a failure and ends the call,
//! and a future dropped before either is a cancellation (see [`OnCancel`](crate::OnCancel)).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::TimedOut;
use crate::permit::Settle;

pin_project! {
    /// `fut` under `permit`, ending at the deadline if there is one.
    pub(crate) struct Guarded<F, P> {
        #[pin]
        fut: F,
        #[pin]
        deadline: Deadline,
        // `None` once handed back or settled.
        permit: Option<P>,
    }
}

impl<F, P> Guarded<F, P> {
    pub(crate) fn new(fut: F, permit: P, timeout: Option<Duration>) -> Self {
        Guarded {
            fut,
            deadline: Deadline::new(timeout),
            permit: Some(permit),
        }
    }
}

impl<F: Future, P: Settle> Future for Guarded<F, P> {
    /// The call's output with its permit, to be settled by the caller's classifier; or the
    /// deadline passed first (the failure is already recorded).
    type Output = Result<(F::Output, P), TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            // If `fut` panics, the permit is dropped while the panic unwinds, which records
            // a failure; without this an executor that drops the future only after catching
            // the panic would make it look like a cancellation.
            let on_panic = DropOnPanic(&mut *this.permit);
            let polled = this.fut.poll(cx);
            std::mem::forget(on_panic);
            polled
        };
        if let Poll::Ready(output) = polled {
            let permit = this
                .permit
                .take()
                .expect("a Guarded future polled after completion");
            return Poll::Ready(Ok((output, permit)));
        }
        match this.deadline.poll_expired(cx) {
            Some(after) => {
                if let Some(permit) = this.permit.take() {
                    permit.failure_with(format_args!("timed out after {after:?}"));
                }
                Poll::Ready(Err(TimedOut::new(after)))
            }
            None => Poll::Pending,
        }
    }
}

/// Drops the permit if it is dropped itself during a panic (it is forgotten otherwise).
struct DropOnPanic<'a, P>(&'a mut Option<P>);

impl<P> Drop for DropOnPanic<'_, P> {
    fn drop(&mut self) {
        self.0.take();
    }
}

#[cfg(feature = "tokio")]
pin_project! {
    /// The breaker's deadline for one call: a tokio timer, if a timeout is configured.
    pub(crate) struct Deadline {
        #[pin]
        sleep: Option<tokio::time::Sleep>,
        after: Duration,
    }
}

#[cfg(feature = "tokio")]
impl Deadline {
    fn new(timeout: Option<Duration>) -> Deadline {
        Deadline {
            sleep: timeout.map(tokio::time::sleep),
            after: timeout.unwrap_or_default(),
        }
    }

    /// `Some(timeout)` once the deadline has passed.
    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Option<Duration> {
        let this = self.project();
        let sleep = this.sleep.as_pin_mut()?;
        sleep.poll(cx).is_ready().then_some(*this.after)
    }
}

/// Without tokio there is no timer: no deadline.
#[cfg(not(feature = "tokio"))]
pub(crate) struct Deadline;

#[cfg(not(feature = "tokio"))]
impl Deadline {
    fn new(_timeout: Option<Duration>) -> Deadline {
        Deadline
    }

    fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Option<Duration> {
        None
    }
}
