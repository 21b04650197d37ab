//! The limiters' metrics (feature `metrics`), through the [`metrics`](::metrics) facade:
//! the series of `METRICS.md` at the workspace root.
//!
//! Every handle is registered once, when the limiter is built, with the recorder installed
//! at that moment. A decision adds one to the limiter's own atomic counter (no lock, no
//! allocation, no recorder call); the counts reach the recorder as deltas at least once a
//! second (keel-timex's periodic thread), at every `publish_metrics()` and `snapshot()`,
//! and when the limiter is dropped: a scrape may lag the last second's decisions (call
//! `publish_metrics()` before rendering for an exact one). The rare events (switches,
//! Redis errors, reloads) call their handles directly. Keys never become label values: a
//! limiter is one set of series whatever its keys. Without the feature the structs are empty and every method compiles to nothing,
//! so the call sites carry no `cfg`.
//!
//! - `keel_limiter_decisions_total{name, kind, outcome, backend}`: every answer of
//!   `allow*` / `take*` ([`Metrics::token`], [`Metrics::period`]). `outcome` is what the
//!   caller is told: `allowed` (a grant, or a period decision of `Allowed` / `HitQuota`),
//!   `limited` (every refusal answered 429: `Denied::Limited`, `OverQuota`,
//!   `Denied::KeyCapacity`, `Denied::NeverFits`), `unavailable` (`Denied::Unavailable`).
//!   `backend` is where it was decided: `memory` in process memory by the limiter itself
//!   (an in-memory limiter; on Redis, a request for more than the burst, refused before
//!   Redis is asked, or a lease's local spend), `redis` by a Redis round trip (equal to
//!   `RedisStats::decisions`), `rescue` by the failure policy (equal to the snapshot's
//!   `policy_decisions`).
//! - With feature `redis`, [`RedisMetrics`]: `keel_limiter_backend_switches_total{to}`,
//!   `keel_limiter_redis_errors_total{blame, error}` and
//!   `keel_limiter_script_reloads_total`, counted where `RedisStats` counts the same events.

#[cfg(feature = "metrics")]
use ::metrics::Counter;

#[cfg(feature = "redis")]
use crate::redis::RedisErrorKind;
use crate::{Denied, PeriodDecision};

/// The limiter's `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Token,
    Period,
}

impl Kind {
    #[cfg(feature = "metrics")]
    fn label(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Period => "period",
        }
    }
}

/// Who decided (the `backend` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Source {
    /// The limiter itself, in process memory.
    Memory = 0,
    /// A Redis round trip.
    Redis = 1,
    /// The failure policy of a Redis limiter.
    Rescue = 2,
}

#[cfg(feature = "metrics")]
const SOURCES: [&str; 3] = ["memory", "redis", "rescue"];

/// The `outcome` label, indexing [`Metrics`]'s handles.
#[cfg(feature = "metrics")]
#[derive(Clone, Copy)]
enum Outcome {
    Allowed = 0,
    Limited = 1,
    Unavailable = 2,
}

#[cfg(feature = "metrics")]
const OUTCOMES: [&str; 3] = ["allowed", "limited", "unavailable"];

#[cfg(feature = "metrics")]
impl Outcome {
    #[inline(always)]
    fn of_denied(d: &Denied) -> Outcome {
        match d {
            Denied::Unavailable => Outcome::Unavailable,
            Denied::Limited { .. } | Denied::KeyCapacity { .. } | Denied::NeverFits { .. } => {
                Outcome::Limited
            }
        }
    }
}

/// A limiter's decision counters: `keel_limiter_decisions_total`, one series per
/// `backend` × `outcome`, counted in the limiter's own atomics and published in batches
/// (see [`Batch`]).
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    batch: std::sync::Arc<Batch>,
}

