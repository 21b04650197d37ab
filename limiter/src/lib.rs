//! Rate limiters, go-zero's `limit` package: a token bucket and a fixed-window counter,
//! in process memory or shared through Redis, surviving Redis failing.
//!
//! # Example
//!
//! ```
//! use keel_limiter::{Denied, PeriodLimiter, Rate, TokenLimiter};
//! use std::time::Duration;
//!
//! // 100 requests per second per client, bursts of 20.
//! let per_client = TokenLimiter::builder(Rate::per_second(100), 20).build()?;
//! match per_client.allow_key_n("203.0.113.7", 1) {
//!     Ok(()) => { /* serve */ }
//!     Err(Denied::Limited { retry_after }) => { /* 429, Retry-After: retry_after */ }
//!     Err(other) => { /* other.http_status() */ }
//! }
//!
//! // 5 SMS per user per day.
//! let sms = PeriodLimiter::builder(5, Duration::from_secs(86_400)).build()?;
//! assert!(sms.take("alice")?.is_allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The two limiters
//!
//! - [`TokenLimiter`]: a bucket of `burst` tokens refilled continuously at a [`Rate`]; a
//!   request takes `n` tokens or is refused with the time until they are there
//!   ([`Denied::Limited`]). Asking for more than `burst` is [`Denied::NeverFits`] at once,
//!   never a wait that cannot end. Unkeyed (`allow`) or keyed (`allow_key`): one bucket
//!   per user, client IP, tenant.
//! - [`PeriodLimiter`]: at most `quota` requests per key per fixed window (go-zero's
//!   `PeriodLimit`), answering go-zero's states [`PeriodState::Allowed`],
//!   [`HitQuota`](PeriodState::HitQuota) (this request used the last unit) and
//!   [`OverQuota`](PeriodState::OverQuota). Windows start at a key's first request, or
//!   are [aligned](PeriodBuilder::align) on local boundaries (a daily quota resetting at
//!   midnight).
//!
//! # In memory
//!
//! Each bucket or window is one `u64` updated by one compare-and-swap: a token bucket is
//! kept in its GCRA form (the time it will be full again), a window as its end and count.
//! Keyed state lives in sharded maps read under a shard's read lock, so requests for
//! different keys (and for the same key) never wait on each other's lock. A key is held as
//! its 64-bit hash under a random per-limiter seed, 16 bytes per slot and no allocation
//! per key; two keys share a bucket only on a hash collision (about n² / 2^65 for n live
//! keys), which can only make their limit stricter. A bucket at
//! rest (full) or an ended window means exactly what an absent key means, so such keys are
//! swept as the maps grow: memory follows the keys active within one refill time or
//! window, whatever the key churn, and `max_keys` caps it outright (a new key is refused
//! with [`Denied::KeyCapacity`] rather than resetting someone else's bucket). The default
//! clock is the process-wide coarse clock (1 ms); a bucket that refills in under 2 ms
//! reads the precise clock instead.
//!
//! # On Redis (feature `redis`)
//!
//! One Lua script per decision (`EVALSHA`; sent again as `EVAL` on `NOSCRIPT`, so a
//! flushed script cache is not a failure), time taken from the Redis server (instances
//! with skewed clocks agree), microsecond refill, keys with a TTL and a hash tag
//! (`{prefix:key}`); sync and async (tokio) calls; one server
//! ([`RedisStore::open`](redis::RedisStore::open)) or a Redis Cluster
//! ([`RedisStore::open_cluster`](redis::RedisStore::open_cluster), where a failing master
//! takes only its own keys to the failure policy). When the Redis server
//! fails (connection, timeout, an error about itself such as `READONLY` or `LOADING`), the
//! [`FailurePolicy`] decides from the first error: a local rescue limiter (default,
//! go-zero's), fail-open or fail-closed (`Err(Denied::Unavailable)`); a probe every 100 ms
//! switches back once Redis answers. Every switch is counted in the snapshot and logged
//! with `tracing`. An error that concerns one key only (a key of another type, a period
//! counter at `i64::MAX`, a corrupt bucket, a key on another cluster node) gets the
//! policy's answer for that request only: the limiter stays on Redis for every other key,
//! and the error is counted in [`RedisStats::key_errors`](redis::RedisStats::key_errors).
//! The [`redis`] module docs have the whole table.
//!
//! Lease mode ([`TokenBuilder::lease`], beyond go-zero) takes tokens from the Redis bucket
//! in batches and spends them locally, so most decisions cost a compare-and-swap instead
//! of a round trip; it never grants more than the shared bucket, at the price of tokens
//! sitting unused in one instance's lease.
//!
//! # Metrics (feature `metrics`)
//!
//! Counters through the [`metrics`](https://docs.rs/metrics) facade, so any recorder
//! works (Prometheus, OpenTelemetry, StatsD); the crate never installs one. Every series
//! carries the limiter's `name` (the builder's [`name`](TokenBuilder::name), default
//! `token-limiter` / `period-limiter`) and `kind` (`token` or `period`); keys never
//! become label values, so a keyed limiter is one set of series however many keys it sees.
//!
//! - `keel_limiter_decisions_total{outcome, backend}`: every answer of `allow*` /
//!   `take*`, once. `outcome` is what the caller was told: `allowed`, `limited` (every
//!   refusal answered 429: [`Denied::Limited`], [`PeriodState::OverQuota`],
//!   [`Denied::KeyCapacity`], [`Denied::NeverFits`]) or `unavailable`
//!   ([`Denied::Unavailable`]). `backend` is who decided: `memory` (in process: an
//!   in-memory limiter; on Redis, `n > burst` refused before Redis is asked and a lease's
//!   local spend), `redis` (a round trip: equal to `RedisStats::decisions`) or `rescue`
//!   (the [`FailurePolicy`]: equal to the snapshot's `policy_decisions`).
//! - On Redis, the events [`RedisStats`](redis::RedisStats) counts:
//!   `keel_limiter_backend_switches_total{to="fallback"|"redis"}`,
//!   `keel_limiter_redis_errors_total{blame="key"|"server", error}` (`error` is the
//!   [`RedisErrorKind`](redis::RedisErrorKind) in snake case: `connection`, `timeout`,
//!   `script`, `wrong_type`, `overflow`, `unexpected_reply`, `misrouted`) and
//!   `keel_limiter_script_reloads_total`.
//!
//! **Install the recorder before building the limiter**: its handles are registered once,
//! at build time, with the recorder installed then (a limiter built before records
//! nothing). A decision adds one to the limiter's own atomic counter (no lock, no
//! allocation, no recorder call: the recorder's own counter would cost more than the
//! decision); the decision counts reach the recorder at least once a second (keel-timex's
//! shared periodic thread), at every `snapshot()` and
//! [`publish_metrics`](TokenLimiter::publish_metrics), and when the limiter is dropped.
//! Call `publish_metrics()` before rendering a scrape that must include the last second.
//! Without the feature the recording compiles to nothing. `METRICS.md` at the root
//! of the keel repository lists every crate's series.
//!
//! # Differences from go-zero
//!
//! - Continuous (nanosecond) refill in memory and microsecond refill on Redis; go-zero's
//!   script refills in whole seconds from the client's clock, so instances with skewed
//!   clocks disagree and a second boundary grants `rate` tokens at once.
//! - Validated configuration: a zero rate, burst, quota or period is a [`ConfigError`]
//!   (go-zero panics on a zero rate and misbehaves on negative ones); a burst under half
//!   the rate no longer gives a zero TTL (go-zero's `SETEX` then fails on every call).
//! - A refusal says when to retry; `n > burst` is its own answer.
//! - Keyed in-memory limiters with bounded memory; go-zero's in-process limiter is only
//!   its rescue.
//! - The period limiter's Redis key heals itself when it has no TTL (go-zero's key never
//!   expires if its one `EXPIRE` failed).
//! - Rust has no local time zone in std: aligned windows take the UTC offset explicitly.
//!
//! # Features
//!
//! - `redis`: the Redis backend, its failure policies and lease mode (implies `tokio`).
//! - `tokio`: `until_ready`, waiting on tokio's timer.
//! - `tower`: a keyed `Clone` layer sharing one limiter ([`tower::RateLimitLayer`]),
//!   refusing in `call` with a typed error that maps to 429 (503 for a failing backend) /
//!   `RESOURCE_EXHAUSTED`.
//! - `axum`: [`Denied`] and the layer's error as axum responses (429 or 503 with
//!   `Retry-After`), and `respond_http`, a layer that answers a refusal itself (no
//!   `HandleErrorLayer`); on `axum-core`, not the whole of axum.
//! - `tonic`: [`Denied`] and the layer's error as `tonic::Status`
//!   (`RESOURCE_EXHAUSTED` / `UNAVAILABLE`, a `retry-after` metadata entry), and
//!   `respond_grpc`, a layer that answers a refusal itself as a gRPC response; tonic
//!   without its transport.
//! - `tracing`: events when a Redis-backed limiter switches to and from its rescue.
//! - `metrics`: counters of decisions, switches, Redis errors and script reloads through
//!   the `metrics` facade (see [Metrics](#metrics-feature-metrics)).
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod memory;
mod metrics;
mod period;
mod policy;
mod rate;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod snapshot;
mod state;
mod token;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use error::{ConfigError, Denied};
pub use period::{PeriodBuilder, PeriodLimiter};
pub use policy::FailurePolicy;
pub use rate::Rate;
pub use snapshot::{PeriodSnapshot, TokenSnapshot};
pub use state::{PeriodDecision, PeriodState};
pub use token::{TokenBuilder, TokenLimiter};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
