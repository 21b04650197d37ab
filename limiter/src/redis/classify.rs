//! Whose fault a failed decision is: one key's, or the server's.
//!
//! A limiter serves many keys from one server. An error that says something about the
//! server (it is gone, slow, read-only, out of memory, loading its data) is true of every
//! key, so the limiter switches to its failure policy until a probe's `PING` is answered
//! (on a Redis Cluster, "the server" is the master serving the key's slot: the keys of
//! that master switch, and the probe pings it).
//! An error that says something about one key (its value is not the limiter's, or it
//! lives on another node) is true of that key only: if it switched the limiter, a single
//! bad key would take every healthy key off Redis (with `FailClosed`, one request in ten
//! on a counter at `i64::MAX` refused most requests for healthy keys). So such an error
//! gets the policy's answer for that request only, and is counted.
//!
//! Every error of a decision goes through [`classify`] (errors of the redis crate) or is
//! an [`UnexpectedReply`](RedisErrorKind::UnexpectedReply) (a reply that is not a
//! decision); the kind decides the blame ([`RedisErrorKind::blame`]). The table of every
//! `ErrorKind` of the redis crate, and why, is on [`RedisErrorKind::classify`], where
//! rustdoc shows it.

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::scripts::CORRUPT_MARKER;
use super::{BackendError, Link};

/// What kind of error a Redis-backed limiter met (see
/// [`RedisStats::last_error_kind`](super::RedisStats::last_error_kind) and
/// [`RedisStats::errors_by_kind`](super::RedisStats::errors_by_kind)). The kind decides
/// the [`Blame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisErrorKind {
    /// Connecting failed, the connection was lost (an I/O error), or the client could not
    /// read the server (a protocol, authentication or client error). Server-wide.
    Connection,
    /// No reply within the store's timeout. Server-wide.
    Timeout,
    /// The server answered with an error about itself (read-only replica, loading its
    /// data, out of memory, busy with a script, a script it cannot run, ...).
    /// Server-wide.
    Script,
    /// The limiter's key holds a value of another type (`WRONGTYPE`), or a period counter
    /// that is not an integer: another program, or another limiter with the same prefix,
    /// writes the same key. Key-local.
    WrongType,
    /// The period counter is at `i64::MAX`: `INCRBY` cannot count it. Key-local.
    Overflow,
    /// The key's value is of the right type but not one the limiter wrote, so the script
    /// has no decision: a token bucket whose `tokens` or `ts` is missing, not a number,
    /// NaN, infinite or negative; or the script answered something that is not a
    /// decision (not the expected list of integers, a count below 1, a negative TTL or
    /// wait). Key-local.
    UnexpectedReply,
    /// The key's slot is served by another node (`MOVED`, `ASK`) or is migrating
    /// (`TRYAGAIN`) and the cluster client's retry did not get a decision (or the store
    /// points at one node of a cluster with a one-server client), or the request's keys
    /// hash to different slots (`CROSSSLOT`: the limiter sends one key per call, so only a
    /// proxy that splits keys otherwise can say it). Key-local.
    Misrouted,
}

/// Whom an error concerns, and so how much of the limiter it takes off Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// One key: the failure policy answers that request, every other key stays on Redis,
    /// and the error is counted in [`RedisStats::key_errors`](super::RedisStats::key_errors).
    Key,
    /// The server, or the connection to it: the whole limiter switches to its failure
    /// policy until a probe's `PING` is answered, counted in
    /// [`RedisStats::server_errors`](super::RedisStats::server_errors).
    Server,
}

impl RedisErrorKind {
    /// Every kind, in declaration order.
    pub(crate) const ALL: [RedisErrorKind; 7] = [
        RedisErrorKind::Connection,
        RedisErrorKind::Timeout,
        RedisErrorKind::Script,
        RedisErrorKind::WrongType,
        RedisErrorKind::Overflow,
        RedisErrorKind::UnexpectedReply,
        RedisErrorKind::Misrouted,
    ];

