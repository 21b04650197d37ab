//! The Redis backend (feature `redis`): [`RedisStore`], the connection to one Redis server
//! shared by any number of limiters, and [`RedisStats`], a limiter's view of it.
//!
//! # Keys and scripts
//!
//! A limiter built with `.redis(store, prefix)` keeps key `k`'s state at `{prefix:k}` (the
//! unkeyed token bucket at `{prefix:}`). The braces are a Redis Cluster hash tag; each
//! decision touches exactly one Redis key, so it works on a cluster node as on a single
//! server. Every decision is one atomic Lua script (`EVALSHA`; the script is loaded again
//! transparently after `NOSCRIPT`, e.g. after a `SCRIPT FLUSH` or a failover):
//!
//! - **Token bucket**: a hash with fields `tokens` (a float) and `ts` (microseconds of the
//!   server's clock, from `TIME`). The script refills `min(burst, tokens + elapsed × rate)`
//!   with microsecond resolution, takes `n` tokens if there are `n`, and answers either
//!   "allowed" or the microseconds until `n` tokens are there ([`Denied::Limited`]'s
//!   `retry_after`). An allowed decision rewrites both fields and sets a TTL of twice the
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
//! (multi-field `HSET`; tested on 7.0). A store talks to one server (or a proxy): the
//! hash tags keep a cluster-aware setup possible, but no cluster client is built in.
//!
//! # Failures
//!
//! Any error of a decision (connection refused or lost, a timeout, a script error, a key
//! of the wrong type, a reply of an unexpected shape) is returned to the limiter, which
//! applies its [`FailurePolicy`](crate::FailurePolicy) to that request, and marks the
//! backend unhealthy: from then on the policy decides without asking Redis. One prober
//! per limiter (a std thread named `keel-redis-probe`, so it works without a tokio runtime
//! and off the async runtime's workers) sends `PING` every probe interval (100 ms by
//! default) on a fresh or pooled connection; on `PONG` it marks the backend healthy and
//! exits. The prober holds only a weak reference: once the limiter is dropped it exits
//! at its next tick. Switches are counted in [`RedisStats`] and, with the `tracing`
//! feature, logged (a `warn` event on the switch to the policy, `info` on the way back).
//!
//! Health is per limiter, as in go-zero: a key-specific error (a key of the wrong type)
//! also switches the whole limiter to its policy, until the next probe (the server
//! answers `PING` at once, so about one probe interval).
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
//! - Any error, including a reply of the wrong shape, goes to the failure policy and the
//!   probe; go-zero's period limiter has no rescue (it returns the error).
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

mod health;
mod period;
mod scripts;
mod store;
mod token;

use std::fmt;

pub(crate) use period::RedisPeriod;
pub use store::RedisStore;
pub(crate) use token::RedisToken;

/// What kind of error a Redis-backed limiter met (see [`RedisStats::last_error_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisErrorKind {
    /// Connecting failed, or the connection was lost (an I/O error).
    Connection,
    /// No reply within the store's timeout.
    Timeout,
    /// The server answered with an error (a failing script, a read-only replica, a
    /// server loading its data, ...).
    Script,
    /// The limiter's key holds a value of another type (`WRONGTYPE`): another program, or
    /// another limiter with the same prefix, writes the same key.
    WrongType,
    /// The script answered something that is not the expected list of integers.
    UnexpectedReply,
}

impl RedisErrorKind {
    /// Whether the error concerns one key only (its value is not the limiter's), so the
    /// rest of the limiter's keys can stay on Redis.
    pub fn is_key_local(self) -> bool {
        matches!(
            self,
            RedisErrorKind::WrongType | RedisErrorKind::UnexpectedReply
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
            RedisErrorKind::UnexpectedReply => "unexpected reply",
        })
    }
}

