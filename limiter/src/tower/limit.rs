//! [`Limit`]: what a layer and its services share, and the decision it takes per request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use keel_timex::Clock;

use super::{KeyExtractor, MissingKey};
use crate::{Denied, TokenLimiter};

/// A decision that awaits the backend (a Redis script), owning what it needs.
pub(crate) type Deferred = Pin<Box<dyn Future<Output = Result<(), Denied>> + Send>>;

/// A request's decision: taken in `call` (in memory), or to be awaited.
pub(crate) enum Verdict {
    Now(Result<(), Denied>),
    Later(Deferred),
}

/// The limiter, how to key a request and what it costs.
#[derive(Clone)]
pub(crate) struct Limit<K, C: Clock> {
    pub(crate) limiter: TokenLimiter<C>,
    key: K,
    cost: u32,
    missing: MissingKey,
    /// Whether the limiter decides on Redis. In memory the async decision never awaits and
    /// is the synchronous one, so it is taken in `call` without boxing a future.
    remote: bool,
}

impl<K, C: Clock> Limit<K, C> {
    pub(crate) fn new(limiter: TokenLimiter<C>, key: K) -> Self {
        #[cfg(feature = "redis")]
        let remote = limiter.snapshot().redis.is_some();
        #[cfg(not(feature = "redis"))]
        let remote = false;
        Limit {
            limiter,
            key,
            cost: 1,
            missing: MissingKey::Shared,
            remote,
        }
    }

    pub(crate) fn set_cost(&mut self, n: u32) {
        assert!(n > 0, "a request must cost at least one token");
        self.cost = n;
    }

    pub(crate) fn set_missing_key(&mut self, missing: MissingKey) {
        self.missing = missing;
    }

    /// Forces the deferred path, as on Redis (for the unit tests of the response future).
    #[cfg(test)]
    pub(crate) fn set_remote(&mut self) {
        self.remote = true;
    }

    /// Keys `req` and asks the limiter for its cost.
    pub(crate) fn decide<Req>(&self, req: &Req) -> Verdict
    where
        K: KeyExtractor<Req>,
    {
        let key = self.key.key(req);
        let n = self.cost;
        if key.is_none() && self.missing == MissingKey::Allow {
            return Verdict::Now(Ok(()));
        }
        if !self.remote {
            return Verdict::Now(match key.as_deref() {
                Some(key) => self.limiter.allow_key_n(key, n),
                None => self.limiter.allow_n(n),
            });
        }
        let limiter = self.limiter.clone();
        Verdict::Later(Box::pin(async move {
            match key {
                Some(key) => limiter.allow_key_n_async(&key, n).await,
                None => limiter.allow_n_async(n).await,
            }
        }))
    }
}

impl<K, C: Clock> fmt::Debug for Limit<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("limiter", &self.limiter)
            .field("key", &std::any::type_name::<K>())
            .field("cost", &self.cost)
            .field("missing_key", &self.missing)
            .field("remote", &self.remote)
            .finish()
    }
}