    /// Whom an error of this kind concerns.
    ///
    /// ```
    /// use keel_limiter::redis::{Blame, RedisErrorKind};
    ///
    /// assert_eq!(RedisErrorKind::Overflow.blame(), Blame::Key);
    /// assert_eq!(RedisErrorKind::Script.blame(), Blame::Server);
    /// ```
    pub fn blame(self) -> Blame {
        match self {
            RedisErrorKind::Connection | RedisErrorKind::Timeout | RedisErrorKind::Script => {
                Blame::Server
            }
            RedisErrorKind::WrongType
            | RedisErrorKind::Overflow
            | RedisErrorKind::UnexpectedReply
            | RedisErrorKind::Misrouted => Blame::Key,
        }
    }

    /// Whether the error concerns one key only, so the rest of the limiter's keys stay
    /// on Redis (`blame() == Blame::Key`).
    pub fn is_key_local(self) -> bool {
        self.blame() == Blame::Key
    }

    /// The kind a limiter files an error of a decision under; its
    /// [`blame`](Self::blame) decides what the limiter does (see the
    /// [module docs](crate::redis#failures)). Errors met while connecting are always
    /// `Connection` or `Timeout`.
    ///
    /// Every kind of error of the redis crate (1.8), by what it says:
    ///
    /// | error (redis 1.8 `ErrorKind` / `ServerErrorKind`, server reply) | kind | blame |
    /// |---|---|---|
    /// | `Io`, timed out (`is_timeout`) | `Timeout` | server (this connection is dropped) |
    /// | `Io`, any other (refused, reset, EOF) | `Connection` | server (every pooled connection is dropped) |
    /// | `Parse`, `AuthenticationFailed`, `InvalidClientConfig`, `Client`, `UnexpectedReturnType`, `RESP3NotSupported`, the Sentinel kinds, `ClusterConnectionNotFound` (a cluster client with no connection to the key's node), kinds added later | `Connection` | server (every pooled connection is dropped) |
    /// | any error while connecting | `Connection` or `Timeout` | server |
    /// | `WRONGTYPE` (its own code on Redis 7, inside an `ERR` on older servers) | `WrongType` | key |
    /// | `ERR value is not an integer or out of range` (`INCRBY` on a counter that is not an integer) | `WrongType` | key |
    /// | `ERR increment or decrement would overflow` (a counter at `i64::MAX`) | `Overflow` | key |
    /// | `ERR keel: corrupt token bucket` (the token script's refusal of a bucket field that is missing, not a number, NaN, infinite or negative) | `UnexpectedReply` | key |
    /// | a reply that is not a decision: wrong shape, a count below 1, a negative TTL or wait, a grant outside `n..=burst` | `UnexpectedReply` | key |
    /// | `MOVED`, `ASK`, `TRYAGAIN` (the key's slot is served by another node, or migrating; left after the cluster client's retry) | `Misrouted` | key |
    /// | `CROSSSLOT` (the request's keys hash to different slots) | `Misrouted` | key |
    /// | `NOSCRIPT` | not an error: the call is sent again once as `EVAL` (and counted in `script_reloads`); a `NOSCRIPT` that still arrives is `Script` | server |
    /// | `LOADING`, `READONLY`, `MASTERDOWN`, `CLUSTERDOWN`, `EXECABORT`, `NOTBUSY`, `NOSUB`, `NOPERM` | `Script` | server (on a cluster: the key's master) |
    /// | any other `ERR` (a Lua error, an unknown command on a proxy) and any other code (`BUSY`, `OOM`, `NOAUTH`, `MISCONF`, ...; redis 1.8 calls these `Extension`) | `Script` | server |
    ///
    /// Why these:
    ///
    /// - Only a key's value can make `INCRBY`, `HMGET` or `HSET` fail with `WRONGTYPE`, a
    ///   non-integer or an overflow: the scripts send no other value to them (the increment
    ///   is the literal 1, TTLs are whole milliseconds capped at 100 years). Likewise a reply
    ///   out of range can only come from a value the limiter did not write.
    /// - `MOVED` / `ASK` / `TRYAGAIN` name one slot: the node answers the keys of its own
    ///   slots, so the other keys stay on it. A cluster store
    ///   ([`RedisStore::open_cluster`](super::RedisStore::open_cluster)) follows them
    ///   itself; one still left after its retry concerns that slot only. (A one-server
    ///   store pointed at one cluster node serves that node's keys and the policy answers
    ///   the rest.)
    /// - `CROSSSLOT` is about the keys of one request, never the server's state: each
    ///   decision touches one key (`KEYS[1]`, in one hash tag), so it cannot happen on
    ///   Redis itself, and if a proxy says it, it says it of that request.
    /// - `CLUSTERDOWN` says the node cannot serve (the cluster lost a master and needs full
    ///   coverage, or the node has not rejoined yet): every key of that node fails alike.
    /// - A `NOSCRIPT` says the server's script cache was emptied (`SCRIPT FLUSH`, a restart,
    ///   a failover), which the second send repairs; it is not a failure.
    /// - What cannot be explained by a key is the server's: an unknown error code is far more
    ///   likely a server condition than a key's, and wrongly calling it the key's would keep
    ///   sending every request to a failing server.
    /// - `UnexpectedReturnType`: decisions read the reply as any value, so it cannot come
    ///   from a key's content; it would mean the client and server disagree, so the
    ///   connection is replaced.
    ///
    /// If a key error were really the server's (say a proxy that answered every key with
    /// `MOVED`), each request would cost a round trip and get the policy's answer: the
    /// answers a switch would give, without the probe.
    ///
    /// ```
    /// use keel_limiter::redis::{Blame, RedisErrorKind};
    /// use redis::{ErrorKind, RedisError, ServerErrorKind};
    ///
    /// // What a script's `INCRBY` on a counter at i64::MAX answers (Redis 7).
    /// let overflow = RedisError::from((
    ///     ErrorKind::Server(ServerErrorKind::ResponseError),
    ///     "An error was signalled by the server",
    ///     "increment or decrement would overflow script: 5c2e..., on @user_script:2."
    ///         .to_owned(),
    /// ));
    /// assert_eq!(RedisErrorKind::classify(&overflow), RedisErrorKind::Overflow);
    /// assert_eq!(RedisErrorKind::classify(&overflow).blame(), Blame::Key);
    ///
    /// // A key of another type (Redis 7 keeps the inner command's code).
    /// let wrong = redis::make_extension_error(
    ///     "WRONGTYPE".to_owned(),
    ///     Some("Operation against a key holding the wrong kind of value".to_owned()),
    /// );
    /// assert_eq!(RedisErrorKind::classify(&wrong), RedisErrorKind::WrongType);
    ///
    /// // A read-only replica, or a server out of memory: every key fails.
    /// let readonly = RedisError::from((
    ///     ErrorKind::Server(ServerErrorKind::ReadOnly),
    ///     "An error was signalled by the server",
    ///     "You can't write against a read only replica.".to_owned(),
    /// ));
    /// assert_eq!(RedisErrorKind::classify(&readonly).blame(), Blame::Server);
    /// let oom = redis::make_extension_error("OOM".to_owned(), Some("command not allowed".to_owned()));
    /// assert_eq!(RedisErrorKind::classify(&oom), RedisErrorKind::Script);
    ///
    /// // A connection refused.
    /// let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    /// assert_eq!(RedisErrorKind::classify(&refused), RedisErrorKind::Connection);
    /// ```
    pub fn classify(e: &RedisError) -> RedisErrorKind {
        classify(e).0
    }
}

