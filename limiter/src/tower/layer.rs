//! [`RateLimitLayer`]: puts services behind one shared [`TokenLimiter`].

use std::fmt;

use keel_timex::{Clock, CoarseClock};
use tower_layer::Layer;

use super::limit::Limit;
use super::{MissingKey, RateLimitService, Unkeyed};
use crate::TokenLimiter;

/// A tower `Layer` that puts every service it wraps behind one [`TokenLimiter`], keyed by
/// `K` (a [`KeyExtractor`](super::KeyExtractor)).
///
/// Clones of the layer, the services it makes and their clones all share the limiter (its
/// buckets live in an `Arc`): a client's bucket is the same whatever connection or route
/// its request came in on. For separate limits per route, use one limiter per route.
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
pub struct RateLimitLayer<K, C: Clock = CoarseClock> {
    limit: Limit<K, C>,
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

impl<S, K: Clone, C: Clock> Layer<S> for RateLimitLayer<K, C> {
    type Service = RateLimitService<S, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService::from_limit(inner, self.limit.clone())
    }
}

impl<K, C: Clock> fmt::Debug for RateLimitLayer<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limit", &self.limit)
            .finish()
    }
}
