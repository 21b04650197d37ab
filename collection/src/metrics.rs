//! The metric handles of feature `metrics` (see METRICS.md in the repository).
//!
//! A cache registers its handles once, when it is built, from its name: one handle per label
//! combination, so its operations only touch a handle (no lock, no allocation, no label
//! lookup). Without the feature the same types are zero-sized and every method is an empty
//! `#[inline(always)]` function, so call sites carry no `cfg` and compile to nothing.
//!
//! `keel_cache_requests_total` is batched: a recorder call per lookup costs half a get-hit
//! (+10 ns on 20 ns with the Prometheus exporter), so the requests are counted per thread
//! (a plain load and store on a line only that thread writes: see `cache/tally.rs`), and
//! reach the recorder as deltas at least once a second (keel-timex's
//! periodic thread), at every `Cache::snapshot()` and `Cache::publish_metrics()`, and when
//! the cache is dropped. A scrape may so lag the last second's requests: call
//! `publish_metrics()` before rendering for an exact one. The other series are recorded as
//! their events happen (they are not on the path of a hit).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keel_cache_requests_total` | counter | `name`, `result` = `hit` \| `miss` \| `not_found` |
//! | `keel_cache_loads_total` | counter | `name`, `result` = `success` \| `not_found` \| `error` \| `panic` |
//! | `keel_cache_load_duration_seconds` | histogram | `name` |
//! | `keel_cache_evictions_total` | counter | `name`, `reason` = `capacity` \| `expired` |
//! | `keel_cache_entries` | gauge | `name` |

// Without the feature, the names and arguments are unused.
#![cfg_attr(not(feature = "metrics"), allow(unused_variables, dead_code))]

use keel_timex::Clock;
#[cfg(feature = "metrics")]
use keel_timex::Nanos;
#[cfg(feature = "metrics")]
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
#[cfg(feature = "metrics")]
use std::sync::Arc;

#[cfg(feature = "metrics")]
use crate::cache::tally::Count;
use crate::cache::tally::Tally;

/// `keel_cache_requests_total`.
pub(crate) const REQUESTS: &str = "keel_cache_requests_total";
/// `keel_cache_loads_total`.
pub(crate) const LOADS: &str = "keel_cache_loads_total";
/// `keel_cache_load_duration_seconds`.
pub(crate) const LOAD_DURATION: &str = "keel_cache_load_duration_seconds";
/// `keel_cache_evictions_total`.
pub(crate) const EVICTIONS: &str = "keel_cache_evictions_total";
/// `keel_cache_entries`.
pub(crate) const ENTRIES: &str = "keel_cache_entries";

/// The `result` label of each request count, with the count it is published from.
#[cfg(feature = "metrics")]
const RESULTS: [(&str, Count); 3] = [
    ("hit", Count::RequestHit),
    ("miss", Count::RequestMiss),
    ("not_found", Count::RequestNotFound),
];

/// The cache-wide handles: lookups and loads.
pub(crate) struct CacheMetrics {
    #[cfg(feature = "metrics")]
    requests: Arc<Requests>,
    #[cfg(feature = "metrics")]
    loaded: Counter,
    #[cfg(feature = "metrics")]
    loaded_nothing: Counter,
    #[cfg(feature = "metrics")]
    load_failed: Counter,
    #[cfg(feature = "metrics")]
    load_panicked: Counter,
    #[cfg(feature = "metrics")]
    load_duration: Histogram,
}

/// `keel_cache_requests_total`, batched: the request counts of every shard, the handles
/// they are published to, and how much of them the recorder has been given.
///
/// A recorder call per lookup costs half a get-hit (the Prometheus exporter does two atomic
/// read-modify-writes behind a dynamic call: +10 ns on a 20 ns hit), so each thread counts
/// its requests in its own stripe of the cache's tally, and the counts reach the recorder
/// as deltas: at least once a second on keel-timex's periodic thread, at every
/// [`Cache::publish_metrics`](crate::Cache::publish_metrics) and
/// [`Cache::snapshot`](crate::Cache::snapshot), and when the cache is dropped.
///
/// The counts live apart from the shards (which hold the keys and values) so that the
/// periodic thread can reach them whatever the cache's key and value types: it needs a
/// `'static`, `Send + Sync` task.
#[cfg(feature = "metrics")]
struct Requests {
    tally: Arc<Tally>,
    handles: [Counter; 3],
    /// How much of each count the recorder has been given; only the publish path takes it.
    published: std::sync::Mutex<[u64; 3]>,
}

#[cfg(feature = "metrics")]
impl Requests {
    /// Gives the recorder what was counted since the last publish. Concurrent publishes
    /// serialise on the mutex, so every request is published once, and a total published
    /// never goes back (each shard's counts only grow, and a publish reads them after the
    /// one before it).
    fn publish(&self) {
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let totals = RESULTS.map(|(_, count)| self.tally.sum(count));
        for ((done, total), handle) in published.iter_mut().zip(totals).zip(&self.handles) {
            if total > *done {
                handle.increment(total - *done);
                *done = total;
            }
        }
    }
}

#[cfg(feature = "metrics")]
impl keel_timex::periodic::Periodic for Requests {
    fn run(&self) {
        self.publish();
    }
}

/// The handles each shard updates under its own lock: what it removes and holds.
pub(crate) struct ShardMetrics {
    #[cfg(feature = "metrics")]
    evicted: Counter,
    #[cfg(feature = "metrics")]
    expired: Counter,
    #[cfg(feature = "metrics")]
    entries: Gauge,
}