/// The kind of an error of the redis crate met by a decision, and what it says about the
/// connection it was met on.
pub(crate) fn classify(e: &RedisError) -> (RedisErrorKind, Link) {
    use RedisErrorKind as R;
    use ServerErrorKind as S;
    match e.kind() {
        ErrorKind::Io if e.is_timeout() => (R::Timeout, Link::Broken),
        ErrorKind::Io => (R::Connection, Link::Lost),
        ErrorKind::Server(S::ResponseError) => {
            (error_reply(e.detail().unwrap_or("")), Link::Usable)
        }
        ErrorKind::Server(S::Moved | S::Ask | S::TryAgain | S::CrossSlot) => {
            (R::Misrouted, Link::Usable)
        }
        ErrorKind::Server(
            S::BusyLoading
            | S::NoScript
            | S::ReadOnly
            | S::MasterDown
            | S::ClusterDown
            | S::ExecAbort
            | S::NotBusy
            | S::NoSub
            | S::NoPerm,
        ) => (R::Script, Link::Usable),
        // A code the redis crate has no kind for (`WRONGTYPE`, `BUSY`, `OOM`, ...), or a
        // server kind added to it after 1.8: the server's, unless it is `WRONGTYPE`.
        ErrorKind::Extension | ErrorKind::Server(_) => match e.code() {
            Some("WRONGTYPE") => (R::WrongType, Link::Usable),
            _ => (R::Script, Link::Usable),
        },
        ErrorKind::Parse
        | ErrorKind::AuthenticationFailed
        | ErrorKind::InvalidClientConfig
        | ErrorKind::Client
        | ErrorKind::UnexpectedReturnType
        | ErrorKind::RESP3NotSupported
        | ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel
        | ErrorKind::EmptySentinelList
        | ErrorKind::ClusterConnectionNotFound => (R::Connection, Link::Lost),
        // Kinds added to the redis crate after 1.8: not explained by a key.
        _ => (R::Connection, Link::Lost),
    }
}

