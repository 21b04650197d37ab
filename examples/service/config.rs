//! [`Config`]: every knob of the service, so the binary and the tests build the same app
//! and differ only in values.

use std::time::Duration;

use keel::limiter::Rate;
use keel::shedder::cpu::ManualCpu;

/// What the service is built from. [`Config::default`] is the binary's, flags override it;
/// tests set what their scenario needs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// PostgreSQL, as a libpq-style connection string (`host=… port=… user=… dbname=…`).
    pub(crate) postgres: String,
    /// The schema holding the service's tables (created at start if missing); connections
    /// read it through their `search_path`, so the queries name no schema.
    pub(crate) schema: String,
    /// At most this many PostgreSQL connections, hence queries, at once.
    pub(crate) pool_size: usize,
    /// Time every query spends in PostgreSQL on purpose (`pg_sleep`), on top of its work:
    /// makes the capacity explicit (`pool_size / query_delay` queries a second). Zero in
    /// production; the overload test and demos set it.
    pub(crate) query_delay: Duration,
    /// The same for the posts query alone, the profile's heavy read.
    pub(crate) posts_delay: Duration,
    /// Each client's sustained rate.
    pub(crate) rate: Rate,
    /// Each client's burst (the bucket's size).
    pub(crate) burst: u32,
    /// Keep the per-client buckets and the user cache on this Redis (`redis://host:port`),
    /// shared by every instance of the service; `None` keeps them in this process.
    pub(crate) redis: Option<String>,
    /// The Redis keys' prefix: instances with the same prefix share their clients' limits
    /// and their user cache (named `{redis_prefix}:users`).
    pub(crate) redis_prefix: String,
    /// The shedder's CPU signal set by hand (tests, demos); `None` reads the container's
    /// (cgroup) or host's CPU, as in production.
    pub(crate) cpu: Option<ManualCpu>,
    /// How far back the breaker looks (go-zero: 10 s).
    pub(crate) breaker_window: Duration,
    /// The breaker's deadline for one database call, connecting included: past it the call
    /// is ended, answered 504 and counted as a failure.
    pub(crate) breaker_timeout: Duration,
    /// How long a user read stays cached.
    pub(crate) cache_ttl: Duration,
    /// How long "no such user" stays cached.
    pub(crate) negative_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            postgres: "host=127.0.0.1 user=postgres dbname=test".to_owned(),
            schema: "keel_service".to_owned(),
            pool_size: 8,
            query_delay: Duration::ZERO,
            posts_delay: Duration::ZERO,
            rate: Rate::per_second(100),
            burst: 20,
            redis: None,
            redis_prefix: "keel-service".to_owned(),
            cpu: None,
            breaker_window: Duration::from_secs(10),
            breaker_timeout: Duration::from_secs(1),
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
        }
    }
}
