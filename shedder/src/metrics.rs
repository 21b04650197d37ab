//! Metrics through the `metrics` facade (feature `metrics`), as `METRICS.md` lists them:
//!
//! - `keel_shedder_requests_total{name, outcome}`: `admitted` | `dropped` | `shadow_dropped`,
//!   every decision, once;
//! - `keel_shedder_in_flight{name}`: the in-flight count, set wherever the shedder already
//!   sums its stripes (a step of the in-flight average, a decision under CPU pressure, a
//!   snapshot, the statistics period's roll-over), never by an increment per request;
//! - `keel_shedder_cpu_usage{name}`: the CPU reading decisions use, `0.0..=1.0`, passed
//!   on by the timed admissions (1 in `latency_sample_period`) and every refusal, and set
//!   when it changed (the reading moves a few times a second);
//! - `keel_shedder_response_time_seconds{name}`: a sample of the latencies timed for the
//!   min-RT estimate, the timed passes that step the in-flight average (at most one per
//!   `in_flight_average_interval`, 1 ms by default; every timed pass with exact
//!   statistics): a histogram sample costs the recorder ~35 ns, more than an admission.
//!
//! The handles are registered once, when the shedder is built, with the recorder installed
//! then. Without the feature [`Metrics`] is zero-sized and every method is empty, so the
//! call sites need no `cfg`.
//!
//! # Request counters are batched
//!
//! A recorder call per request costs more than the whole admission (a Prometheus counter
//! is a dynamic call and two atomic read-modify-writes on a line every thread shares), so
//! no decision calls the recorder for `keel_shedder_requests_total`. The shedder already
//! counts every admission, refusal and shadow drop in its per-thread stripes
//! ([`Inflight`](crate::inflight::Inflight)); those totals are published, as increments by what each series gained
//! since the last publication:
//!
//! - at least once a second, on keel-timex's shared periodic thread, for as long as the
//!   shedder lives;
//! - at every [`snapshot`](crate::Shedder::snapshot) and
//!   [`publish_metrics`](crate::Shedder::publish_metrics);
//! - when the shedder's last handle is dropped, so nothing counted is lost.
//!
//! A scrape may therefore lag the last second's requests; call `publish_metrics()` before
//! rendering for an exact one. Publications serialise on a mutex the hot path never takes,
//! and a series never goes down: the stripes are summed while other threads decide, so a
//! read may lag (never lead: see [`Inflight::totals`](crate::inflight::Inflight::totals)), and the next publication catches up.

#[cfg(feature = "metrics")]
mod imp {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Weak};

    use keel_timex::periodic::{self, Periodic};
    use metrics::{Counter, Gauge, Histogram};
    use parking_lot::Mutex;

    use crate::inflight::{Inflight, Totals};

    /// `last_cpu` before the gauge was first set.
    const UNSET: u32 = u32::MAX;

    pub(crate) struct Metrics {
        requests: Arc<Requests>,
        in_flight: Gauge,
        cpu_usage: Gauge,
        response_time: Histogram,
        /// The CPU reading (millis) the gauge holds, or [`UNSET`]: the reading changes a
        /// few times a second, decisions happen on every request.
        last_cpu: AtomicU32,
    }

    /// `keel_shedder_requests_total`, published from the stripes' totals. Its own `Arc`
    /// (the periodic thread holds a `Weak` of it, and a strong reference while it runs), so
    /// that the shedder's state is dropped, and publishes its final counts, on the thread
    /// that drops the last handle.
    struct Requests {
        admitted: Counter,
        dropped: Counter,
        shadow_dropped: Counter,
        /// The shedder's stripes (shared).
        stripes: Inflight,
        /// What each series was given so far.
        published: Mutex<Published>,
    }

    #[derive(Default)]
    struct Published {
        admitted: u64,
        dropped: u64,
        shadow_dropped: u64,
    }

    impl Requests {
        fn publish(&self, totals: Totals) {
            // A shadow drop is admitted in the stripes too; the series partition decisions.
            let admitted = totals.admitted.saturating_sub(totals.would_drop);
            let mut published = self.published.lock();
            let published = &mut *published;
            for (counter, total, so_far) in [
                (&self.admitted, admitted, &mut published.admitted),
                (&self.dropped, totals.dropped, &mut published.dropped),
                (
                    &self.shadow_dropped,
                    totals.would_drop,
                    &mut published.shadow_dropped,
                ),
            ] {
                // Only ever up: a read that lags (stripes summed while others decide, or a
                // publisher that read before another and locked after it) publishes
                // nothing, and a later one catches up.
                if total > *so_far {
                    counter.increment(total - *so_far);
                    *so_far = total;
                }
            }
        }
    }

    impl Periodic for Requests {
        fn run(&self) {
            self.publish(self.stripes.totals());
        }
    }

    impl Metrics {
        /// Registers the handles, and (for an enabled shedder: a disabled one counts
        /// nothing) the periodic publication of the request counters from `stripes`.
        pub(crate) fn new(name: &str, stripes: &Inflight, enabled: bool) -> Metrics {
            let requests = |outcome: &'static str| {
                metrics::counter!(
                    "keel_shedder_requests_total",
                    "name" => name.to_owned(),
                    "outcome" => outcome
                )
            };
            let requests = Arc::new(Requests {
                admitted: requests("admitted"),
                dropped: requests("dropped"),
                shadow_dropped: requests("shadow_dropped"),
                stripes: stripes.clone(),
                published: Mutex::new(Published::default()),
            });
            if enabled {
                let weak: Weak<dyn Periodic> = Arc::downgrade(&requests) as Weak<dyn Periodic>;
                // Without the thread (the OS refused one: `register` tries again with the
                // next shedder) the counters are still published at every snapshot,
                // `publish_metrics` and drop.
                let _ = periodic::register(weak);
            }
            Metrics {
                requests,
                in_flight: metrics::gauge!("keel_shedder_in_flight", "name" => name.to_owned()),
                cpu_usage: metrics::gauge!("keel_shedder_cpu_usage", "name" => name.to_owned()),
                response_time: metrics::histogram!(
                    "keel_shedder_response_time_seconds",
                    "name" => name.to_owned()
                ),
                last_cpu: AtomicU32::new(UNSET),
            }
        }

        /// Publishes the request counters from `totals`, the stripes just summed.
        pub(crate) fn publish(&self, totals: Totals) {
            self.requests.publish(totals);
        }

        /// Sums the stripes and publishes the request counters.
        pub(crate) fn publish_now(&self) {
            self.requests.run();
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

    impl Drop for Metrics {
        /// The shedder's state is going (its last handle was dropped): the final counts.
        fn drop(&mut self) {
            self.publish_now();
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use crate::inflight::{Inflight, Totals};

    pub(crate) struct Metrics;

    impl Metrics {
        #[inline(always)]
        pub(crate) fn new(_name: &str, _stripes: &Inflight, _enabled: bool) -> Metrics {
            Metrics
        }
        #[inline(always)]
        pub(crate) fn publish(&self, _totals: Totals) {}
        #[inline(always)]
        pub(crate) fn publish_now(&self) {}
        #[inline(always)]
        pub(crate) fn cpu(&self, _millis: Option<u32>) {}
        #[inline(always)]
        pub(crate) fn in_flight(&self, _in_flight: u64) {}
        #[inline(always)]
        pub(crate) fn response_time(&self, _elapsed_ns: u64) {}
    }
}

pub(crate) use imp::Metrics;
