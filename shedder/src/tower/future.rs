//! [`ResponseFuture`]: the future of a [`ShedderService`](super::ShedderService) call.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use pin_project_lite::pin_project;

use super::{AsError, Classify, RefusalMode};
use crate::{Overloaded, OwnedGuard};

pin_project! {
    /// The response future of [`ShedderService`](super::ShedderService).
    ///
    /// Either the shedder refused the call (ready at once with the refusal as the
    /// [`RefusalMode`] `M` reports it: [`ShedError::Overloaded`](super::ShedError::Overloaded)
    /// by default, a response of its own in a responding mode; the inner service was not
    /// called), or it drives the inner service's future while
    /// holding the call's [`OwnedGuard`]: on completion the classifier reports a pass (with
    /// the latency since `call`) or a failure. Dropped before completion (a timeout, a
    /// client that went away), the guard is dropped unresolved: the in-flight slot is
    /// released and nothing else is recorded, as for any cancelled request.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C: Clock = CoarseClock, K = super::DefaultClassifier, M = AsError> {
        #[pin]
        kind: Kind<F, C, K>,
        // Zero-sized; `fn() -> M` keeps the future `Send` and `Sync` whatever `M` is.
        mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C: Clock, K> {
        Refused { overloaded: Overloaded },
        Admitted {
            #[pin]
            inner: F,
            // Taken when the outcome is reported.
            guard: Option<OwnedGuard<C>>,
            classify: K,
        },
    }
}

impl<F, C: Clock, K, M> ResponseFuture<F, C, K, M> {
    pub(crate) fn refused(overloaded: Overloaded) -> Self {
        ResponseFuture {
            kind: Kind::Refused { overloaded },
            mode: PhantomData,
        }
    }

    pub(crate) fn admitted(inner: F, guard: OwnedGuard<C>, classify: K) -> Self {
        ResponseFuture {
            kind: Kind::Admitted {
                inner,
                guard: Some(guard),
                classify,
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
        let (inner, guard, classify) = match self.project().kind.project() {
            KindProj::Refused { overloaded } => {
                return Poll::Ready(M::refused(*overloaded));
            }
            KindProj::Admitted {
                inner,
                guard,
                classify,
            } => (inner, guard, classify),
        };
        let result = std::task::ready!(inner.poll(cx));
        match guard.take() {
            Some(g) if classify.is_failure(&result) => g.fail(),
            Some(g) => g.pass(),
            None => {}
        }
        Poll::Ready(result.map_err(M::inner))
    }
}

impl<F, C: Clock, K, M> fmt::Debug for ResponseFuture<F, C, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ResponseFuture");
        match &self.kind {
            Kind::Refused { overloaded } => d.field("refused", overloaded),
            Kind::Admitted { guard, .. } => d.field("guard", guard),
        }
        .finish_non_exhaustive()
    }
}