/// The decisions counted since the limiter was built, and what of them the recorder has
/// been told.
///
/// A recorder call per decision costs more than the decision (the Prometheus exporter does
/// two atomic read-modify-writes behind a dynamic call: +5 ns on a 4 ns `allow`), so a
/// decision adds one to a plain atomic here and the counts reach the recorder as deltas: at
/// least once a second on keel-timex's periodic thread, at every
/// [`publish_metrics`](crate::TokenLimiter::publish_metrics) and `snapshot()`, and when
/// the limiter is dropped.
#[cfg(feature = "metrics")]
pub(crate) struct Batch {
    /// `[backend][outcome]`, on their own cache line: the limiter's state is updated by
    /// the same decisions, on another line.
    counts: crossbeam_utils::CachePadded<[[std::sync::atomic::AtomicU64; 3]; 3]>,
    handles: [[Counter; 3]; 3],
    /// How much of each count the recorder has been given; only the publish path takes it.
    published: std::sync::Mutex<[[u64; 3]; 3]>,
}

#[cfg(feature = "metrics")]
impl Batch {
    /// Gives the recorder what was counted since the last publish. Concurrent publishes
    /// serialise on the mutex, so every decision is published once.
    fn publish(&self) {
        use std::sync::atomic::Ordering;
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        for (source, row) in published.iter_mut().enumerate() {
            for (outcome, done) in row.iter_mut().enumerate() {
                let now = self.counts[source][outcome].load(Ordering::Relaxed);
                if now > *done {
                    self.handles[source][outcome].increment(now - *done);
                    *done = now;
                }
            }
        }
    }
}

#[cfg(feature = "metrics")]
impl keel_timex::periodic::Periodic for Batch {
    fn run(&self) {
        self.publish();
    }
}

impl Metrics {
    /// Registers the handles of a limiter named `name` of `kind` (on Redis or not: an
    /// in-memory limiter only has `backend="memory"` series), and the batch with
    /// keel-timex's periodic thread.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(name: &str, kind: Kind, on_redis: bool) -> Metrics {
        #[cfg(feature = "metrics")]
        {
            let handles = std::array::from_fn(|source| {
                std::array::from_fn(|outcome| {
                    if source != Source::Memory as usize && !on_redis {
                        return Counter::noop();
                    }
                    ::metrics::counter!(
                        "keel_limiter_decisions_total",
                        "name" => name.to_owned(),
                        "kind" => kind.label(),
                        "outcome" => OUTCOMES[outcome],
                        "backend" => SOURCES[source],
                    )
                })
            });
            let batch = std::sync::Arc::new(Batch {
                counts: Default::default(),
                handles,
                published: std::sync::Mutex::new([[0; 3]; 3]),
            });
            let weak = std::sync::Arc::downgrade(&batch);
            keel_timex::periodic::register(weak);
            Metrics { batch }
        }
        #[cfg(not(feature = "metrics"))]
        Metrics {}
    }

    /// Gives the recorder every decision counted so far (feature `metrics`; nothing
    /// without).
    #[inline]
    pub(crate) fn publish(&self) {
        #[cfg(feature = "metrics")]
        self.batch.publish();
    }

    #[cfg(feature = "metrics")]
    #[inline(always)]
    fn count(&self, source: Source, outcome: Outcome) {
        self.batch.counts[source as usize][outcome as usize]
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a token limiter's answer, decided by `source`.
    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn token(&self, source: Source, r: &Result<(), Denied>) {
        #[cfg(feature = "metrics")]
        {
            let outcome = match r {
                Ok(()) => Outcome::Allowed,
                Err(d) => Outcome::of_denied(d),
            };
            self.count(source, outcome);
        }
    }

    /// Counts a period limiter's answer, decided by `source`.
    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn period(&self, source: Source, r: &Result<PeriodDecision, Denied>) {
        #[cfg(feature = "metrics")]
        {
            let outcome = match r {
                Ok(d) if d.is_allowed() => Outcome::Allowed,
                Ok(_) => Outcome::Limited,
                Err(d) => Outcome::of_denied(d),
            };
            self.count(source, outcome);
        }
    }
}

/// The limiter is gone: the decisions it counted since the last publish are published.
#[cfg(feature = "metrics")]
impl Drop for Metrics {
    fn drop(&mut self) {
        self.batch.publish();
    }
}

