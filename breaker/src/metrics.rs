//! Metrics through the `metrics` facade (feature `metrics`), as `METRICS.md` lists them:
//!
//! - `keel_breaker_calls_total{name, outcome}`: `success` | `failure` | `rejected` |
//!   `cancelled`, every call's end;
//! - `keel_breaker_drop_ratio{name}`: the drop probability the last decision computed;
//! - `keel_breaker_state_changes_total{name, to}`: `open` | `closed`, the transitions the
//!   `tracing` events report (without their rate limit).
//!
//! The handles are registered once, when the breaker is built, with the recorder installed
//! then. The call counter is batched (see `Calls`); the gauge and the transitions call
//! their handles at the event. Without the feature [`Metrics`] is zero-sized and
//! every method is empty, so the call sites need no `cfg`.

#[cfg(feature = "metrics")]
mod imp {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Arc, Mutex};

    use keel_rollingwindow::PerThreadCounters;
    use metrics::{Counter, Gauge};

    use crate::stats::Outcome;

    /// `state`: the drop-ratio gauge holds a non-zero value.
    const RATIO_SET: u8 = 1;
    /// `state`: the breaker refused a call since it last found no pressure ("open").
    const DROPPING: u8 = 2;

    /// `keel_breaker_calls_total`'s outcomes, indexing [`Calls`].
    const SUCCESS: usize = 0;
    const FAILURE: usize = 1;
    const REJECTED: usize = 2;
    const CANCELLED: usize = 3;

    /// `keel_breaker_calls_total`, counted per thread and published in batches.
    ///
    /// A recorder call per call would cost more than the breaker's decision (the
    /// Prometheus exporter: a dynamic call and two atomic read-modify-writes on a line
    /// every thread shares). Each live thread counts on a line of its own with a relaxed
    /// load and store (keel-rollingwindow's `PerThreadCounters`). The sums reach the recorder as deltas at least once a second (keel-timex's
    /// periodic thread holds a `Weak` of this), at every `snapshot()` and
    /// `publish_metrics()`, and when the breaker is dropped.
    struct Calls {
        counts: PerThreadCounters<4>,
        handles: [Counter; 4],
        /// What the recorder was given of each outcome; only publishes take it.
        published: Mutex<[u64; 4]>,
    }

    impl Calls {
        #[inline]
        fn add(&self, outcome: usize) {
            self.counts.add(outcome);
        }

        fn publish(&self) {
            let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
            for (outcome, done) in published.iter_mut().enumerate() {
                let total = self.counts.sum(outcome);
                if total > *done {
                    self.handles[outcome].increment(total - *done);
                    *done = total;
                }
            }
        }
    }

    impl keel_timex::periodic::Periodic for Calls {
        fn run(&self) {
            self.publish();
        }
    }

    pub(crate) struct Metrics {
        calls: Arc<Calls>,
        drop_ratio: Gauge,
        to_open: Counter,
        to_closed: Counter,
        /// [`RATIO_SET`] | [`DROPPING`]: lets a healthy decision skip the gauge and the
        /// transition with one load of a word that changes only with the pressure.
        state: AtomicU8,
    }

    impl Metrics {
        pub(crate) fn new(name: &str) -> Metrics {
            let calls = |outcome: &'static str| {
                metrics::counter!(
                    "keel_breaker_calls_total",
                    "name" => name.to_owned(),
                    "outcome" => outcome
                )
            };
            let changes = |to: &'static str| {
                metrics::counter!(
                    "keel_breaker_state_changes_total",
                    "name" => name.to_owned(),
                    "to" => to
                )
            };
            let calls = Arc::new(Calls {
                counts: PerThreadCounters::new(),
                handles: [
                    calls("success"),
                    calls("failure"),
                    calls("rejected"),
                    calls("cancelled"),
                ],
                published: Mutex::new([0; 4]),
            });
            let weak = Arc::downgrade(&calls);
            keel_timex::periodic::register(weak);
            Metrics {
                calls,
                drop_ratio: metrics::gauge!("keel_breaker_drop_ratio", "name" => name.to_owned()),
                to_open: changes("open"),
                to_closed: changes("closed"),
                state: AtomicU8::new(0),
            }
        }

        /// An admitted call ended with `outcome` as recorded in the window (a slow success
        /// is a failure).
        #[inline]
        pub(crate) fn finished(&self, outcome: Outcome) {
            match outcome {
                Outcome::Success => self.calls.add(SUCCESS),
                Outcome::Failure => self.calls.add(FAILURE),
                Outcome::Drop => {}
            }
        }

        /// A permit was dropped unresolved without a panic.
        #[inline]
        pub(crate) fn cancelled(&self) {
            self.calls.add(CANCELLED);
        }

        /// A call refused without a decision ([`Mode::ForcedOpen`](crate::Mode)).
        #[inline]
        pub(crate) fn forced_open(&self) {
            self.calls.add(REJECTED);
        }

        /// Gives the recorder the calls counted so far.
        pub(crate) fn publish(&self) {
            self.calls.publish();
        }

        /// A decision found no pressure: the drop ratio is 0 and the breaker is closed.
        #[inline]
        pub(crate) fn healthy(&self) {
            if self.state.load(Ordering::Relaxed) != 0 {
                self.recovered();
            }
        }

        #[cold]
        fn recovered(&self) {
            let was = self.state.swap(0, Ordering::Relaxed);
            if was & RATIO_SET != 0 {
                self.drop_ratio.set(0.0);
            }
            if was & DROPPING != 0 {
                self.to_closed.increment(1);
            }
        }

        /// Whether [`Metrics::pressure`] records: a decision then computes the drop
        /// probability itself rather than only comparing against it.
        pub(crate) const RECORDS_PRESSURE: bool = true;

        /// A decision under pressure computed the drop probability `p`.
        #[inline]
        pub(crate) fn pressure(&self, p: f64) {
            // The gauge first, then the flag: a concurrent `recovered` that clears the flag
            // before this sets it zeroes the gauge after this set, or leaves the flag set
            // for the next healthy decision to zero it.
            self.drop_ratio.set(p);
            if self.state.load(Ordering::Relaxed) & RATIO_SET == 0 {
                self.state.fetch_or(RATIO_SET, Ordering::Relaxed);
            }
        }

        /// The decision refused the call.
        #[inline]
        pub(crate) fn dropped(&self) {
            self.calls.add(REJECTED);
            if self.state.load(Ordering::Relaxed) & DROPPING == 0
                && self.state.fetch_or(DROPPING, Ordering::Relaxed) & DROPPING == 0
            {
                self.to_open.increment(1);
            }
        }
    }

    /// The breaker is gone: the calls counted since the last publish are published.
    impl Drop for Metrics {
        fn drop(&mut self) {
            self.calls.publish();
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use crate::stats::Outcome;

    pub(crate) struct Metrics;

    impl Metrics {
        #[inline(always)]
        pub(crate) fn new(_name: &str) -> Metrics {
            Metrics
        }
        #[inline(always)]
        pub(crate) fn finished(&self, _outcome: Outcome) {}
        #[inline(always)]
        pub(crate) fn cancelled(&self) {}
        #[inline(always)]
        pub(crate) fn forced_open(&self) {}
        #[inline(always)]
        pub(crate) fn healthy(&self) {}
        pub(crate) const RECORDS_PRESSURE: bool = false;
        #[inline(always)]
        pub(crate) fn pressure(&self, _p: f64) {}
        #[inline(always)]
        pub(crate) fn dropped(&self) {}
        #[inline(always)]
        pub(crate) fn publish(&self) {}
    }
}

pub(crate) use imp::Metrics;
