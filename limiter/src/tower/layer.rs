//! [`RateLimitLayer`]: puts services behind one shared [`TokenLimiter`].

use std::fmt;
use std::marker::PhantomData;

use keel_timex::{Clock, CoarseClock};
use tower_layer::Layer;

#[cfg(feature = "tonic")]
use super::RespondGrpc;
#[cfg(feature = "axum")]
use super::RespondHttp;
use super::limit::Limit;
use super::{AsError, MissingKey, RateLimitService, Unkeyed};
use crate::TokenLimiter;

/// A tower `Layer` that puts every service it wraps behind one [`TokenLimiter`], keyed by
/// `K` (a [`KeyExtractor`](super::KeyExtractor)).
///
/// Clones of the layer, the services it makes and their clones all share the limiter (its
/// buckets live in an `Arc`): a client's bucket is the same whatever connection or route
/// its request came in on. For separate limits per route, use one limiter per route.
///
/// A refusal is the service's error ([`LimitError::Limited`](super::LimitError::Limited))
/// unless [`respond_http`](RateLimitLayer::respond_http) or
/// [`respond_grpc`](RateLimitLayer::respond_grpc) make the layer answer it itself; the
/// marker `M` ([`RefusalMode`](super::RefusalMode)) records the choice.
///
/// ```
/// use keel_limiter::tower::{MissingKey, RateLimitLayer};
/// use keel_limiter::{Rate, TokenLimiter};
///
/// struct Request {
///     tenant: Option<String>,
/// }
///
/// let limiter = TokenLimiter::builder(Rate::per_second(100), 20).build()?;
/// // A tenant's bulk request costs 5 tokens; requests without a tenant are not limited.
/// let layer = RateLimitLayer::new(limiter, |req: &Request| req.tenant.clone())
///     .cost(5)
///     .missing_key(MissingKey::Allow);
/// # let _ = layer;
/// # Ok::<(), keel_limiter::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RateLimitLayer<K, C: Clock = CoarseClock, M = AsError> {
    limit: Limit<K, C>,
    mode: PhantomData<fn() -> M>,
}

impl<C: Clock> RateLimitLayer<Unkeyed, C> {
    /// A layer taking every request's tokens from `limiter`'s unkeyed bucket: one limit for
    /// the whole service.
    pub fn unkeyed(limiter: TokenLimiter<C>) -> Self {
        RateLimitLayer::new(limiter, Unkeyed)
    }
}

impl<K, C: Clock> RateLimitLayer<K, C> {
    /// A layer taking each request's tokens from the bucket of the key `key` extracts
    /// (a closure `|req: &Req| -> Option<String>`; annotate its argument's type), one token
    /// a request, keyless requests sharing the unkeyed bucket ([`MissingKey::Shared`]).
    pub fn new(limiter: TokenLimiter<C>, key: K) -> Self {
        RateLimitLayer {
            limit: Limit::new(limiter, key),
            mode: PhantomData,
        }
    }
}

impl<K, C: Clock, M> RateLimitLayer<K, C, M> {
    /// The same layer, its services answering a refusal themselves with an HTTP response
    /// (feature `axum`): 429 Too Many Requests with `Retry-After`, or 503 for a failing
    /// backend (see [`RespondHttp`]). The inner service is not called, as before; the
    /// service's error becomes the inner service's own, so behind an axum `Router` (whose
    /// routes are infallible) no `HandleErrorLayer` is needed.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn respond_http(self) -> RateLimitLayer<K, C, RespondHttp> {
        self.with_mode()
    }

    /// The same layer, its services answering a refusal themselves with a trailers-only
    /// gRPC response (feature `tonic`): `RESOURCE_EXHAUSTED`, or `UNAVAILABLE` for a
    /// failing backend (see [`RespondGrpc`]). The inner service is not called, as before;
    /// the service's error becomes the inner service's own, so
    /// `tonic::transport::Server::builder().layer(..)` takes the layer as it is.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn respond_grpc(self) -> RateLimitLayer<K, C, RespondGrpc> {
        self.with_mode()
    }

    #[cfg(any(feature = "axum", feature = "tonic"))]
    fn with_mode<M2>(self) -> RateLimitLayer<K, C, M2> {
        RateLimitLayer {
            limit: self.limit,
            mode: PhantomData,
        }
    }

    /// Every request takes `n` tokens (default 1). With `n` above the limiter's burst every
    /// request is refused with [`Denied::NeverFits`](crate::Denied::NeverFits).
    ///
    /// # Panics
    ///
    /// If `n` is 0: a request that takes nothing is never limited (leave the layer out).
    pub fn cost(mut self, n: u32) -> Self {
        self.limit.set_cost(n);
        self
    }

    /// What happens to a request without a key (default [`MissingKey::Shared`]).
    pub fn missing_key(mut self, missing: MissingKey) -> Self {
        self.limit.set_missing_key(missing);
        self
    }

    /// The limiter every service of this layer shares.
    pub fn limiter(&self) -> &TokenLimiter<C> {
        &self.limit.limiter
    }
}

impl<S, K: Clone, C: Clock, M> Layer<S> for RateLimitLayer<K, C, M> {
    type Service = RateLimitService<S, K, C, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService::from_limit(inner, self.limit.clone())
    }
}

impl<K, C: Clock, M> fmt::Debug for RateLimitLayer<K, C, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limit", &self.limit)
            .field("refusals", &std::any::type_name::<M>())
            .finish()
    }
}
