//! keel-rediscache: a two-tier cache-aside cache for database reads, shared by every
//! instance of a service (go-zero's `core/stores/cache`, made multi-instance), plus
//! [`bloom`] filters on Redis bitmaps.
//!
//! ```no_run
//! use keel_rediscache::{Connection, RedisCache, TakeError};
//! use std::time::Duration;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = redis::Client::open("redis://127.0.0.1:6379/")?;
//! let users: RedisCache<String> = RedisCache::builder("users:v1", Connection::single(client.clone()).await?)
//!     .ttl(Duration::from_secs(3_600))
//!     .stale_grace(Duration::from_secs(30))
//!     .subscriber(client) // invalidate every instance's local tier
//!     .build()?;
//!
//! // A miss anywhere loads once across all instances; the rest wait or get the stale value.
//! let name = users
//!     .take_optional("7", || async { Ok::<_, std::io::Error>(Some("ada".to_string())) })
//!     .await?;
//! assert_eq!(name.as_deref(), Some("ada"));
//!
//! // After updating the database: every instance forgets the key.
//! users.del("7").await?;
//! # Ok(()) }
//! ```
//!
//! Synchronous code reads with [`RedisCache::take_blocking`] /
//! [`RedisCache::take_optional_blocking`] (plain loader closures; the read path runs on the
//! runtime the cache was built on while the calling thread waits).
//!
//! # The read path
//!
//! [`RedisCache::take`] looks in three places:
//!
//! 1. **The local tier** (L1): keel-collection's bounded [`Cache`](keel_collection::cache::Cache)
//!    in this process, entries kept at most [`Builder::local`]'s time to live (jittered) and
//!    never past their logical expiry: each is stored with the shorter of the two, so the
//!    local tier's own deadline is the only check a hit makes. A hit costs no I/O and about
//!    what a keel-collection `get` costs (measured in keel-benches' `rediscache` suite).
//! 2. **Redis** (L2): on a local miss, concurrent callers of one key in this process share one
//!    lookup (L1's coalescing `take_async`). A fresh entry is returned and kept locally.
//! 3. **The loader**, once across every instance: the lookup takes the key's **rebuild
//!    lease**, `SET {name:key}:lease <token> NX PX <lease>` with a random fencing token, and
//!    calls the loader. Its value is written by a Lua script only if the lease still holds
//!    that token (a holder whose lease expired, or was deleted by a `set`/`del`, cannot
//!    write an old value), which also releases the lease. A failed load releases it by
//!    compare-and-delete; a dropped or panicking one releases it from a spawned task, and a
//!    dead process's lease expires after [`Builder::lease`].
//!
//! The other instances' lookups find the lease held and either **serve the stale value** they
//! read (with a [`Builder::stale_grace`]) or **wait** for the holder's value, polling Redis
//! with backoff (2 ms doubling to 50 ms) for at most [`Builder::lease_wait`], then
//! [`TakeError::Busy`]. A lookup that took the lease reads the value once more before loading,
//! so a holder finishing between its read and its lease cannot cause a second load. So a
//! cold key, or a hot key whose entry just expired, is loaded **once across all instances**
//! (tests/multi_instance.rs: 1,000 requests over 4 instances, 1 PostgreSQL query; a hot key
//! under load, 1 query per expiry).
//!
//! # Entries in Redis
//!
//! | key | holds |
//! |---|---|
//! | `{name:key}` | the entry: `0xE1`, kind (0 not found, 1 value), logical expiry (u64 LE, ms on the cache's clock), the value's bytes from the [`Codec`] |
//! | `{name:key}:lease` | the rebuild lease's fencing token, `PX` = the lease |
//!
//! Both share the hash tag `{name:key}`, so on a Redis Cluster they live on one slot and the
//! scripts may touch both. The logical expiry is the time to live spread by the jitter (±5%
//! by default, go-zero's, so keys written together do not expire together); Redis's `PX` is
//! that plus the stale grace, so an expired entry stays readable while it is rebuilt. "Not
//! found" is stored as a placeholder entry with its own, shorter time to live
//! ([`Builder::not_found_ttl`], go-zero's `notFoundExpiry`) in both tiers. An entry that does
//! not decode is deleted (if unchanged) and loaded again, never returned
//! ([`Stats::corrupt`]).
//!
//! # Invalidation and its staleness bound
//!
//! [`RedisCache::set`] and [`RedisCache::del`] change Redis (deleting any rebuild lease with
//! it) and then `PUBLISH` the key on the channel `keel-rediscache:name`. Every instance built
//! with a [`Builder::subscriber`] runs a tokio task with its own connection subscribed to that
//! channel, and evicts the keys from its local tier (skipping its own messages). The bound on
//! serving a changed value from another instance's local tier is **pub/sub delivery
//! latency**: measured in tests/multi_instance.rs on a shared 2-core machine, from `del`'s
//! call to both other instances' local tiers cleared (including the `DEL` and the `PUBLISH`
//! round trips), p50 0.8 ms, p99 6 ms, max 17 ms over 200 deletes. Pub/sub does not queue: after
//! the subscription reconnects, the instance clears its whole local tier (messages may have
//! been missed), and while it is disconnected the local tier's time to live
//! ([`Builder::local`], default 5 s) is the worst-case bound.
//!
//! A `del` that fails (a Redis error or timeout) is queued on a keel-timingwheel and retried
//! in the background with doubling backoff, a bounded number of times
//! ([`Builder::delete_retries`]); `del` returns [`DelError::Queued`] so the caller knows.
//!
//! # When Redis fails
//!
//! The local tier keeps serving. A local miss follows the [`FailurePolicy`]: `FailFast` (the
//! default, go-zero's: a Redis outage must not become a database stampede) returns
//! [`TakeError::Redis`] without calling the loader; `Load` calls it through a keel-syncx
//! [`Limit`](keel_syncx::limit::Limit) that bounds the loads reaching the database. Every
//! command is bounded by [`Builder::timeout`], so nothing hangs. Every error is counted
//! ([`RedisCache::snapshot`]).
//!
//! # Time
//!
//! Logical expiries are compared by every instance, so they are on a shared time line: the
//! default [`UnixClock`] (wall-clock ms). Tests share one
//! [`ManualClock`](keel_timex::ManualClock) between their instances to move logical expiry by
//! hand; Redis's own `PX` always runs on real time (keep it generous in such tests).
//!
//! # Metrics
//!
//! With feature `metrics`, each instance records its events through the
//! [`metrics`](https://docs.rs/metrics) facade as `keel_rediscache_*` series labelled with
//! the cache's name (never with keys): how each take was answered
//! (`keel_rediscache_requests_total{result = hit | not_found | miss}`), how each local load
//! ended (`keel_rediscache_lookups_total{result = hit | not_found | stale | load |
//! degraded_load | busy | unavailable | overloaded}`), loader runs and their duration, lease
//! waits and lost leases, Redis errors by [`RedisErrorKind`], corrupt entries, sets, deletes
//! and their retries, invalidations sent and received, subscriptions and local clears. Each
//! is recorded where [`Stats`] counts the same event, so the two agree; the table is in
//! METRICS.md at the repository root. The handles are registered by
//! [`Builder::build`], with the recorder installed at that moment: install it first.
//! Without the feature nothing is recorded and nothing is paid.
//!
//! The local tier is a keel-collection cache named `rediscache:<name>`, the delete retries a
//! keel-timingwheel named `rediscache-retry:<name>`; if those crates' own `metrics` features
//! are on in the build, their `keel_cache_*` and `keel_timingwheel_*` series appear under
//! those names. They count that cache's own calls: a take that misses locally is a `get`
//! and a `take_async` there (two misses), and its "loads" are this cache's Redis lookups.
//!
//! # Differences from go-zero
//!
//! go-zero's cache has Redis only, coalesces per process (singleflight), stores "not found"
//! as `*`, and deletes with a retry after a delay on failure. Here: a local tier in front;
//! one load across instances (the fenced lease); stale serving during a rebuild; invalidation
//! of every instance's local tier; typed errors; an explicit failure policy; values through
//! serde with a pluggable codec instead of JSON only; corrupt entries deleted and reloaded.

#![deny(missing_docs)]

pub mod bloom;

mod cache;
mod clock;
mod codec;
mod config;
mod conn;
mod envelope;
mod error;
mod invalidate;
mod link;
mod metrics;
mod policy;
mod retry;
mod stats;
mod take;

pub use cache::RedisCache;
pub use clock::UnixClock;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, CodecError, Postcard};
pub use config::{
    Builder, DEFAULT_JITTER, DEFAULT_NOT_FOUND_TTL, DEFAULT_TTL, MAX_DELETE_ATTEMPTS, MAX_LEASE,
    MAX_TIMEOUT, MAX_TTL,
};
pub use conn::Connection;
pub use error::{ConfigError, DelError, RedisError, RedisErrorKind, SetError, TakeError};
pub use policy::FailurePolicy;
pub use stats::Stats;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
