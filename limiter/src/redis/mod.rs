//! The Redis backend (feature `redis`): [`RedisStore`], the connection to one Redis server
//! or to one Redis Cluster, shared by any number of limiters, and [`RedisStats`], a
//! limiter's view of it.
//!
//! # Keys and scripts
//!
//! A limiter built with `.redis(store, prefix)` keeps key `k`'s state at `{prefix:k}` (the
//! unkeyed token bucket at `{prefix:}`). The braces are a Redis Cluster hash tag; each
//! decision touches exactly one Redis key, so it works on a cluster node as on a single
//! server. Every decision is one atomic Lua script (`EVALSHA`; after `NOSCRIPT`, e.g.
//! after a `SCRIPT FLUSH` or a failover, the same call is sent once as `EVAL`):
//!
//! - **Token bucket**: a hash with fields `tokens` (a float) and `ts` (microseconds of the
//!   server's clock, from `TIME`). The script refills `min(burst, tokens + elapsed × rate)`
//!   with microsecond resolution, takes `n` tokens if there are `n`, and answers either
//!   "allowed" or the microseconds until `n` tokens are there ([`Denied::Limited`]'s
//!   `retry_after`). A bucket whose fields it did not write (one missing, not a number,
//!   NaN, infinite or negative) is refused with an error, never computed with. An allowed decision rewrites both fields and sets a TTL of twice the
//!   time the bucket takes to fill (at least 1 ms): a key that expired was full anyway. A
//!   refusal writes nothing (the stored state already implies the refilled one).
//! - **Period**: `INCRBY` the counter; if the key has no TTL (its first hit, or a key whose
//!   expiry never got set) set one: the period, or with `align` the time to the next
//!   boundary of `(server Unix ms + offset)` modulo the period. The script answers the
//!   count and the key's remaining TTL; count < quota is `Allowed`, = quota `HitQuota`,
//!   > quota `OverQuota`, and `resets_in` is the TTL.
//!
//! No client time is ever sent: the scripts read the server's clock, so instances whose
//! clocks disagree still share one bucket exactly. The scripts need Redis 4.0 or later
//! (multi-field `HSET`; tested on 7.0).
//!
//! # Redis Cluster
//!
//! [`RedisStore::open_cluster`] (or [`RedisStore::from_cluster_client`] with a
//! `redis::cluster::ClusterClient` of your own) opens a store on a Redis Cluster; the
//! limiters are built on it exactly as on one server (`.redis(store, prefix)`), sync and
//! async:
//!
//! ```no_run
//! use keel_limiter::redis::RedisStore;
//! use keel_limiter::{FailurePolicy, PeriodLimiter, Rate, TokenLimiter};
//! use std::time::Duration;
//!
//! // Some masters' URLs: the client learns the rest of the cluster from the first that answers.
//! let store = RedisStore::open_cluster(["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"])?;
//! let api = TokenLimiter::builder(Rate::per_second(100), 20)
//!     .redis(store.clone(), "api")
//!     .failure_policy(FailurePolicy::Rescue)
//!     .build()?;
//! let sms = PeriodLimiter::builder(5, Duration::from_secs(86_400))
//!     .redis(store, "sms")
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - **Hash tags.** Each decision is one script on one Redis key, `{prefix:key}`, passed as
//!   the script's `KEYS[1]` (never built inside Lua), so the cluster client routes the call
//!   to the master serving that key's slot, and the script touches nothing else: no
//!   `CROSSSLOT` is possible. The braces make the whole `prefix:key` the hash tag: a key's
//!   bucket or counter lives on one master, different keys spread over all of them. (Keys
//!   of one limiter are not forced onto one node: that would put all of its load on one
//!   master.)
//! - **Redirections.** The cluster client keeps the slot map and follows `MOVED` and `ASK`
//!   (refreshing its map), and waits out `TRYAGAIN` and `CLUSTERDOWN` (10 to 100 ms), for
//!   one retry in [`open_cluster`](RedisStore::open_cluster)'s client. What is left after
//!   that is classified as on one server: `MOVED` / `ASK` / `TRYAGAIN` / `CROSSSLOT` concern
//!   that key (`Misrouted`), `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`, a lost connection or
//!   a timeout the server.
//! - **A failing master takes only its own keys.** A server error switches the keys of the
//!   master serving the failed key's slot (by the slot map the store reads with
//!   `CLUSTER SLOTS` when it connects, and again at each probe) to the failure policy; the
//!   other masters' keys keep deciding on Redis. The limiter's prober reads the slot map
//!   again and asks each master that is off for `CLUSTER INFO` (`PING` where that is not
//!   allowed); a master is back when it says `cluster_state:ok` (a restarted master
//!   answers `PING` at once but refuses its keys until it has rejoined), or when it no
//!   longer serves any slot (a replica took over: its keys now go to the new master).
//!   [`RedisStats::unhealthy_nodes`] names the masters that are off; a server error met
//!   before any slot map could be read takes the whole cluster off until one is read.
//! - **What the cluster client does when a master dies** (no replica to promote): calls
//!   for its slots fail (connection refused or reset, or a timeout if the host is gone)
//!   and the limiter switches that master's keys; the other masters serve theirs as long
//!   as the cluster does (with `cluster-require-full-coverage yes`, Redis's default, every
//!   node answers `CLUSTERDOWN` once the master is marked failed, after
//!   `cluster-node-timeout`: then every master's keys switch, one by one as they fail,
//!   and come back when the cluster is whole again). While the master is down the async
//!   client may send a call for its slots to another master, whose `MOVED` then uses the
//!   retry: that request gets the policy's answer as a key error. With a replica, the
//!   cluster promotes it, the client follows the new slot map, and the probe sees the
//!   old master serve no slot.
//! - **Connections.** Sync calls pool blocking cluster connections (each with one
//!   connection per master it has used); async calls share one async cluster connection.
//!   A blocking cluster connection repairs a lost node connection on its next call to
//!   that node, so a lost node closes only the connection that met it (and the async
//!   cluster connection, which is opened again on the next async call), not the store's
//!   other connections. Timeouts apply per
//!   node connection and per reply; a call the client retries may take them once more.
//!
//! # Failures
//!
//! A decision that fails is never an error to the caller: the limiter's
//! [`FailurePolicy`](crate::FailurePolicy) answers it. What else happens depends on whom
//! the error concerns ([`Blame`]; [`RedisErrorKind::classify`] tells the kind of any error
//! of the redis crate, and the table below sums it up):
//!
//! - **The server** (connection refused or lost, a timeout, an error the server answers
//!   about itself: `READONLY`, `LOADING`, `BUSY`, `OOM`, `MASTERDOWN`, ...): the limiter
//!   marks the backend unhealthy, and from then on the policy decides every key without
//!   asking Redis. One prober per limiter (a std thread named `keel-redis-probe`, so it
//!   works without a tokio runtime and off the async runtime's workers) sends `PING` every
//!   probe interval (100 ms by default) on a fresh or pooled connection; on `PONG` it
//!   marks the backend healthy and exits. The prober holds only a weak reference: once
//!   the limiter is dropped it exits at its next tick. Health is per limiter, as in
//!   go-zero.
//! - **One key** (its value is not the limiter's: another type (`WRONGTYPE`), a period
//!   counter at `i64::MAX` (`INCRBY` overflows) or not an integer, a token bucket whose
//!   fields are missing, not numbers, NaN, infinite or negative; a reply that is not a
//!   decision; or the key lives on another cluster node: `MOVED`, `ASK`, `TRYAGAIN`, or
//!   `CROSSSLOT`): the
//!   policy answers that request only (`FailClosed`: that request is
//!   [`Denied::Unavailable`](crate::Denied::Unavailable); `FailOpen`: it is allowed;
//!   `Rescue`: the local rescue limiter decides it), the limiter stays on Redis for every
//!   other key, no prober starts, and the error is counted in
//!   [`RedisStats::key_errors`] and by kind. The scripts leave such a key as it is
//!   (except a period counter below 1, which `INCRBY` counts and the script gives a TTL,
//!   so it expires with its window), so its requests keep going to the policy until
//!   someone repairs or deletes it.
//! - **`NOSCRIPT`** (the server's script cache was emptied by `SCRIPT FLUSH`, a restart or
//!   a failover) is not a failure: the call is sent again once as `EVAL` with the
//!   script's text, which runs it and caches it for the next `EVALSHA`, counted in
//!   [`RedisStats::script_reloads`].
//!
//! | error | kind | blame |
//! |---|---|---|
//! | connection refused, reset or lost; protocol, authentication or client error; any error while connecting | `Connection` | server |
//! | no reply within the timeout | `Timeout` | server |
//! | `READONLY`, `LOADING`, `BUSY`, `OOM`, `MASTERDOWN`, `CLUSTERDOWN`, `NOAUTH`, `NOPERM`, `MISCONF`, a Lua error, any other or unknown code | `Script` | server (on a cluster: the key's master) |
//! | `WRONGTYPE`; `INCRBY` on a counter that is not an integer | `WrongType` | key |
//! | `INCRBY` on a counter at `i64::MAX` | `Overflow` | key |
//! | a corrupt token bucket; a reply that is not a decision (wrong shape, a count below 1, a negative TTL or wait) | `UnexpectedReply` | key |
//! | `MOVED`, `ASK`, `TRYAGAIN`, `CROSSSLOT` | `Misrouted` | key |
//! | `NOSCRIPT` | (reloaded with `EVAL`, not an error) | none |
//!
//! Switches are counted in [`RedisStats`] and, with the `tracing` feature, logged (a
//! `warn` event on the switch to the policy, `info` on the way back; a `warn` on the first
//! key error of each kind, `debug` on the next ones).
//!
//! # Differences from go-zero's scripts
//!
//! - Server time (`TIME`, µs) instead of the client's Unix seconds: microsecond refill
//!   instead of whole-second steps, and no disagreement between skewed clients.
//! - One hash per bucket (`tokens`, `ts`) instead of two string keys.
//! - A bucket's TTL is never zero (at least 1 ms; go-zero's `SETEX` fails on every call
//!   when `2 × burst < rate`) and capped at 100 years; a refusal writes nothing.
//! - A refusal carries the time until `n` tokens are there.
//! - The period key is `{prefix:key}` (go-zero: `prefix + key`), its TTL is set in
//!   milliseconds, whenever the key has none (go-zero sets it only when the count is 1,
//!   so a key whose `EXPIRE` failed never expires), and aligned windows use the server's
//!   clock and an explicit UTC offset. The reply carries the count and the TTL, so the
//!   state mapping (and `resets_in`) is done in Rust; periods are capped at 100 years.
//! - Any error, including a reply of the wrong shape, goes to the failure policy (for that
//!   request if it concerns one key, for the whole limiter if it concerns the server);
//!   go-zero's period limiter has no rescue (it returns the error), and go-zero's token
//!   limiter switches to its rescue on any script error, a bad key's included.
//! - `NOSCRIPT` is answered by sending the same call as `EVAL`, not by redis-rs's
//!   `Script::invoke` (`SCRIPT LOAD`, then `EVALSHA` again: a flush between the two, from
//!   a client flushing in a loop, still ends in `NOSCRIPT`).
//!
//! # Connections and timeouts
//!
//! - Sync calls (`allow`, `take`) use a small pool of blocking connections: a caller
//!   takes an idle connection or opens one, and gives it back afterwards (at most
//!   [`max_idle`](RedisStore::max_idle) are kept). A connection that timed out is closed;
//!   a lost connection (I/O error) closes every pooled connection of the store.
//! - Async calls (`allow_n_async`, `take_async`) share one multiplexed connection per
//!   store, opened on first use in the caller's tokio runtime (which needs its time
//!   driver: `enable_all` or `enable_time`) and replaced after an I/O error.
//! - Connecting and each reply are bounded by 1 s by default
//!   ([`connect_timeout`](RedisStore::connect_timeout),
//!   [`timeout`](RedisStore::timeout)), so a dead or unreachable server cannot hang a
//!   caller for longer.
//!
//! [`Denied::Limited`]: crate::Denied::Limited

