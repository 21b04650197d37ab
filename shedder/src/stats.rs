//! The window statistics: passes and latencies per bucket, and the capacity (max flight)
//! they imply, cached per bucket.
//!
//! go-zero keeps two windows (passes; latency sum and count). One bucket with three fields
//! does the same with one window add per pass. Latency is only recorded for the requests
//! picked for timing, so the latency count may be lower than the pass count.

use crossbeam_utils::atomic::AtomicCell;
use keel_rollingwindow::{Bucket, Field, RollingWindow};
use keel_timex::{Clock, Nanos};

use crate::decision::{DEFAULT_MIN_RT_MS, bucket_rt, max_flight};

/// One bucket: passes, and the latency (whole ms) of the timed ones.
#[derive(Debug, Default)]
pub(crate) struct PassRt {
    passes: Field<u64>,
    rt_sum: Field<u64>,
    rt_count: Field<u64>,
}

/// What a [`PassRt`] bucket holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PassRtSnapshot {
    pub(crate) passes: u64,
    pub(crate) rt_sum: u64,
    pub(crate) rt_count: u64,
}

impl Bucket for PassRt {
    /// The latency in ms if the request was timed.
    type Input = Option<u64>;
    type Snapshot = PassRtSnapshot;

    #[inline]
    fn add(&self, rt: Option<u64>) {
        self.passes.add(1);
        if let Some(ms) = rt {
            self.rt_sum.add(ms);
            self.rt_count.add(1);
        }
    }

    fn reset(&self) {
        self.passes.reset();
        self.rt_sum.reset();
        self.rt_count.reset();
    }

    fn read(&self) -> PassRtSnapshot {
        PassRtSnapshot {
            passes: self.passes.get(),
            rt_sum: self.rt_sum.get(),
            rt_count: self.rt_count.get(),
        }
    }

    fn merge(total: &mut PassRtSnapshot, part: &PassRtSnapshot) {
        total.passes = total.passes.wrapping_add(part.passes);
        total.rt_sum = total.rt_sum.wrapping_add(part.rt_sum);
        total.rt_count = total.rt_count.wrapping_add(part.rt_count);
    }
}

/// What the finished buckets of the window say the service can sustain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Capacity {
    /// The most passes one bucket held (at least 1).
    pub(crate) max_pass: u64,
    /// The lowest per-bucket mean latency in ms, or 1000 without data.
    pub(crate) min_rt_ms: f64,
    /// `max(1, max_pass × min_rt × buckets per second / 1000)`.
    pub(crate) max_flight: f64,
}

/// The window plus a per-bucket cache of its [`Capacity`].
/// The max flight computed for the slice covering clock times `from..until`.
#[derive(Debug, Clone, Copy)]
struct Cached {
    from: u64,
    until: u64,
    max_flight: f64,
}

#[derive(Debug)]
pub(crate) struct Stats<C: Clock> {
    window: RollingWindow<PassRt, C>,
    window_scale: f64,
    interval_ns: u64,
    /// The last computation. The finished buckets cannot change during a slice (adds go to
    /// the current one), so one fold per bucket interval serves every decision in it; the
    /// time range saves even the division that finds a reading's slice.
    cached: AtomicCell<Cached>,
}

impl<C: Clock> Stats<C> {
    pub(crate) fn new(window: RollingWindow<PassRt, C>) -> Stats<C> {
        // buckets per second / 1000, as go-zero's windowScale.
        let interval_ns = window.interval().as_nanos() as u64;
        let window_scale = 1e6 / interval_ns as f64;
        Stats {
            window,
            window_scale,
            interval_ns,
            // An empty range: the first decision computes.
            cached: AtomicCell::new(Cached {
                from: 1,
                until: 0,
                max_flight: 0.0,
            }),
        }
    }

    #[inline]
    pub(crate) fn clock(&self) -> &C {
        self.window.clock()
    }

    /// Records a pass at `now` (window time), with its latency if timed.
    #[inline]
    pub(crate) fn pass(&self, now: Nanos, rt_ms: Option<u64>) {
        self.window.add_at(now, rt_ms);
    }

    /// The capacity over the buckets before the one holding `now`, folded afresh.
    pub(crate) fn capacity_at(&self, now: Nanos) -> Capacity {
        self.capacity_of_slice(self.window.slice_at(now))
    }

    fn capacity_of_slice(&self, slice: u64) -> Capacity {
        let (max_pass, min_rt) =
            self.window
                .fold_before_slice(slice, (1u64, f64::INFINITY), |(max_pass, min_rt), b| {
                    let rt = if b.rt_count > 0 {
                        min_rt.min(bucket_rt(b.rt_sum, b.rt_count))
                    } else {
                        min_rt
                    };
                    (max_pass.max(b.passes), rt)
                });
        let min_rt_ms = if min_rt.is_finite() {
            min_rt
        } else {
            DEFAULT_MIN_RT_MS
        };
        Capacity {
            max_pass,
            min_rt_ms,
            max_flight: max_flight(max_pass, min_rt_ms, self.window_scale),
        }
    }

    /// `max_flight` for a decision at `now`, from the per-bucket cache.
    #[inline]
    pub(crate) fn max_flight_at(&self, now: Nanos) -> f64 {
        let t = now.as_nanos();
        let cached = self.cached.load();
        if (cached.from..cached.until).contains(&t) {
            return cached.max_flight;
        }
        self.refresh(t)
    }

    #[cold]
    fn refresh(&self, t: u64) -> f64 {
        let slice = self.window.slice_at(Nanos::from_nanos(t));
        let max_flight = self.capacity_of_slice(slice).max_flight;
        let from = self
            .window
            .origin()
            .as_nanos()
            .saturating_add(slice.saturating_mul(self.interval_ns));
        self.cached.store(Cached {
            from,
            until: from.saturating_add(self.interval_ns),
            max_flight,
        });
        max_flight
    }
}
