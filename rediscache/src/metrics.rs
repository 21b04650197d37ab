//! The cache's metrics (feature `metrics`), through the [`metrics`](::metrics) facade: the
//! `keel_rediscache_*` series of `METRICS.md` at the workspace root.
//!
//! Every handle is registered once, when the cache is built, with the recorder installed at
//! that moment; an event then costs one handle call (no lock, no allocation, no label
//! lookup). Keys never become label values: a cache is one set of series whatever its keys.
//! Each event is recorded next to the [`Stats`](crate::Stats) counter of the same event, so
//! the two agree (the mapping is on each method). Without the feature the struct is empty
//! and every method compiles to nothing, so the call sites carry no `cfg`.

// Without the feature, the names and arguments are unused.
#![cfg_attr(not(feature = "metrics"), allow(unused_variables, dead_code))]

use std::marker::PhantomData;

#[cfg(feature = "metrics")]
use ::metrics::{Counter, Histogram, counter, histogram};

use crate::error::RedisErrorKind;

/// How the local tier answered a take (`keel_rediscache_requests_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// A value (`Stats::l1_hits`).
    Hit = 0,
    /// A "not found" placeholder (`Stats::l1_hits` and `Stats::placeholder_hits`).
    NotFound = 1,
    /// Nothing live: a local load follows (`Stats::misses`).
    Miss = 2,
}

#[cfg(feature = "metrics")]
const REQUESTS: [&str; 3] = ["hit", "not_found", "miss"];

/// How one local load (a Redis lookup, shared by the takes coalesced on it) ended
/// (`keel_rediscache_lookups_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A live value in Redis (`Stats::l2_hits`).
    Hit = 0,
    /// A live placeholder in Redis (`Stats::l2_hits` and `Stats::placeholder_hits`).
    NotFound = 1,
    /// A logically expired value served while another instance rebuilds
    /// (`Stats::stale_served`).
    Stale = 2,
    /// The rebuild lease taken and the loader called (`Stats::loads`, with the lease).
    Load = 3,
    /// Redis failed and `FailurePolicy::Load` called the loader (`Stats::loads`, without).
    DegradedLoad = 4,
    /// Another instance held the lease and no value came in time (`Stats::lease_timeouts`).
    Busy = 5,
    /// Redis failed and `FailurePolicy::FailFast` refused (`TakeError::Redis`).
    Unavailable = 6,
    /// Redis failed and the `FailurePolicy::Load` limit refused (`Stats::overloaded`).
    Overloaded = 7,
}

#[cfg(feature = "metrics")]
const LOOKUPS: [&str; 8] = [
    "hit",
    "not_found",
    "stale",
    "load",
    "degraded_load",
    "busy",
    "unavailable",
    "overloaded",
];

/// How a loader run ended (`keel_rediscache_loads_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loaded {
    Success = 0,
    NotFound = 1,
    /// `Stats::load_errors`.
    Error = 2,
    Panic = 3,
    /// The load's future was dropped before the loader finished.
    Cancelled = 4,
}

#[cfg(feature = "metrics")]
const LOADS: [&str; 5] = ["success", "not_found", "error", "panic", "cancelled"];

impl Loaded {
    pub(crate) fn of<V, E>(loaded: &Result<Option<V>, E>) -> Loaded {
        match loaded {
            Ok(Some(_)) => Loaded::Success,
            Ok(None) => Loaded::NotFound,
            Err(_) => Loaded::Error,
        }
    }
}

/// How a `del` call ended (`keel_rediscache_deletes_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    Ok = 0,
    /// `Stats::deletes_queued`.
    Queued = 1,
    /// Redis failed and delete retries are off (`DelError::Failed`).
    Failed = 2,
}

#[cfg(feature = "metrics")]
const DELETES: [&str; 3] = ["ok", "queued", "failed"];

/// The `kind` label of each [`RedisErrorKind`].
#[cfg(feature = "metrics")]
const ERRORS: [&str; 4] = ["timeout", "connection", "server", "unexpected_reply"];

#[cfg(feature = "metrics")]
#[inline(always)]
fn error_index(kind: RedisErrorKind) -> usize {
    match kind {
        RedisErrorKind::Timeout => 0,
        RedisErrorKind::Connection => 1,
        RedisErrorKind::Server => 2,
        RedisErrorKind::UnexpectedReply => 3,
    }
}

