//! [`Users`]: the cache of the user reads. Without Redis it is this process's
//! keel-collection `Cache` (as before `--redis` existed); with `--redis` it is
//! keel-rediscache's `RedisCache`, shared by every instance: a bounded local tier, then
//! Redis, then the database, loaded **once per key across all instances** (a rebuild lease
//! in Redis), with "no such user" remembered in both tiers. Either way the loader is the
//! breaker's call, so a load is one guarded database read.
//!
//! With Redis, a failing Redis does not send the misses to the database: the cache's
//! failure policy is `FailFast` (its default, go-zero's), and the request is answered 503
//! with `Retry-After: 1` ([`ApiError::Unavailable`]); local hits are still served. Every
//! instance builds its cache under one name, `{redis_prefix}:users`, so instances with the
//! same prefix share it and test runs with their own prefix do not collide.

use keel::collection::cache::Cache;
use keel::rediscache::{Connection, RedisCache};
use serde_json::{Value, json};

use crate::config::Config;
use crate::db::Db;
use crate::error::{ApiError, StartError};

// keel: cache (with --redis: shared by every instance)
/// The user names by id. Clones share the cache.
#[derive(Clone)]
pub(crate) enum Users {
    /// In this process (no `--redis`): named `users` in the metrics.
    Local(Cache<i64, String>),
    /// Shared by every instance on Redis (`--redis`): keel-rediscache's defaults but for
    /// the time to live and the negative one (the same as the local cache's), so a local
    /// tier of 10,000 users kept at most 5 s, evicted on every instance at once by `del`
    /// (pub/sub; the service has no writes yet), a 3 s rebuild lease (above the breaker's
    /// 1 s deadline) and `FailFast`.
    Shared(RedisCache<String>),
}

impl Users {
    pub(crate) async fn build(config: &Config) -> Result<Users, StartError> {
        let Some(url) = &config.redis else {
            let users = Cache::builder(config.cache_ttl)
                .name("users")
                .negative_ttl(config.negative_ttl)
                .capacity(100_000)
                .build()?;
            return Ok(Users::Local(users));
        };
        let client = redis::Client::open(url.as_str())?;
        let name = format!("{}:users", config.redis_prefix);
        let users = RedisCache::builder(name, Connection::single(client.clone()).await?)
            .ttl(config.cache_ttl)
            .not_found_ttl(config.negative_ttl)
            .subscriber(client)
            .build()?;
        Ok(Users::Shared(users))
    }

    /// The user's name: a miss is loaded once for all concurrent requests of that id (with
    /// Redis: across all instances) through the breaker; no such user is 404, remembered
    /// for the negative TTL.
    pub(crate) async fn take(&self, id: i64, db: &Db) -> Result<String, ApiError> {
        let found = match self {
            Users::Local(cache) => cache.take_optional_async(id, || db.user(id)).await?,
            Users::Shared(cache) => cache.take_optional(&id.to_string(), || db.user(id)).await?,
        };
        found.ok_or(ApiError::NotFound)
    }
}
// keel: end

impl Users {
    /// Hands the local cache's batched request counts to the metrics recorder (the shared
    /// cache records its requests as they happen).
    pub(crate) fn publish_metrics(&self) {
        if let Users::Local(cache) = self {
            cache.publish_metrics();
        }
    }

    /// What the cache has seen, for `/stats`.
    pub(crate) fn stats(&self) -> Value {
        match self {
            Users::Local(cache) => {
                let s = cache.snapshot();
                json!({ "hits": s.hits, "misses": s.misses })
            }
            Users::Shared(cache) => {
                let s = cache.snapshot();
                json!({
                    "keys": cache.redis_key("*"),
                    "l1_hits": s.l1_hits,
                    "l2_hits": s.l2_hits,
                    "misses": s.misses,
                    "loads": s.loads,
                    "load_errors": s.load_errors,
                    "lease_waits": s.lease_waits,
                    "lease_timeouts": s.lease_timeouts,
                    "placeholder_hits": s.placeholder_hits,
                    "redis_errors": s.redis_errors,
                    "invalidations_received": s.invalidations_received,
                })
            }
        }
    }
}
