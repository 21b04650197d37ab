//! [`ResponseFuture`]: the future of a [`BreakerService`](super::BreakerService) call.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use keel_timex::{Clock, CoarseClock};
use pin_project_lite::pin_project;

use super::{AsError, Classify, RefusalMode};
use crate::deadline::Guarded;
use crate::{BreakerError, OwnedPermit, Rejected};

pin_project! {
    /// The response future of [`BreakerService`](super::BreakerService).
    ///
    /// Either the breaker rejected the call (ready at once with
    /// [`BreakerError::Rejected`]), or it wraps the inner service's future together with the
    /// call's [`OwnedPermit`]: on completion the classifier decides success or failure. With
    /// a [`timeout`](crate::Builder::timeout) the call ends at the deadline with
    /// [`BreakerError::TimedOut`], a failure. A panic in the inner future is a failure. If
    /// this future is dropped before completion (a client that went away, a timeout layered
    /// *around* it), the call is a **cancellation**, which counts as
    /// [`OnCancel`](crate::OnCancel) says: by default nothing, unless it was slower than the
    /// [slow-call threshold](crate::Builder::slow_call).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C: Clock = CoarseClock, K = super::DefaultClassifier, M = AsError> {
        #[pin]
        state: State<F, C, K>,
        // Zero-sized; `fn() -> M` keeps the future `Send` and `Sync` whatever `M` is.
        mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C: Clock, K> {
        Rejected { rejected: Rejected },
        Called {
            #[pin]
            call: Guarded<F, OwnedPermit<C>>,
            classifier: K,
        },
    }
}

impl<F, C: Clock, K, M> ResponseFuture<F, C, K, M> {
    /// A future that resolves to the rejection at once.
    pub(crate) fn rejected(rejected: Rejected) -> Self {
        ResponseFuture {
            state: State::Rejected { rejected },
            mode: PhantomData,
        }
    }

    /// The inner service's future, settling `permit` with `classifier` when it completes.
    pub(crate) fn called(
        fut: F,
        permit: OwnedPermit<C>,
        timeout: Option<Duration>,
        classifier: K,
    ) -> Self {
        ResponseFuture {
            state: State::Called {
                call: Guarded::new(fut, permit, timeout),
                classifier,
            },
            mode: PhantomData,
        }
    }
}

impl<F, C, K, M, Res, Err> Future for ResponseFuture<F, C, K, M>
where
    F: Future<Output = Result<Res, Err>>,
    C: Clock,
    K: Classify<Res, Err>,
    M: RefusalMode<Res, Err>,
{
    type Output = Result<Res, M::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Rejected { rejected } => {
                Poll::Ready(M::refused(BreakerError::Rejected(*rejected)))
            }
            StateProj::Called { call, classifier } => match std::task::ready!(call.poll(cx)) {
                Ok((result, permit)) => {
                    settle(permit, classifier, &result);
                    Poll::Ready(result.map_err(M::inner))
                }
                Err(timed_out) => Poll::Ready(M::refused(BreakerError::TimedOut(timed_out))),
            },
        }
    }
}

/// Records the call's outcome as `classifier` sees it.
fn settle<C: Clock, Res, Err>(
    permit: OwnedPermit<C>,
    classifier: &impl Classify<Res, Err>,
    result: &Result<Res, Err>,
) {
    if !classifier.is_failure(result) {
        permit.success();
    } else if let Some(reason) = classifier.reason(result) {
        permit.failure_with(reason);
    } else {
        permit.failure();
    }
}

impl<F, C: Clock, K, M> fmt::Debug for ResponseFuture<F, C, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Rejected { .. } => f.debug_struct("ResponseFuture::Rejected").finish(),
            State::Called { .. } => f
                .debug_struct("ResponseFuture::Called")
                .finish_non_exhaustive(),
        }
    }
}