/// One cache instance's handles.
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    requests: [Counter; 3],
    #[cfg(feature = "metrics")]
    lookups: [Counter; 8],
    #[cfg(feature = "metrics")]
    loads: [Counter; 5],
    #[cfg(feature = "metrics")]
    load_duration: Histogram,
    #[cfg(feature = "metrics")]
    lease_waits: Counter,
    #[cfg(feature = "metrics")]
    lease_lost: Counter,
    #[cfg(feature = "metrics")]
    placeholders: Counter,
    #[cfg(feature = "metrics")]
    corrupt: Counter,
    #[cfg(feature = "metrics")]
    redis_errors: [Counter; 4],
    #[cfg(feature = "metrics")]
    sets: Counter,
    #[cfg(feature = "metrics")]
    deletes: [Counter; 3],
    #[cfg(feature = "metrics")]
    queued_deletes: [Counter; 2],
    #[cfg(feature = "metrics")]
    retries: Counter,
    #[cfg(feature = "metrics")]
    invalidations_sent: Counter,
    #[cfg(feature = "metrics")]
    invalidations_received: [Counter; 2],
    #[cfg(feature = "metrics")]
    subscriptions: Counter,
    #[cfg(feature = "metrics")]
    local_clears: Counter,
}

impl Metrics {
    /// Registers the handles of the cache `name`.
    pub(crate) fn new(name: &str) -> Metrics {
        #[cfg(feature = "metrics")]
        {
            let one = |metric: &'static str| counter!(metric, "name" => name.to_owned());
            let by = |metric: &'static str, label: &'static str, value: &'static str| counter!(metric, "name" => name.to_owned(), label => value);
            Metrics {
                requests: REQUESTS.map(|r| by("keel_rediscache_requests_total", "result", r)),
                lookups: LOOKUPS.map(|r| by("keel_rediscache_lookups_total", "result", r)),
                loads: LOADS.map(|r| by("keel_rediscache_loads_total", "result", r)),
                load_duration: histogram!(
                    "keel_rediscache_load_duration_seconds",
                    "name" => name.to_owned()
                ),
                lease_waits: one("keel_rediscache_lease_waits_total"),
                lease_lost: one("keel_rediscache_lease_lost_total"),
                placeholders: one("keel_rediscache_placeholders_total"),
                corrupt: one("keel_rediscache_corrupt_total"),
                redis_errors: ERRORS.map(|k| by("keel_rediscache_redis_errors_total", "kind", k)),
                sets: one("keel_rediscache_sets_total"),
                deletes: DELETES.map(|r| by("keel_rediscache_deletes_total", "result", r)),
                queued_deletes: ["retried_ok", "dropped"]
                    .map(|r| by("keel_rediscache_queued_deletes_total", "result", r)),
                retries: one("keel_rediscache_retries_total"),
                invalidations_sent: one("keel_rediscache_invalidations_sent_total"),
                invalidations_received: ["other", "own"]
                    .map(|o| by("keel_rediscache_invalidations_received_total", "origin", o)),
                subscriptions: one("keel_rediscache_subscriptions_total"),
                local_clears: one("keel_rediscache_local_clears_total"),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Metrics {}
    }

    /// A take, answered by the local tier or not.
    #[inline(always)]
    pub(crate) fn request(&self, request: Request) {
        #[cfg(feature = "metrics")]
        self.requests[request as usize].increment(1);
    }

    /// A local load ended (or called the loader).
    #[inline(always)]
    pub(crate) fn lookup(&self, lookup: Lookup) {
        #[cfg(feature = "metrics")]
        self.lookups[lookup as usize].increment(1);
    }

    /// A loader is called now: its end is recorded by [`LoadTimer::end`], or as a panic or
    /// a cancellation when the timer is dropped unended.
    #[inline(always)]
    pub(crate) fn load_start(&self) -> LoadTimer<'_> {
        LoadTimer {
            #[cfg(feature = "metrics")]
            metrics: self,
            #[cfg(feature = "metrics")]
            start: std::time::Instant::now(),
            #[cfg(feature = "metrics")]
            ended: false,
            lifetime: PhantomData,
        }
    }

    /// A local load found the lease held and waits (`Stats::lease_waits`).
    #[inline(always)]
    pub(crate) fn lease_waited(&self) {
        #[cfg(feature = "metrics")]
        self.lease_waits.increment(1);
    }

    /// A fenced write refused: the lease was lost (`Stats::lease_lost`).
    #[inline(always)]
    pub(crate) fn lease_lost(&self) {
        #[cfg(feature = "metrics")]
        self.lease_lost.increment(1);
    }

    /// A "not found" placeholder written to Redis (`Stats::placeholders`).
    #[inline(always)]
    pub(crate) fn placeholder_written(&self) {
        #[cfg(feature = "metrics")]
        self.placeholders.increment(1);
    }

    /// An entry in Redis that did not decode (`Stats::corrupt`).
    #[inline(always)]
    pub(crate) fn corrupt(&self) {
        #[cfg(feature = "metrics")]
        self.corrupt.increment(1);
    }

    /// A Redis command (or the subscription) failed (`Stats::redis_errors`).
    #[inline(always)]
    pub(crate) fn redis_error(&self, kind: RedisErrorKind) {
        #[cfg(feature = "metrics")]
        self.redis_errors[error_index(kind)].increment(1);
    }

    /// A `set` call (`Stats::sets`).
    #[inline(always)]
    pub(crate) fn set(&self) {
        #[cfg(feature = "metrics")]
        self.sets.increment(1);
    }

    /// A `del` call ended.
    #[inline(always)]
    pub(crate) fn deleted(&self, deleted: Deleted) {
        #[cfg(feature = "metrics")]
        self.deletes[deleted as usize].increment(1);
    }

    /// A queued delete completed by a retry (`Stats::deletes_retried_ok`) or given up
    /// (`Stats::deletes_dropped`).
    #[inline(always)]
    pub(crate) fn queued_delete(&self, ok: bool) {
        #[cfg(feature = "metrics")]
        self.queued_deletes[usize::from(!ok)].increment(1);
    }

    /// A retry attempt of a queued delete or invalidation message (`Stats::delete_retries`).
    #[inline(always)]
    pub(crate) fn retry(&self) {
        #[cfg(feature = "metrics")]
        self.retries.increment(1);
    }

    /// An invalidation message published (`Stats::invalidations_sent`).
    #[inline(always)]
    pub(crate) fn invalidation_sent(&self) {
        #[cfg(feature = "metrics")]
        self.invalidations_sent.increment(1);
    }

    /// An invalidation message received: from another instance and applied
    /// (`Stats::invalidations_received`) or this instance's own, skipped
    /// (`Stats::invalidations_own`).
    #[inline(always)]
    pub(crate) fn invalidation_received(&self, own: bool) {
        #[cfg(feature = "metrics")]
        self.invalidations_received[usize::from(own)].increment(1);
    }

    /// The subscription established (`Stats::subscriptions`); it clears the local tier
    /// (`Stats::l1_clears`).
    #[inline(always)]
    pub(crate) fn subscribed(&self) {
        #[cfg(feature = "metrics")]
        self.subscriptions.increment(1);
    }

    /// The whole local tier cleared (`Stats::l1_clears`).
    #[inline(always)]
    pub(crate) fn local_cleared(&self) {
        #[cfg(feature = "metrics")]
        self.local_clears.increment(1);
    }
}

/// A loader run in progress: [`end`](Self::end) records how it ended and how long it took;
/// dropped unended, it records a panic (while unwinding) or a cancellation.
pub(crate) struct LoadTimer<'a> {
    #[cfg(feature = "metrics")]
    metrics: &'a Metrics,
    #[cfg(feature = "metrics")]
    start: std::time::Instant,
    #[cfg(feature = "metrics")]
    ended: bool,
    lifetime: PhantomData<&'a Metrics>,
}

impl LoadTimer<'_> {
    /// The loader returned.
    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
    pub(crate) fn end(mut self, loaded: Loaded) {
        #[cfg(feature = "metrics")]
        {
            self.record(loaded);
            self.ended = true;
        }
    }

    #[cfg(feature = "metrics")]
    fn record(&self, loaded: Loaded) {
        self.metrics.loads[loaded as usize].increment(1);
        self.metrics
            .load_duration
            .record(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(feature = "metrics")]
impl Drop for LoadTimer<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.record(if std::thread::panicking() {
                Loaded::Panic
            } else {
                Loaded::Cancelled
            });
        }
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn error_labels_follow_the_kinds() {
        let kinds = [
            (RedisErrorKind::Timeout, "timeout"),
            (RedisErrorKind::Connection, "connection"),
            (RedisErrorKind::Server, "server"),
            (RedisErrorKind::UnexpectedReply, "unexpected_reply"),
        ];
        for (kind, label) in kinds {
            assert_eq!(ERRORS[error_index(kind)], label);
        }
    }
}