/// The `error` label of each [`RedisErrorKind`], in `RedisErrorKind::ALL`'s order (the
/// snake-case names of `ErrorCounts`' fields).
#[cfg(all(feature = "metrics", feature = "redis"))]
const ERRORS: [(RedisErrorKind, &str); 7] = [
    (RedisErrorKind::Connection, "connection"),
    (RedisErrorKind::Timeout, "timeout"),
    (RedisErrorKind::Script, "script"),
    (RedisErrorKind::WrongType, "wrong_type"),
    (RedisErrorKind::Overflow, "overflow"),
    (RedisErrorKind::UnexpectedReply, "unexpected_reply"),
    (RedisErrorKind::Misrouted, "misrouted"),
];

/// The index of `kind` in [`ERRORS`].
#[cfg(all(feature = "metrics", feature = "redis"))]
#[inline(always)]
fn error_index(kind: RedisErrorKind) -> usize {
    match kind {
        RedisErrorKind::Connection => 0,
        RedisErrorKind::Timeout => 1,
        RedisErrorKind::Script => 2,
        RedisErrorKind::WrongType => 3,
        RedisErrorKind::Overflow => 4,
        RedisErrorKind::UnexpectedReply => 5,
        RedisErrorKind::Misrouted => 6,
    }
}

/// A Redis limiter's backend counters: switches, errors by kind, script reloads.
#[cfg(feature = "redis")]
pub(crate) struct RedisMetrics {
    #[cfg(feature = "metrics")]
    to_fallback: Counter,
    #[cfg(feature = "metrics")]
    to_redis: Counter,
    #[cfg(feature = "metrics")]
    errors: [Counter; 7],
    #[cfg(feature = "metrics")]
    script_reloads: Counter,
}

#[cfg(feature = "redis")]
impl RedisMetrics {
    /// Registers the handles of the Redis limiter named `name` of `kind`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(name: &str, kind: Kind) -> RedisMetrics {
        #[cfg(feature = "metrics")]
        {
            let kind = kind.label();
            let switch = |to: &'static str| {
                ::metrics::counter!(
                    "keel_limiter_backend_switches_total",
                    "name" => name.to_owned(),
                    "kind" => kind,
                    "to" => to,
                )
            };
            let errors = ERRORS.map(|(error, label)| {
                let blame = match error.blame() {
                    crate::redis::Blame::Key => "key",
                    crate::redis::Blame::Server => "server",
                };
                ::metrics::counter!(
                    "keel_limiter_redis_errors_total",
                    "name" => name.to_owned(),
                    "kind" => kind,
                    "blame" => blame,
                    "error" => label,
                )
            });
            RedisMetrics {
                to_fallback: switch("fallback"),
                to_redis: switch("redis"),
                errors,
                script_reloads: ::metrics::counter!(
                    "keel_limiter_script_reloads_total",
                    "name" => name.to_owned(),
                    "kind" => kind,
                ),
            }
        }
        #[cfg(not(feature = "metrics"))]
        RedisMetrics {}
    }

    /// The limiter left Redis for its failure policy.
    #[inline(always)]
    pub(crate) fn switched_to_fallback(&self) {
        #[cfg(feature = "metrics")]
        self.to_fallback.increment(1);
    }

    /// A probe was answered: the limiter decides on Redis again.
    #[inline(always)]
    pub(crate) fn switched_to_redis(&self) {
        #[cfg(feature = "metrics")]
        self.to_redis.increment(1);
    }

    /// A decision failed on Redis with an error of `kind`.
    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn error(&self, kind: RedisErrorKind) {
        #[cfg(feature = "metrics")]
        self.errors[error_index(kind)].increment(1);
    }

    /// A `NOSCRIPT` was answered by sending the call again with `EVAL`.
    #[inline(always)]
    pub(crate) fn script_reloaded(&self) {
        #[cfg(feature = "metrics")]
        self.script_reloads.increment(1);
    }
}

#[cfg(all(test, feature = "metrics", feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn error_labels_follow_the_kinds() {
        for (i, &kind) in RedisErrorKind::ALL.iter().enumerate() {
            assert_eq!(ERRORS[i].0, kind);
            assert_eq!(error_index(kind), i);
        }
    }
}
