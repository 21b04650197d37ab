//! `tracing` events when a breaker starts and stops dropping (feature `tracing`).
//!
//! Without the feature every method is an empty inline function: no cost on the hot path.

#[cfg(feature = "tracing")]
mod imp {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// At most one event of each kind per this many nanoseconds, so a flapping breaker
    /// cannot flood the logs; suppressed transitions are counted into the next event.
    const QUIET_NS: u64 = 5_000_000_000;

    #[derive(Debug, Default)]
    pub(crate) struct Events {
        dropping: AtomicBool,
        last_event: AtomicU64,
        suppressed: AtomicU64,
    }

    impl Events {
        /// A request was dropped at `now` with drop probability `ratio()` (computed only for
        /// an event that is emitted).
        #[inline]
        pub(crate) fn dropped(&self, name: &str, now: u64, ratio: impl FnOnce() -> f64) {
            if !self.dropping.load(Ordering::Relaxed)
                && !self.dropping.swap(true, Ordering::Relaxed)
                && let Some(suppressed) = self.may_emit(now)
            {
                tracing::warn!(
                    breaker = name,
                    drop_ratio = ratio(),
                    suppressed,
                    "breaker started dropping requests"
                );
            }
        }

        /// A decision at `now` found no pressure: the breaker is not dropping.
        #[inline]
        pub(crate) fn healthy(&self, name: &str, now: u64) {
            if self.dropping.load(Ordering::Relaxed)
                && self.dropping.swap(false, Ordering::Relaxed)
                && let Some(suppressed) = self.may_emit(now)
            {
                tracing::info!(
                    breaker = name,
                    suppressed,
                    "breaker stopped dropping requests"
                );
            }
        }

        fn may_emit(&self, now: u64) -> Option<u64> {
            let last = self.last_event.load(Ordering::Relaxed);
            if last != 0 && now.saturating_sub(last) < QUIET_NS
                || self
                    .last_event
                    .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    #[derive(Debug, Default)]
    pub(crate) struct Events {}

    impl Events {
        #[inline(always)]
        pub(crate) fn dropped(&self, _name: &str, _now: u64, _ratio: impl FnOnce() -> f64) {}
        #[inline(always)]
        pub(crate) fn healthy(&self, _name: &str, _now: u64) {}
    }
}

pub(crate) use imp::Events;
