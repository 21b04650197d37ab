//! [`CacheStats`], and the periodic statistics event of feature `tracing`.

use std::time::Duration;

use keel_timex::Nanos;

use super::shard::Counts;

/// What a cache has counted since it was built: [`Cache::snapshot`](super::Cache::snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache (`get` hits, and `take`s that did not run their loader).
    /// A remembered "not found" answered counts here too, as does a caller that shared a
    /// load which found nothing.
    pub hits: u64,
    /// Lookups that found nothing (`get` misses, and `take`s whose loader produced the value).
    pub misses: u64,
    /// Entries evicted to make room in a bounded cache.
    pub evictions: u64,
    /// Expired entries reclaimed (by a read that met them, or by the expiry wheel). An expired
    /// entry a `set` or `remove` replaces before the wheel gets to it, or that eviction takes
    /// first, is not counted here (eviction counts it as an eviction).
    pub expirations: u64,
    /// Entries held when the snapshot was taken (see [`Cache::len`](super::Cache::len)).
    pub len: usize,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 when nothing was looked up.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    pub(super) fn add(&mut self, counts: &Counts, len: usize) {
        self.evictions += counts.evictions;
        self.expirations += counts.expirations;
        self.len += len;
    }
}

/// Emits go-zero's per-interval statistics line as a `tracing` event. Without feature
/// `tracing` it only keeps the name, and [`is_due`](Reporter::is_due) is a constant `false`.
#[derive(Debug)]
pub(super) struct Reporter {
    name: String,
    #[cfg(feature = "tracing")]
    interval: u64,
    /// When the next event is due, in nanoseconds on the cache's clock.
    #[cfg(feature = "tracing")]
    next_at: std::sync::atomic::AtomicU64,
    /// Hits and misses at the last event, to report the interval's own.
    #[cfg(feature = "tracing")]
    last: parking_lot::Mutex<(u64, u64, Nanos)>,
}

impl Reporter {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(super) fn new(name: String, interval: Duration, now: Nanos) -> Self {
        #[cfg(feature = "tracing")]
        let interval = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        Reporter {
            name,
            #[cfg(feature = "tracing")]
            interval,
            #[cfg(feature = "tracing")]
            next_at: std::sync::atomic::AtomicU64::new(now.as_nanos().saturating_add(interval)),
            #[cfg(feature = "tracing")]
            last: parking_lot::Mutex::new((0, 0, now)),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Whether an event is due at `now`: one relaxed load with feature `tracing`.
    #[inline]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(super) fn is_due(&self, now: Nanos) -> bool {
        #[cfg(feature = "tracing")]
        {
            now.as_nanos() >= self.next_at.load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(not(feature = "tracing"))]
        {
            false
        }
    }

    /// Whether this caller won the right to emit the event due at `now` (one caller per
    /// interval does).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(super) fn claim(&self, now: Nanos) -> bool {
        #[cfg(feature = "tracing")]
        {
            use std::sync::atomic::Ordering;
            let due = self.next_at.load(Ordering::Relaxed);
            now.as_nanos() >= due
                && self
                    .next_at
                    .compare_exchange(
                        due,
                        now.as_nanos().saturating_add(self.interval),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
        }
        #[cfg(not(feature = "tracing"))]
        {
            false
        }
    }

    /// Emits the event for the interval ending at `now`, unless nothing was looked up in it
    /// (as go-zero).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(super) fn emit(&self, stats: &CacheStats, now: Nanos) {
        #[cfg(feature = "tracing")]
        {
            let (hits, misses, since) = {
                let mut last = self.last.lock();
                let interval = (
                    stats.hits.saturating_sub(last.0),
                    stats.misses.saturating_sub(last.1),
                    last.2,
                );
                *last = (stats.hits, stats.misses, now);
                interval
            };
            let total = hits + misses;
            if total == 0 {
                return;
            }
            let minutes = (now - since).as_secs_f64() / 60.0;
            let qpm = if minutes > 0.0 {
                total as f64 / minutes
            } else {
                total as f64
            };
            let hit_ratio = 100.0 * hits as f64 / total as f64;
            tracing::info!(
                target: "keel_collection::cache",
                cache = %self.name,
                qpm = qpm.round() as u64,
                hit_ratio = format_args!("{hit_ratio:.1}%"),
                elements = stats.len,
                hits,
                misses,
                "cache({}) - qpm: {:.0}, hit_ratio: {:.1}%, elements: {}, hit: {}, miss: {}",
                self.name,
                qpm,
                hit_ratio,
                stats.len,
                hits,
                misses
            );
        }
    }
}
