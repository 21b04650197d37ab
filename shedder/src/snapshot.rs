//! [`Snapshot`]: a shedder's state and statistics at one moment, for dashboards and tests.

use keel_timex::Clock;

use crate::PeriodStats;
use crate::config::CpuFallback;
use crate::decision::overload_factor;
use crate::shedder::Inner;

/// A shedder's state at one moment, from [`Shedder::snapshot`](crate::Shedder::snapshot).
///
/// Reading it folds the window and sums the stripes: meant for dashboards and tests, not
/// for every request. With feature `metrics` it also publishes the request counters (see
/// [`Shedder::publish_metrics`](crate::Shedder::publish_metrics)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The shedder's name.
    pub name: String,
    /// `false` for a no-op shedder.
    pub enabled: bool,
    /// Dry-run mode: nothing is refused.
    pub shadow: bool,
    /// The CPU usage in millis, or `None` without a signal.
    pub cpu: Option<u32>,
    /// The CPU threshold in millis.
    pub cpu_threshold: u32,
    /// Whether the CPU counts as overloaded now (at or over the threshold, or no signal
    /// with [`CpuFallback::InFlightOnly`]).
    pub overloaded: bool,
    /// Whether a request was dropped and the shedder has not cooled off since.
    pub dropped_recently: bool,
    /// Requests in flight.
    pub in_flight: u64,
    /// The moving average of requests in flight.
    pub avg_in_flight: f64,
    /// The most passes one finished bucket of the window holds (at least 1).
    pub max_pass: u64,
    /// The lowest per-bucket mean latency of the window in ms (1000 without data).
    pub min_rt_ms: f64,
    /// `max(1, max_pass × min_rt × buckets per second / 1000)`: the concurrency the
    /// service has shown it sustains.
    pub max_flight: f64,
    /// `max_flight` × the CPU's overload factor: the in-flight limit while overloaded.
    pub limit: f64,
    /// Requests admitted since the shedder was built.
    pub admitted: u64,
    /// Requests refused since the shedder was built.
    pub dropped: u64,
    /// In shadow mode: requests admitted that would have been refused.
    pub shadow_dropped: u64,
    /// The statistics period in progress (at most about a minute so far).
    pub current_period: PeriodStats,
    /// The last finished statistics period, once one has ended.
    pub last_period: Option<PeriodStats>,
}

impl Snapshot {
    pub(crate) fn of<C: Clock>(inner: &Inner<C>) -> Snapshot {
        let now = inner.stats.clock().now();
        let cpu = inner.cpu.usage();
        let capacity = inner.stats.capacity_at(now);
        let totals = inner.inflight.totals();
        inner.metrics.publish(totals);
        let in_flight = inner.inflight.in_flight();
        inner.metrics.in_flight(in_flight);
        let factor = cpu.map_or(1.0, |c| overload_factor(c, inner.threshold));
        Snapshot {
            name: inner.name.clone(),
            enabled: inner.enabled,
            shadow: inner.shadow,
            cpu,
            cpu_threshold: inner.threshold,
            overloaded: match cpu {
                Some(c) => c >= inner.threshold,
                None => inner.fallback == CpuFallback::InFlightOnly,
            },
            dropped_recently: inner
                .dropped_recently
                .load(std::sync::atomic::Ordering::Relaxed),
            in_flight,
            avg_in_flight: inner.avg_flying.get(),
            max_pass: capacity.max_pass,
            min_rt_ms: capacity.min_rt_ms,
            max_flight: capacity.max_flight,
            limit: capacity.max_flight * factor,
            admitted: totals.admitted,
            dropped: totals.dropped,
            shadow_dropped: totals.would_drop,
            current_period: inner.minute.current(inner),
            last_period: inner.minute.last(),
        }
    }
}
