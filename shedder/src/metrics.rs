//! Metrics through the `metrics` facade (feature `metrics`), as `METRICS.md` lists them:
//!
//! - `keel_shedder_requests_total{name, outcome}`: `admitted` | `dropped` | `shadow_dropped`,
//!   every decision;
//! - `keel_shedder_in_flight{name}`: the in-flight count, set wherever the shedder already
//!   sums its stripes (a step of the in-flight average, a decision under CPU pressure, a
//!   snapshot, the statistics period's roll-over), never by an increment per request;
//! - `keel_shedder_cpu_usage{name}`: the CPU reading decisions use, `0.0..=1.0`, set when
//!   it changes;
//! - `keel_shedder_response_time_seconds{name}`: the latencies timed for the min-RT
//!   estimate.
//!
//! The handles are registered once, when the shedder is built, with the recorder installed
//! then; the hot path only calls them. Without the feature [`Metrics`] is zero-sized and
//! every method is empty, so the call sites need no `cfg`.

#[cfg(feature = "metrics")]
mod imp {
    use std::sync::atomic::{AtomicU32, Ordering};

    use metrics::{Counter, Gauge, Histogram};

    /// `last_cpu` before the gauge was first set.
    const UNSET: u32 = u32::MAX;

    pub(crate) struct Metrics {
        admitted: Counter,
        dropped: Counter,
        shadow_dropped: Counter,
        in_flight: Gauge,
        cpu_usage: Gauge,
        response_time: Histogram,
        /// The CPU reading (millis) the gauge holds, or [`UNSET`]: the reading changes a
        /// few times a second, decisions happen on every request.
        last_cpu: AtomicU32,
    }

    impl Metrics {
        pub(crate) fn new(name: &str) -> Metrics {
            let requests = |outcome: &'static str| {
                metrics::counter!(
                    "keel_shedder_requests_total",
                    "name" => name.to_owned(),
                    "outcome" => outcome
                )
            };
            Metrics {
                admitted: requests("admitted"),
                dropped: requests("dropped"),
                shadow_dropped: requests("shadow_dropped"),
                in_flight: metrics::gauge!("keel_shedder_in_flight", "name" => name.to_owned()),
                cpu_usage: metrics::gauge!("keel_shedder_cpu_usage", "name" => name.to_owned()),
                response_time: metrics::histogram!(
                    "keel_shedder_response_time_seconds",
                    "name" => name.to_owned()
                ),
                last_cpu: AtomicU32::new(UNSET),
            }
        }

        #[inline]
        pub(crate) fn admitted(&self) {
            self.admitted.increment(1);
        }

        #[inline]
        pub(crate) fn dropped(&self) {
            self.dropped.increment(1);
        }

        #[inline]
        pub(crate) fn shadow_dropped(&self) {
            self.shadow_dropped.increment(1);
        }

        /// A decision read the CPU signal; `None` (no signal) leaves the gauge as it is.
        #[inline]
        pub(crate) fn cpu(&self, millis: Option<u32>) {
            if let Some(millis) = millis
                && self.last_cpu.load(Ordering::Relaxed) != millis
            {
                self.cpu_changed(millis);
            }
        }

        #[cold]
        fn cpu_changed(&self, millis: u32) {
            self.last_cpu.store(millis, Ordering::Relaxed);
            // Two threads seeing a change at once may set the gauge in the other order than
            // they stored: whoever finds `last_cpu` different after its set sets again, so
            // the gauge ends on the reading `last_cpu` holds.
            let mut millis = millis;
            loop {
                self.cpu_usage.set(f64::from(millis.min(1000)) / 1000.0);
                let last = self.last_cpu.load(Ordering::Relaxed);
                if last == millis {
                    break;
                }
                millis = last;
            }
        }

        /// The shedder summed its in-flight stripes.
        #[inline]
        pub(crate) fn in_flight(&self, in_flight: u64) {
            self.in_flight.set(in_flight as f64);
        }

        /// A timed request passed after `elapsed_ns` (precise clock).
        #[inline]
        pub(crate) fn response_time(&self, elapsed_ns: u64) {
            self.response_time.record(elapsed_ns as f64 / 1e9);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    pub(crate) struct Metrics;

    impl Metrics {
        #[inline(always)]
        pub(crate) fn new(_name: &str) -> Metrics {
            Metrics
        }
        #[inline(always)]
        pub(crate) fn admitted(&self) {}
        #[inline(always)]
        pub(crate) fn dropped(&self) {}
        #[inline(always)]
        pub(crate) fn shadow_dropped(&self) {}
        #[inline(always)]
        pub(crate) fn cpu(&self, _millis: Option<u32>) {}
        #[inline(always)]
        pub(crate) fn in_flight(&self, _in_flight: u64) {}
        #[inline(always)]
        pub(crate) fn response_time(&self, _elapsed_ns: u64) {}
    }
}

pub(crate) use imp::Metrics;
