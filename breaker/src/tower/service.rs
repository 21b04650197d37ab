//! [`BreakerService`]: a tower `Service` behind a circuit breaker.

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use tower_service::Service;

#[cfg(feature = "tonic")]
use super::RespondGrpc;
#[cfg(feature = "axum")]
use super::RespondHttp;
use super::future::ResponseFuture;
use super::{AsError, Classify, DefaultClassifier, RefusalMode};
use crate::Breaker;

/// Wraps a tower `Service` in a [`Breaker`]; usually made by
/// [`BreakerLayer`](super::BreakerLayer).
///
/// - `poll_ready` only forwards the inner service's readiness (backpressure is kept); the
///   breaker never makes it return `Pending` or an error.
/// - `call` asks the breaker: a rejected call resolves at once without calling the inner
///   service (whose readiness is then kept for the next call), as the [`RefusalMode`] `M`
///   reports it ([`BreakerError::Rejected`](crate::BreakerError::Rejected) by default; a
///   response of its own after `respond_http` or `respond_grpc`); an admitted one carries
///   its permit in the [`ResponseFuture`], which the classifier `K` settles on completion.
///
/// Clones share the breaker (it lives in the [`Breaker`]'s `Arc`), so the per-connection
/// clones axum, tonic and hyper make all feed and obey one breaker.
pub struct BreakerService<S, C: Clock = CoarseClock, K = DefaultClassifier, M = AsError> {
    inner: S,
    breaker: Breaker<C>,
    classifier: K,
    mode: PhantomData<fn() -> M>,
}

impl<S: Clone, C: Clock, K: Clone, M> Clone for BreakerService<S, C, K, M> {
    fn clone(&self) -> Self {
        BreakerService::from_parts(
            self.inner.clone(),
            self.breaker.clone(),
            self.classifier.clone(),
        )
    }
}

impl<S, C: Clock> BreakerService<S, C> {
    /// Wraps `inner` in `breaker`, with the [`DefaultClassifier`].
    pub const fn new(inner: S, breaker: Breaker<C>) -> Self {
        BreakerService::from_parts(inner, breaker, DefaultClassifier)
    }
}

impl<S, C: Clock, K> BreakerService<S, C, K> {
    /// Wraps `inner` in `breaker`, classifying results with `classifier`.
    pub const fn with_classifier(inner: S, breaker: Breaker<C>, classifier: K) -> Self {
        BreakerService::from_parts(inner, breaker, classifier)
    }
}

impl<S, C: Clock, K, M> BreakerService<S, C, K, M> {
    pub(crate) const fn from_parts(inner: S, breaker: Breaker<C>, classifier: K) -> Self {
        BreakerService {
            inner,
            breaker,
            classifier,
            mode: PhantomData,
        }
    }

    /// The same service answering a rejection or timeout itself with an HTTP response, as
    /// [`BreakerLayer::respond_http`](super::BreakerLayer::respond_http) does.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn respond_http(self) -> BreakerService<S, C, K, RespondHttp> {
        BreakerService::from_parts(self.inner, self.breaker, self.classifier)
    }

    /// The same service answering a rejection or timeout itself with a gRPC status, as
    /// [`BreakerLayer::respond_grpc`](super::BreakerLayer::respond_grpc) does.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn respond_grpc(self) -> BreakerService<S, C, K, RespondGrpc> {
        BreakerService::from_parts(self.inner, self.breaker, self.classifier)
    }

    /// The breaker, shared with every clone of this service.
    pub const fn breaker(&self) -> &Breaker<C> {
        &self.breaker
    }

    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub const fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, K, M, Req> Service<Req> for BreakerService<S, C, K, M>
where
    S: Service<Req>,
    C: Clock,
    K: Classify<S::Response, S::Error> + Clone,
    M: RefusalMode<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = M::Error;
    type Future = ResponseFuture<S::Future, C, K, M>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(M::inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.allow_owned() {
            Ok(permit) => {
                let timeout = self.breaker.timeout();
                ResponseFuture::called(
                    self.inner.call(req),
                    permit,
                    timeout,
                    self.classifier.clone(),
                )
            }
            Err(rejected) => ResponseFuture::rejected(rejected),
        }
    }
}

impl<S: fmt::Debug, C: Clock, K, M> fmt::Debug for BreakerService<S, C, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("classifier", &std::any::type_name::<K>())
            .field("refusals", &std::any::type_name::<M>())
            .finish()
    }
}
