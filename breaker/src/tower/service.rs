//! [`BreakerService`]: a tower `Service` behind a circuit breaker.

use std::fmt;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use tower_service::Service;

use super::future::ResponseFuture;
use super::{Classify, DefaultClassifier};
use crate::{Breaker, BreakerError};

/// Wraps a tower `Service` in a [`Breaker`]; usually made by
/// [`BreakerLayer`](super::BreakerLayer).
///
/// - `poll_ready` only forwards the inner service's readiness (backpressure is kept); the
///   breaker never makes it return `Pending` or an error.
/// - `call` asks the breaker: a rejected call resolves at once to
///   [`BreakerError::Rejected`] without calling the inner service (whose readiness is then
///   kept for the next call); an admitted one carries its permit in the
///   [`ResponseFuture`], which the classifier `K` settles on completion.
///
/// Clones share the breaker (it lives in the [`Breaker`]'s `Arc`), so the per-connection
/// clones axum, tonic and hyper make all feed and obey one breaker.
#[derive(Clone)]
pub struct BreakerService<S, C: Clock = CoarseClock, K = DefaultClassifier> {
    inner: S,
    breaker: Breaker<C>,
    classifier: K,
}

impl<S, C: Clock> BreakerService<S, C> {
    /// Wraps `inner` in `breaker`, with the [`DefaultClassifier`].
    pub const fn new(inner: S, breaker: Breaker<C>) -> Self {
        BreakerService {
            inner,
            breaker,
            classifier: DefaultClassifier,
        }
    }
}

impl<S, C: Clock, K> BreakerService<S, C, K> {
    /// Wraps `inner` in `breaker`, classifying results with `classifier`.
    pub const fn with_classifier(inner: S, breaker: Breaker<C>, classifier: K) -> Self {
        BreakerService {
            inner,
            breaker,
            classifier,
        }
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

impl<S, C, K, Req> Service<Req> for BreakerService<S, C, K>
where
    S: Service<Req>,
    C: Clock,
    K: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C, K>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
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

impl<S: fmt::Debug, C: Clock, K> fmt::Debug for BreakerService<S, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("classifier", &std::any::type_name::<K>())
            .finish()
    }
}
