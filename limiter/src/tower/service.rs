//! [`RateLimitService`]: a tower `Service` behind a rate limiter.

use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use tower_service::Service;

#[cfg(feature = "tonic")]
use super::RespondGrpc;
#[cfg(feature = "axum")]
use super::RespondHttp;
use super::future::ResponseFuture;
use super::limit::{Limit, Verdict};
use super::{AsError, KeyExtractor, RefusalMode};
use crate::TokenLimiter;

/// A tower `Service` behind a [`TokenLimiter`]; usually made by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// - `poll_ready` forwards the inner service's readiness and nothing else: the limiter
///   never makes it `Pending` or an error, even while it refuses every call.
/// - `call` keys the request and asks the limiter for its cost: a refused call resolves to
///   the refusal without calling the inner service, as the [`RefusalMode`] `M` reports it
///   ([`LimitError::Limited`](super::LimitError::Limited) by default; a response of its
///   own after `respond_http` or `respond_grpc`). In memory the decision is taken in `call`
///   and an admitted request goes to the inner service at once; on Redis the
///   [`ResponseFuture`] awaits the decision, then calls the inner service.
///
/// The inner service must be `Clone` for that deferred call: `call` moves the service
/// `poll_ready` reported ready into the future and keeps a fresh clone, which the next
/// `poll_ready` drives (tower's clone-and-replace idiom: calling a clone that was never
/// polled would skip its readiness, such as a concurrency permit or a buffer slot). Clones
/// share the limiter, so the per-connection clones hyper, axum and tonic make all take from
/// one set of buckets.
#[derive(Clone)]
pub struct RateLimitService<S, K, C: Clock = CoarseClock, M = AsError> {
    inner: S,
    limit: Limit<K, C>,
    mode: PhantomData<fn() -> M>,
}

impl<S, K, C: Clock> RateLimitService<S, K, C> {
    /// Puts `inner` behind `limiter`, keyed by `key`, with the defaults of
    /// [`RateLimitLayer::new`](super::RateLimitLayer::new); for another cost or
    /// [`MissingKey`](super::MissingKey), configure the layer and `layer` the service.
    pub fn new(inner: S, limiter: TokenLimiter<C>, key: K) -> Self {
        RateLimitService::from_limit(inner, Limit::new(limiter, key))
    }
}

impl<S, K, C: Clock, M> RateLimitService<S, K, C, M> {
    pub(crate) fn from_limit(inner: S, limit: Limit<K, C>) -> Self {
        RateLimitService {
            inner,
            limit,
            mode: PhantomData,
        }
    }

    /// The same service answering a refusal itself with an HTTP response, as
    /// [`RateLimitLayer::respond_http`](super::RateLimitLayer::respond_http) does.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn respond_http(self) -> RateLimitService<S, K, C, RespondHttp> {
        RateLimitService::from_limit(self.inner, self.limit)
    }

    /// The same service answering a refusal itself with a gRPC status, as
    /// [`RateLimitLayer::respond_grpc`](super::RateLimitLayer::respond_grpc) does.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn respond_grpc(self) -> RateLimitService<S, K, C, RespondGrpc> {
        RateLimitService::from_limit(self.inner, self.limit)
    }

    /// The limiter, shared with every clone of this service.
    pub fn limiter(&self) -> &TokenLimiter<C> {
        &self.limit.limiter
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    #[cfg(test)]
    pub(crate) fn limit_mut(&mut self) -> &mut Limit<K, C> {
        &mut self.limit
    }
}

impl<S, K, C, M, Req> Service<Req> for RateLimitService<S, K, C, M>
where
    S: Service<Req> + Clone,
    K: KeyExtractor<Req>,
    C: Clock,
    M: RefusalMode<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = M::Error;
    type Future = ResponseFuture<S::Future, S, Req, M>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(M::inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limit.decide(&req) {
            Verdict::Now(Ok(())) => ResponseFuture::called(self.inner.call(req)),
            // The inner service's readiness stays reserved for the next call.
            Verdict::Now(Err(denied)) => ResponseFuture::refused(denied),
            Verdict::Later(decision) => {
                // The ready instance goes with the request; this one is replaced by a
                // clone that has not been polled yet.
                let fresh = self.inner.clone();
                let ready = mem::replace(&mut self.inner, fresh);
                ResponseFuture::deciding(decision, ready, req)
            }
        }
    }
}

impl<S: fmt::Debug, K, C: Clock, M> fmt::Debug for RateLimitService<S, K, C, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("limit", &self.limit)
            .field("refusals", &std::any::type_name::<M>())
            .field("inner", &self.inner)
            .finish()
    }
}