mod classify;
mod cluster;
mod health;
mod period;
mod scripts;
mod stats;
mod store;
mod token;

use std::fmt;

pub use classify::{Blame, RedisErrorKind};
pub(crate) use period::RedisPeriod;
pub use stats::{ErrorCounts, RedisStats};
pub use store::RedisStore;
pub(crate) use token::RedisToken;

/// Why one Redis decision failed: the kind and the error's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackendError {
    pub(crate) kind: RedisErrorKind,
    pub(crate) message: String,
    /// What the error says about the connection that met it.
    pub(crate) link: Link,
}

/// The state of the connection after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// The connection is fine (the server answered with an error, or the reply did not
    /// have the expected shape).
    Usable,
    /// This connection cannot be used again (a timeout: its reply may still arrive).
    Broken,
    /// The server is gone: every connection to it should be replaced.
    Lost,
}

impl BackendError {
    pub(crate) fn new(kind: RedisErrorKind, link: Link, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
            link,
        }
    }

    /// A reply that is not a decision: key-local (only a value the limiter did not write
    /// makes its scripts answer out of range).
    pub(crate) fn unexpected(what: &str, reply: &::redis::Value) -> Self {
        BackendError::new(
            RedisErrorKind::UnexpectedReply,
            Link::Usable,
            format!("{what}: unexpected reply {reply:?}"),
        )
    }
}