/// How a loader run ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Loaded {
    /// It produced a value.
    Value,
    /// It found nothing (`Ok(None)`).
    Nothing,
    /// It failed.
    Failed,
    /// It panicked.
    Panicked,
}

/// When a loader started: a reading of the cache's clock with the feature, nothing without
/// (the clock is then not read).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadStart {
    #[cfg(feature = "metrics")]
    at: Nanos,
}

impl CacheMetrics {
    /// Registers the handles of the cache named `name`, and its request counts with
    /// keel-timex's periodic thread (they are counted in `tally`); returns them with the
    /// handles of each of its `shards`.
    pub(crate) fn new(
        name: &str,
        shards: usize,
        tally: &std::sync::Arc<Tally>,
    ) -> (Self, Vec<ShardMetrics>) {
        #[cfg(feature = "metrics")]
        {
            let evicted = counter!(EVICTIONS, "name" => name.to_owned(), "reason" => "capacity");
            let expired = counter!(EVICTIONS, "name" => name.to_owned(), "reason" => "expired");
            let entries = gauge!(ENTRIES, "name" => name.to_owned());
            let shard_metrics: Vec<ShardMetrics> = (0..shards)
                .map(|_| ShardMetrics {
                    evicted: evicted.clone(),
                    expired: expired.clone(),
                    entries: entries.clone(),
                })
                .collect();
            let requests = Arc::new(Requests {
                tally: Arc::clone(tally),
                handles: RESULTS.map(
                    |(result, _)| counter!(REQUESTS, "name" => name.to_owned(), "result" => result),
                ),
                published: std::sync::Mutex::new([0; 3]),
            });
            let task: std::sync::Weak<dyn keel_timex::periodic::Periodic> =
                Arc::downgrade(&requests) as _;
            // Should the OS refuse the thread, the counts still reach the recorder at
            // every publish_metrics(), snapshot() and drop, and the next registration tries
            // again.
            keel_timex::periodic::register(task);
            let metrics = CacheMetrics {
                requests,
                loaded: counter!(LOADS, "name" => name.to_owned(), "result" => "success"),
                loaded_nothing: counter!(LOADS, "name" => name.to_owned(), "result" => "not_found"),
                load_failed: counter!(LOADS, "name" => name.to_owned(), "result" => "error"),
                load_panicked: counter!(LOADS, "name" => name.to_owned(), "result" => "panic"),
                load_duration: histogram!(LOAD_DURATION, "name" => name.to_owned()),
            };
            (metrics, shard_metrics)
        }
        #[cfg(not(feature = "metrics"))]
        {
            (
                CacheMetrics {},
                (0..shards).map(|_| ShardMetrics {}).collect(),
            )
        }
    }

    /// Gives the recorder every request counted so far (with the feature; nothing without).
    #[inline]
    pub(crate) fn publish(&self) {
        #[cfg(feature = "metrics")]
        self.requests.publish();
    }

    /// A loader starts.
    #[inline(always)]
    pub(crate) fn load_start<C: Clock>(&self, clock: &C) -> LoadStart {
        LoadStart {
            #[cfg(feature = "metrics")]
            at: clock.now_precise(),
        }
    }

    /// The loader started at `start` ended with `loaded`.
    #[inline(always)]
    pub(crate) fn load_end<C: Clock>(&self, clock: &C, start: LoadStart, loaded: Loaded) {
        #[cfg(feature = "metrics")]
        {
            self.load_duration
                .record((clock.now_precise() - start.at).as_secs_f64());
            match loaded {
                Loaded::Value => self.loaded.increment(1),
                Loaded::Nothing => self.loaded_nothing.increment(1),
                Loaded::Failed => self.load_failed.increment(1),
                Loaded::Panicked => self.load_panicked.increment(1),
            }
        }
    }
}

impl ShardMetrics {
    /// Handles that record nothing (a shard tested on its own).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        ShardMetrics {
            #[cfg(feature = "metrics")]
            evicted: Counter::noop(),
            #[cfg(feature = "metrics")]
            expired: Counter::noop(),
            #[cfg(feature = "metrics")]
            entries: Gauge::noop(),
        }
    }

    /// An entry was evicted to make room.
    #[inline(always)]
    pub(crate) fn evicted(&self) {
        #[cfg(feature = "metrics")]
        self.evicted.increment(1);
    }

    /// An expired entry was reclaimed.
    #[inline(always)]
    pub(crate) fn expired(&self) {
        #[cfg(feature = "metrics")]
        self.expired.increment(1);
    }

    /// The shard holds one more entry.
    #[inline(always)]
    pub(crate) fn entry_added(&self) {
        #[cfg(feature = "metrics")]
        self.entries.increment(1.0);
    }

    /// The shard holds `n` entries fewer.
    #[inline(always)]
    pub(crate) fn entries_removed(&self, n: usize) {
        #[cfg(feature = "metrics")]
        self.entries.decrement(n as f64);
    }
}

/// The cache is gone: its last requests reach the recorder.
#[cfg(feature = "metrics")]
impl Drop for CacheMetrics {
    fn drop(&mut self) {
        self.requests.publish();
    }
}

impl std::fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMetrics").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShardMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardMetrics").finish_non_exhaustive()
    }
}