/// A Redis-backed limiter's health and counters (in
/// [`TokenSnapshot::redis`](crate::TokenSnapshot::redis) and
/// [`PeriodSnapshot::redis`](crate::PeriodSnapshot::redis)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether decisions go to Redis (false from the first error until a probe's `PING`
    /// is answered).
    pub healthy: bool,
    /// Decisions Redis answered.
    pub decisions: u64,
    /// Decisions that failed on Redis (each was decided by the failure policy).
    pub errors: u64,
    /// Of those, errors that concern one key only (a key of another type, a reply that is
    /// not the limiter's): the policy decided that request and the limiter stayed on Redis.
    pub key_errors: u64,
    /// Switches from Redis to the failure policy.
    pub switches_to_fallback: u64,
    /// Switches back to Redis (a probe's `PING` answered).
    pub switches_back: u64,
    /// `PING`s sent by probes.
    pub probes: u64,
    /// The last error, as text.
    pub last_error: Option<String>,
    /// The last error's kind.
    pub last_error_kind: Option<RedisErrorKind>,
}

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

    pub(crate) fn unexpected(what: &str, reply: &::redis::Value) -> Self {
        BackendError::new(
            RedisErrorKind::UnexpectedReply,
            Link::Usable,
            format!("{what}: unexpected reply {reply:?}"),
        )
    }

    /// Classifies an error of the redis crate.
    pub(crate) fn from_redis(e: &::redis::RedisError) -> Self {
        use ::redis::ErrorKind as K;
        let text = e.to_string();
        // WRONGTYPE, or INCRBY on a string that is not a number: the key holds someone
        // else's value.
        let mentions_wrongtype = e.code() == Some("WRONGTYPE")
            || text.contains("WRONGTYPE")
            || text.contains("value is not an integer");
        // Our own script's refusal to read a bucket it did not write.
        let corrupt_bucket = text.contains("keel: corrupt");
        let (kind, link) = if e.is_timeout() {
            (RedisErrorKind::Timeout, Link::Broken)
        } else if e.is_io_error() {
            (RedisErrorKind::Connection, Link::Lost)
        } else if mentions_wrongtype {
            (RedisErrorKind::WrongType, Link::Usable)
        } else if corrupt_bucket {
            (RedisErrorKind::UnexpectedReply, Link::Usable)
        } else {
            match e.kind() {
                // Errors the server answered with: the connection is in step.
                K::ResponseError
                | K::ExtensionError
                | K::ExecAbortError
                | K::BusyLoadingError
                | K::NoScriptError
                | K::Moved
                | K::Ask
                | K::TryAgain
                | K::ClusterDown
                | K::CrossSlot
                | K::MasterDown
                | K::ReadOnly
                | K::NotBusy => (RedisErrorKind::Script, Link::Usable),
                // A reply that did not convert: the connection is in step too.
                K::TypeError => (RedisErrorKind::UnexpectedReply, Link::Usable),
                // Authentication, protocol and client errors: start over.
                _ => (RedisErrorKind::Connection, Link::Lost),
            }
        };
        BackendError::new(kind, link, text)
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
    fn errors_are_classified() {
        let io =
            ::redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = BackendError::from_redis(&io);
        assert_eq!((e.kind, e.link), (RedisErrorKind::Connection, Link::Lost));

        let timeout = ::redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let e = BackendError::from_redis(&timeout);
        assert_eq!((e.kind, e.link), (RedisErrorKind::Timeout, Link::Broken));

        let wrong = ::redis::RedisError::from((
            ::redis::ErrorKind::ExtensionError,
            "WRONGTYPE",
            "Operation against a key holding the wrong kind of value".to_owned(),
        ));
        let e = BackendError::from_redis(&wrong);
        assert_eq!((e.kind, e.link), (RedisErrorKind::WrongType, Link::Usable));

        let script = ::redis::RedisError::from((
            ::redis::ErrorKind::ResponseError,
            "An error was signalled by the server",
            "user_script:1: Script attempted to access nonexistent global variable".to_owned(),
        ));
        let e = BackendError::from_redis(&script);
        assert_eq!((e.kind, e.link), (RedisErrorKind::Script, Link::Usable));
        assert!(e.to_string().starts_with("script error: "));
    }
}
