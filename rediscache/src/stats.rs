//! [`Stats`]: what a cache instance has done, counted.

use std::sync::atomic::{AtomicU64, Ordering};

use keel_rollingwindow::PerThreadCounters;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of one instance's counters ([`RedisCache::snapshot`](crate::RedisCache::snapshot)),
        /// all counted since the instance was built. Every Redis error is counted in
        /// `redis_errors`, whatever else it led to.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The live counters (relaxed atomics: each is a plain count, read together only
        /// for reporting).
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
            /// Local hits, counted per thread with no read-modify-write (the hottest path;
            /// added to `l1_hits`).
            pub(crate) local_hits: PerThreadCounters<1>,
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                let mut stats = Stats { $($name: self.$name.load(Ordering::Relaxed),)* };
                stats.l1_hits = stats.l1_hits.wrapping_add(self.local_hits.sum(0));
                stats
            }
        }
    };
}

counters! {
    /// Takes answered by the local tier (a value or a placeholder).
    l1_hits,
    /// Takes that missed the local tier.
    misses,
    /// Takes (one per local load) answered by a live entry in Redis.
    l2_hits,
    /// Loader calls (with the lease, or under `FailurePolicy::Load`).
    loads,
    /// Loader calls that returned an error.
    load_errors,
    /// Local loads that found the rebuild lease held by another instance and waited.
    lease_waits,
    /// Waits for another instance's rebuild that ended without a value (`TakeError::Busy`).
    lease_timeouts,
    /// Fenced writes refused because this instance's lease had expired (or was taken over):
    /// the loaded value was returned but not written to Redis.
    lease_lost,
    /// Local loads answered with a logically expired value while another instance rebuilt.
    stale_served,
    /// "Not found" placeholders written to Redis.
    placeholders,
    /// Takes answered by a placeholder (either tier).
    placeholder_hits,
    /// Entries in Redis that did not decode: deleted and loaded again.
    corrupt,
    /// Redis commands that failed (timeouts included).
    redis_errors,
    /// Takes refused by the `FailurePolicy::Load` limit.
    overloaded,
    /// Values written by `set`.
    sets,
    /// Keys deleted by `del` (including those that failed and were queued).
    deletes,
    /// Deletes queued for retry after a Redis error.
    deletes_queued,
    /// Retry attempts of queued deletes.
    delete_retries,
    /// Queued deletes that a retry completed.
    deletes_retried_ok,
    /// Queued deletes given up after the last attempt.
    deletes_dropped,
    /// Invalidation messages published.
    invalidations_sent,
    /// Invalidation messages from other instances applied to the local tier.
    invalidations_received,
    /// This instance's own invalidation messages, received and skipped.
    invalidations_own,
    /// Subscriptions to the invalidation channel established (the first and every
    /// reconnection).
    subscriptions,
    /// Times the whole local tier was cleared (after a reconnection of the subscription).
    l1_clears,
}

impl Counters {
    #[inline]
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
