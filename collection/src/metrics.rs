//! The metric handles of feature `metrics` (see METRICS.md in the repository).
//!
//! A cache registers its handles once, when it is built, from its name: one handle per label
//! combination, so its operations only touch a handle (no lock, no allocation, no label
//! lookup). Without the feature the same types are zero-sized and every method is an empty
//! `#[inline(always)]` function, so call sites carry no `cfg` and compile to nothing.
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

/// The cache-wide handles: lookups and loads.
pub(crate) struct CacheMetrics {
    #[cfg(feature = "metrics")]
    hit: Counter,
    #[cfg(feature = "metrics")]
    miss: Counter,
    #[cfg(feature = "metrics")]
    not_found: Counter,
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

/// The handles each shard updates under its own lock: what it removes and holds.
#[derive(Clone)]
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
    /// Registers the handles of the cache named `name`.
    pub(crate) fn new(name: &str) -> Self {
        CacheMetrics {
            #[cfg(feature = "metrics")]
            hit: counter!(REQUESTS, "name" => name.to_owned(), "result" => "hit"),
            #[cfg(feature = "metrics")]
            miss: counter!(REQUESTS, "name" => name.to_owned(), "result" => "miss"),
            #[cfg(feature = "metrics")]
            not_found: counter!(REQUESTS, "name" => name.to_owned(), "result" => "not_found"),
            #[cfg(feature = "metrics")]
            loaded: counter!(LOADS, "name" => name.to_owned(), "result" => "success"),
            #[cfg(feature = "metrics")]
            loaded_nothing: counter!(LOADS, "name" => name.to_owned(), "result" => "not_found"),
            #[cfg(feature = "metrics")]
            load_failed: counter!(LOADS, "name" => name.to_owned(), "result" => "error"),
            #[cfg(feature = "metrics")]
            load_panicked: counter!(LOADS, "name" => name.to_owned(), "result" => "panic"),
            #[cfg(feature = "metrics")]
            load_duration: histogram!(LOAD_DURATION, "name" => name.to_owned()),
        }
    }

    /// A lookup found a value.
    #[inline(always)]
    pub(crate) fn hit(&self) {
        #[cfg(feature = "metrics")]
        self.hit.increment(1);
    }

    /// A lookup found no live entry.
    #[inline(always)]
    pub(crate) fn miss(&self) {
        #[cfg(feature = "metrics")]
        self.miss.increment(1);
    }

    /// A lookup found a remembered "not found".
    #[inline(always)]
    pub(crate) fn not_found(&self) {
        #[cfg(feature = "metrics")]
        self.not_found.increment(1);
    }

    /// A lookup found a live entry: a value (`true`) or a remembered "not found".
    #[inline(always)]
    pub(crate) fn found(&self, value: bool) {
        if value {
            self.hit();
        } else {
            self.not_found();
        }
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
    /// Registers the handles of the cache named `name` (every shard shares them).
    pub(crate) fn new(name: &str) -> Self {
        ShardMetrics {
            #[cfg(feature = "metrics")]
            evicted: counter!(EVICTIONS, "name" => name.to_owned(), "reason" => "capacity"),
            #[cfg(feature = "metrics")]
            expired: counter!(EVICTIONS, "name" => name.to_owned(), "reason" => "expired"),
            #[cfg(feature = "metrics")]
            entries: gauge!(ENTRIES, "name" => name.to_owned()),
        }
    }

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