/// An `ERR` reply, by its text. On Redis 7 an error inside a script keeps its command's
/// text (and code); older servers wrap it as `ERR Error running script ...: <error>`, so
/// the markers are looked for anywhere in the text.
fn error_reply(detail: &str) -> RedisErrorKind {
    if detail.contains("WRONGTYPE") || detail.contains("value is not an integer or out of range") {
        RedisErrorKind::WrongType
    } else if detail.contains("increment or decrement would overflow") {
        RedisErrorKind::Overflow
    } else if detail.contains(CORRUPT_MARKER) {
        RedisErrorKind::UnexpectedReply
    } else {
        RedisErrorKind::Script
    }
}

impl BackendError {
    /// An error of the redis crate met by a decision.
    pub(crate) fn from_redis(e: &RedisError) -> Self {
        let (kind, link) = classify(e);
        BackendError::new(kind, link, e.to_string())
    }

    /// An error met while connecting: whatever the server said, the connection is not
    /// there, so it is the server's (a timeout stays a timeout).
    pub(crate) fn connecting(e: &RedisError) -> Self {
        let kind = match classify(e).0 {
            RedisErrorKind::Timeout => RedisErrorKind::Timeout,
            _ => RedisErrorKind::Connection,
        };
        BackendError::new(kind, Link::Lost, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RedisErrorKind as R;

    const SIGNALLED: &str = "An error was signalled by the server";

    fn known(kind: ErrorKind, detail: &str) -> RedisError {
        RedisError::from((kind, SIGNALLED, detail.to_owned()))
    }

    fn code(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some(detail.to_owned()))
    }

    fn io(kind: std::io::ErrorKind) -> RedisError {
        RedisError::from(std::io::Error::from(kind))
    }

    #[track_caller]
    fn is(e: &RedisError, kind: RedisErrorKind, link: Link) {
        assert_eq!(classify(e), (kind, link), "{e}");
        let b = BackendError::from_redis(e);
        assert_eq!((b.kind, b.link), (kind, link));
        assert_eq!(b.message, e.to_string());
    }

    /// The replies Redis 7.0 sends for each fault inside the scripts (seen with
    /// redis-cli), and an older server's wrapping.
    #[test]
    fn key_errors_are_the_keys() {
        let script = " script: e4b630ca3f4eca507701b11eb4f233603551fa65, on @user_script:1.";
        for (e, kind) in [
            (
                code(
                    "WRONGTYPE",
                    &format!("Operation against a key holding the wrong kind of value{script}"),
                ),
                R::WrongType,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::ResponseError),
                    &format!("value is not an integer or out of range{script}"),
                ),
                R::WrongType,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::ResponseError),
                    &format!("increment or decrement would overflow{script}"),
                ),
                R::Overflow,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::ResponseError),
                    "keel: corrupt token bucket at {api:k} (tokens and ts must be finite numbers >= 0)",
                ),
                R::UnexpectedReply,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::ResponseError),
                    "Error running script (call to f_e4b6): @user_script:1: WRONGTYPE Operation against a key holding the wrong kind of value",
                ),
                R::WrongType,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::ResponseError),
                    "Error running script (call to f_e4b6): @user_script:1: ERR increment or decrement would overflow",
                ),
                R::Overflow,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::Moved),
                    "3999 127.0.0.1:6381",
                ),
                R::Misrouted,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::Ask),
                    "3999 127.0.0.1:6381",
                ),
                R::Misrouted,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::TryAgain),
                    "Multiple keys request during rehashing",
                ),
                R::Misrouted,
            ),
            (
                known(
                    ErrorKind::Server(ServerErrorKind::CrossSlot),
                    "Keys in request don't hash to the same slot",
                ),
                R::Misrouted,
            ),
        ] {
            is(&e, kind, Link::Usable);
            assert_eq!(kind.blame(), Blame::Key);
            assert!(kind.is_key_local());
        }
    }

    #[test]
    fn server_replies_are_the_servers() {
        let script = " script: e4b6, on @user_script:1.";
        for e in [
            known(
                ErrorKind::Server(ServerErrorKind::ReadOnly),
                &format!("You can't write against a read only replica.{script}"),
            ),
            known(
                ErrorKind::Server(ServerErrorKind::BusyLoading),
                "Redis is loading the dataset in memory",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::NoScript),
                "No matching script. Please use EVAL.",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::MasterDown),
                "Link with MASTER is down",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::ClusterDown),
                "The cluster is down",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::ExecAbort),
                "Transaction discarded",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::NotBusy),
                "No scripts in execution right now.",
            ),
            known(ErrorKind::Server(ServerErrorKind::NoSub), "no subscription"),
            known(
                ErrorKind::Server(ServerErrorKind::NoPerm),
                "this user has no permissions to run the 'evalsha' command",
            ),
            code(
                "OOM",
                &format!("command not allowed when used memory > 'maxmemory'.{script}"),
            ),
            code(
                "BUSY",
                "Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            ),
            code("NOAUTH", "Authentication required."),
            code(
                "NOPERM",
                "this user has no permissions to run the 'evalsha' command",
            ),
            code("MISCONF", "Redis is configured to save RDB snapshots"),
            code("SOMETHINGNEW", "an error code no version knew of"),
            // An OOM text never reads as a key's error, whatever it mentions.
            code("OOM", "value is not an integer or out of range"),
            known(
                ErrorKind::Server(ServerErrorKind::ResponseError),
                "user_script:1: Script attempted to access nonexistent global variable 'x'",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::ResponseError),
                "unknown command 'EVALSHA'",
            ),
            known(
                ErrorKind::Server(ServerErrorKind::ResponseError),
                "Error running script (call to f_e4b6): @user_script:3: READONLY You can't write against a read only replica.",
            ),
        ] {
            is(&e, R::Script, Link::Usable);
            assert_eq!(R::Script.blame(), Blame::Server);
        }
    }

    #[test]
    fn client_and_connection_errors_are_the_servers() {
        is(&io(std::io::ErrorKind::TimedOut), R::Timeout, Link::Broken);
        is(
            &io(std::io::ErrorKind::WouldBlock),
            R::Timeout,
            Link::Broken,
        );
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            is(&io(kind), R::Connection, Link::Lost);
        }
        for kind in [
            ErrorKind::Parse,
            ErrorKind::AuthenticationFailed,
            ErrorKind::InvalidClientConfig,
            ErrorKind::Client,
            ErrorKind::UnexpectedReturnType,
            ErrorKind::RESP3NotSupported,
            ErrorKind::MasterNameNotFoundBySentinel,
            ErrorKind::NoValidReplicasFoundBySentinel,
            ErrorKind::EmptySentinelList,
            ErrorKind::ClusterConnectionNotFound,
        ] {
            let e = RedisError::from((kind, "client"));
            is(&e, R::Connection, Link::Lost);
        }
        for kind in [R::Connection, R::Timeout] {
            assert_eq!(kind.blame(), Blame::Server);
        }
    }

    #[test]
    fn connecting_is_always_the_servers() {
        // Even an error reply that would name a key, if it came while connecting.
        let e = BackendError::connecting(&code("WRONGTYPE", "odd"));
        assert_eq!((e.kind, e.link), (R::Connection, Link::Lost));
        let e = BackendError::connecting(&code("WRONGPASS", "invalid username-password pair"));
        assert_eq!((e.kind, e.link), (R::Connection, Link::Lost));
        let e = BackendError::connecting(&io(std::io::ErrorKind::TimedOut));
        assert_eq!((e.kind, e.link), (R::Timeout, Link::Lost));
    }

    #[test]
    fn every_kind_has_a_blame_and_all_lists_them() {
        let keys: Vec<_> = R::ALL.iter().filter(|k| k.is_key_local()).collect();
        assert_eq!(
            keys,
            [
                &R::WrongType,
                &R::Overflow,
                &R::UnexpectedReply,
                &R::Misrouted
            ]
        );
    }
}