impl fmt::Display for RedisErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedisErrorKind::Connection => "connection",
            RedisErrorKind::Timeout => "timeout",
            RedisErrorKind::Script => "script error",
            RedisErrorKind::WrongType => "wrong type",
            RedisErrorKind::Overflow => "counter overflow",
            RedisErrorKind::UnexpectedReply => "unexpected reply",
            RedisErrorKind::Misrouted => "key on another node",
        })
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The Redis key of `key` under `prefix`: `{prefix:key}`.
pub(crate) fn redis_key(prefix: &str, key: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + key.len() + 3);
    k.push('{');
    k.push_str(prefix);
    k.push(':');
    k.push_str(key);
    k.push('}');
    k
}

/// Reads an integer from a script's reply (Lua numbers arrive as integers).
pub(crate) fn int(v: &::redis::Value) -> Option<i64> {
    match v {
        ::redis::Value::Int(i) => Some(*i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_a_hash_tag() {
        assert_eq!(redis_key("api", "203.0.113.7"), "{api:203.0.113.7}");
        assert_eq!(redis_key("api", ""), "{api:}");
    }

    #[test]
    fn errors_display_their_kind() {
        let e = BackendError::unexpected("period script", &::redis::Value::Nil);
        assert_eq!(
            e.to_string(),
            "unexpected reply: period script: unexpected reply nil"
        );
        assert!(e.kind.is_key_local());
    }
}
