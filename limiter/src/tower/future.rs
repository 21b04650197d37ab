//! [`ResponseFuture`]: the future of a [`RateLimitService`](super::RateLimitService) call.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::limit::Deferred;
use super::{AsError, RefusalMode};
use crate::Denied;

pin_project! {
    /// The response future of [`RateLimitService`](super::RateLimitService), a small state
    /// machine: decide, then call the inner service.
    ///
    /// - **Refused**: ready at the first poll with the refusal as the [`RefusalMode`] `M`
    ///   reports it ([`LimitError::Limited`](super::LimitError::Limited) by default, a
    ///   response of its own in a responding mode); the inner service was not called.
    /// - **Deciding** (on Redis): awaits the limiter's script while holding the request and
    ///   the inner service instance that was ready. Admitted, it calls that instance and
    ///   moves on; refused, it drops both (releasing whatever readiness held).
    /// - **Called**: drives the inner service's future; its errors come back as
    ///   [`LimitError::Inner`](super::LimitError::Inner) by default, unchanged in a
    ///   responding mode.
    ///
    /// Dropped before it completes (a timeout, a client gone), nothing is given back: the
    /// tokens were taken when the request was decided, as they are for a request the inner
    /// service failed.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, S, Req, M = AsError> {
        #[pin]
        state: State<F, S, Req>,
        // Zero-sized; `fn() -> M` keeps the future `Send` and `Sync` whatever `M` is.
        mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req> {
        Refused { denied: Denied },
        Deciding {
            decision: Deferred,
            // Taken when the request is admitted.
            call: Option<(S, Req)>,
        },
        Called {
            #[pin]
            inner: F,
        },
    }
}

impl<F, S, Req, M> ResponseFuture<F, S, Req, M> {
    fn with(state: State<F, S, Req>) -> Self {
        ResponseFuture {
            state,
            mode: PhantomData,
        }
    }

    pub(crate) fn refused(denied: Denied) -> Self {
        ResponseFuture::with(State::Refused { denied })
    }

    pub(crate) fn called(inner: F) -> Self {
        ResponseFuture::with(State::Called { inner })
    }

    pub(crate) fn deciding(decision: Deferred, ready: S, req: Req) -> Self {
        ResponseFuture::with(State::Deciding {
            decision,
            call: Some((ready, req)),
        })
    }
}

impl<F, S, Req, M, Res, Err> Future for ResponseFuture<F, S, Req, M>
where
    S: Service<Req, Future = F, Response = Res, Error = Err>,
    F: Future<Output = Result<Res, Err>>,
    M: RefusalMode<Res, Err>,
{
    type Output = Result<Res, M::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Refused { denied } => {
                    return Poll::Ready(M::refused(*denied));
                }
                StateProj::Called { inner } => {
                    return inner.poll(cx).map_err(M::inner);
                }
                StateProj::Deciding { decision, call } => {
                    match ready!(decision.as_mut().poll(cx)) {
                        Err(denied) => State::Refused { denied },
                        Ok(()) => {
                            let (mut ready, req) = call.take().expect("decided once");
                            State::Called {
                                inner: ready.call(req),
                            }
                        }
                    }
                }
            };
            state.set(next);
        }
    }
}

impl<F, S, Req, M> fmt::Debug for ResponseFuture<F, S, Req, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ResponseFuture");
        match &self.state {
            State::Refused { denied } => d.field("refused", denied),
            State::Deciding { .. } => d.field("state", &"deciding"),
            State::Called { .. } => d.field("state", &"called"),
        }
        .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use keel_timex::ManualClock;
    use tower::{Layer, ServiceExt};

    use super::super::{LimitError, RateLimitLayer, RateLimitService};
    use super::*;
    use crate::{Rate, TokenLimiter};

    /// Holds tower's readiness contract: a clone starts unready, and a call on an instance
    /// that `poll_ready` did not make ready panics.
    #[derive(Debug)]
    struct Strict {
        ready: bool,
        calls: Arc<AtomicUsize>,
    }

    impl Clone for Strict {
        fn clone(&self) -> Self {
            Strict {
                ready: false,
                calls: Arc::clone(&self.calls),
            }
        }
    }

    impl Service<&'static str> for Strict {
        type Response = &'static str;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<&'static str, Self::Error>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, client: &'static str) -> Self::Future {
            assert!(self.ready, "called an instance that was not made ready");
            self.ready = false;
            self.calls.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Ok(client))
        }
    }

    type Deferring = RateLimitService<Strict, fn(&&'static str) -> Option<String>, ManualClock>;

    /// A service deciding as on Redis (the decision awaited in the future), burst 1.
    fn deferring() -> (Deferring, Arc<AtomicUsize>) {
        let limiter = TokenLimiter::builder(Rate::per_second(10), 1)
            .build_with_clock(ManualClock::new())
            .unwrap();
        let key: fn(&&'static str) -> Option<String> = |client| Some((*client).to_owned());
        let calls = Arc::new(AtomicUsize::new(0));
        let strict = Strict {
            ready: false,
            calls: Arc::clone(&calls),
        };
        let mut svc = RateLimitLayer::new(limiter, key).layer(strict);
        svc.limit_mut().set_remote();
        (svc, calls)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_deferred_decision_calls_the_instance_that_was_made_ready() {
        let (mut svc, calls) = deferring();
        let fut = svc.ready().await.unwrap().call("alice");
        assert!(format!("{fut:?}").contains("deciding"), "{fut:?}");
        assert!(
            !svc.get_ref().ready,
            "the ready instance went with the request"
        );
        assert_eq!(
            calls.load(Ordering::Relaxed),
            0,
            "called before the decision"
        );
        assert_eq!(fut.await, Ok("alice"));
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        // The instance kept is made ready by the next poll_ready, and called in turn.
        assert_eq!(svc.ready().await.unwrap().call("bob").await, Ok("bob"));
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_deferred_refusal_drops_the_request_without_calling() {
        let (mut svc, calls) = deferring();
        assert_eq!(svc.ready().await.unwrap().call("alice").await, Ok("alice"));
        let refused = svc.ready().await.unwrap().call("alice").await;
        let retry_after = Duration::from_millis(100);
        assert_eq!(
            refused,
            Err(LimitError::Limited(Denied::Limited { retry_after }))
        );
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(svc.ready().await.unwrap().call("bob").await, Ok("bob"));
    }
}
