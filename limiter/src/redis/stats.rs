//! [`RedisStats`] and [`ErrorCounts`]: a Redis-backed limiter's health and counters.

use super::{Blame, RedisErrorKind};

/// A Redis-backed limiter's health and counters (in
/// [`TokenSnapshot::redis`](crate::TokenSnapshot::redis) and
/// [`PeriodSnapshot::redis`](crate::PeriodSnapshot::redis)).
///
/// Every request the limiter tried on Redis is either a decision or an error (a failed
/// connect included): `decisions + errors` requests were tried, and
/// `errors == key_errors + server_errors == errors_by_kind.total()`. Each error was
/// answered by the failure policy (as were the requests decided while switched; the
/// snapshot's `policy_decisions` counts both).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether decisions go to Redis (false from a server-wide error until a probe's
    /// `PING` is answered; key errors leave it true). On a Redis Cluster: whether every
    /// master's keys do (see `unhealthy_nodes`).
    pub healthy: bool,
    /// On a Redis Cluster, the masters (`host:port`) whose keys the failure policy decides
    /// (each from a server error on one of its keys until a probe's `PING` to it is
    /// answered, or until it serves no slot); the keys of the others go to Redis. Empty on
    /// one server, and on a cluster that is off as a whole (`healthy` false with no node
    /// named: a server error before any slot map could be read).
    pub unhealthy_nodes: Vec<String>,
    /// Decisions Redis answered.
    pub decisions: u64,
    /// Decisions that failed on Redis, of either blame (each was answered by the failure
    /// policy).
    pub errors: u64,
    /// Of those, errors that concern one key only ([`Blame::Key`]: a key of another type,
    /// a counter at `i64::MAX` or not an integer, a corrupt bucket, a reply that is not a
    /// decision, a key on another node): the policy answered that request and the
    /// limiter stayed on Redis for every other key.
    pub key_errors: u64,
    /// Of those, errors that concern the server ([`Blame::Server`]: connection, timeout,
    /// an error the server answered about itself). The first one while healthy switches
    /// the limiter to its policy (a `switches_to_fallback`); requests already in flight
    /// when it switched may add more.
    pub server_errors: u64,
    /// The same errors by kind.
    pub errors_by_kind: ErrorCounts,
    /// Decisions whose script the server did not have (`NOSCRIPT`: after a
    /// `SCRIPT FLUSH`, a restart or a failover), sent again once with `EVAL`. Not errors:
    /// the decision counts in `decisions` (or in `errors` if the `EVAL` failed).
    pub script_reloads: u64,
    /// Switches from Redis to the failure policy (server errors only; on a cluster, one
    /// per master switched).
    pub switches_to_fallback: u64,
    /// Switches back to Redis (a probe's `PING` answered; on a cluster, one per master).
    pub switches_back: u64,
    /// Probes sent: `PING`s to the server (on a cluster, probe rounds: each reads the slot
    /// map and pings every master that is off).
    pub probes: u64,
    /// The last error, as text.
    pub last_error: Option<String>,
    /// The last error's kind.
    pub last_error_kind: Option<RedisErrorKind>,
}

/// Errors counted by [`RedisErrorKind`] (see each kind for what it covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// [`RedisErrorKind::Connection`] (server).
    pub connection: u64,
    /// [`RedisErrorKind::Timeout`] (server).
    pub timeout: u64,
    /// [`RedisErrorKind::Script`] (server).
    pub script: u64,
    /// [`RedisErrorKind::WrongType`] (key).
    pub wrong_type: u64,
    /// [`RedisErrorKind::Overflow`] (key).
    pub overflow: u64,
    /// [`RedisErrorKind::UnexpectedReply`] (key).
    pub unexpected_reply: u64,
    /// [`RedisErrorKind::Misrouted`] (key).
    pub misrouted: u64,
}

impl ErrorCounts {
    /// The count of `kind`.
    ///
    /// ```
    /// use keel_limiter::redis::{Blame, ErrorCounts, RedisErrorKind};
    ///
    /// let counts = ErrorCounts::default();
    /// assert_eq!(counts.of(RedisErrorKind::Overflow), 0);
    /// assert_eq!((counts.total(), counts.blamed(Blame::Key)), (0, 0));
    /// ```
    pub fn of(&self, kind: RedisErrorKind) -> u64 {
        match kind {
            RedisErrorKind::Connection => self.connection,
            RedisErrorKind::Timeout => self.timeout,
            RedisErrorKind::Script => self.script,
            RedisErrorKind::WrongType => self.wrong_type,
            RedisErrorKind::Overflow => self.overflow,
            RedisErrorKind::UnexpectedReply => self.unexpected_reply,
            RedisErrorKind::Misrouted => self.misrouted,
        }
    }

    /// Errors of every kind.
    pub fn total(&self) -> u64 {
        RedisErrorKind::ALL.iter().map(|&k| self.of(k)).sum()
    }

    /// Errors of the kinds with this blame.
    pub fn blamed(&self, blame: Blame) -> u64 {
        RedisErrorKind::ALL
            .iter()
            .filter(|k| k.blame() == blame)
            .map(|&k| self.of(k))
            .sum()
    }

    /// Counts one error of `kind`; the count before it.
    pub(crate) fn add(&mut self, kind: RedisErrorKind) -> u64 {
        let slot = match kind {
            RedisErrorKind::Connection => &mut self.connection,
            RedisErrorKind::Timeout => &mut self.timeout,
            RedisErrorKind::Script => &mut self.script,
            RedisErrorKind::WrongType => &mut self.wrong_type,
            RedisErrorKind::Overflow => &mut self.overflow,
            RedisErrorKind::UnexpectedReply => &mut self.unexpected_reply,
            RedisErrorKind::Misrouted => &mut self.misrouted,
        };
        let before = *slot;
        *slot += 1;
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_counter() {
        let mut counts = ErrorCounts::default();
        for (i, &kind) in RedisErrorKind::ALL.iter().enumerate() {
            for _ in 0..=i {
                counts.add(kind);
            }
        }
        for (i, &kind) in RedisErrorKind::ALL.iter().enumerate() {
            assert_eq!(counts.of(kind), i as u64 + 1, "{kind}");
        }
        assert_eq!(counts.total(), 1 + 2 + 3 + 4 + 5 + 6 + 7);
        assert_eq!(counts.blamed(Blame::Server), 1 + 2 + 3);
        assert_eq!(counts.blamed(Blame::Key), 4 + 5 + 6 + 7);
        assert_eq!(counts.add(RedisErrorKind::Overflow), 5);
    }
}
