//! [`RateLimitService`]: a tower `Service` behind a rate limiter.

use std::fmt;
use std::mem;
use std::task::{Context, Poll};

use keel_timex::{Clock, CoarseClock};
use tower_service::Service;

use super::future::ResponseFuture;
use super::limit::{Limit, Verdict};
use super::{KeyExtractor, LimitError};
use crate::TokenLimiter;

/// A tower `Service` behind a [`TokenLimiter`]; usually made by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// - `poll_ready` forwards the inner service's readiness and nothing else: the limiter
///   never makes it `Pending` or an error, even while it refuses every call.
/// - `call` keys the request and asks the limiter for its cost: a refused call resolves to
///   [`LimitError::Limited`] without calling the inner service. In memory the decision is
///   taken in `call` and an admitted request goes to the inner service at once; on Redis
///   the [`ResponseFuture`] awaits the decision, then calls the inner service.
///
/// The inner service must be `Clone` for that deferred call: `call` moves the service
/// `poll_ready` reported ready into the future and keeps a fresh clone, which the next
/// `poll_ready` drives (tower's clone-and-replace idiom: calling a clone that was never
/// polled would skip its readiness, such as a concurrency permit or a buffer slot). Clones
/// share the limiter, so the per-connection clones hyper, axum and tonic make all take from
/// one set of buckets.
#[derive(Clone)]
pub struct RateLimitService<S, K, C: Clock = CoarseClock> {
    inner: S,
    limit: Limit<K, C>,
}

impl<S, K, C: Clock> RateLimitService<S, K, C> {
    /// Puts `inner` behind `limiter`, keyed by `key`, with the defaults of
    /// [`RateLimitLayer::new`](super::RateLimitLayer::new); for another cost or
    /// [`MissingKey`](super::MissingKey), configure the layer and `layer` the service.
    pub fn new(inner: S, limiter: TokenLimiter<C>, key: K) -> Self {
        RateLimitService::from_limit(inner, Limit::new(limiter, key))
    }

    pub(crate) fn from_limit(inner: S, limit: Limit<K, C>) -> Self {
        RateLimitService { inner, limit }
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

impl<S, K, C, Req> Service<Req> for RateLimitService<S, K, C>
where
    S: Service<Req> + Clone,
    K: KeyExtractor<Req>,
    C: Clock,
{
    type Response = S::Response;
    type Error = LimitError<S::Error>;
    type Future = ResponseFuture<S::Future, S, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LimitError::Inner)
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

impl<S: fmt::Debug, K, C: Clock> fmt::Debug for RateLimitService<S, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("limit", &self.limit)
            .field("inner", &self.inner)
            .finish()
    }
}
