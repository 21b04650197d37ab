//! [`Shedder`]: the admission decision.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use keel_rollingwindow::RollingWindow;
use keel_timex::{Clock, CoarseClock, Nanos};

use crate::Overloaded;
use crate::average::InFlightAverage;
use crate::config::{Builder, CpuFallback};
use crate::cpu_choice::CpuChoice;
use crate::decision::{overload_factor, rt_ms};
use crate::events::Events;
use crate::guard::{Guard, OwnedGuard, UNTIMED};
use crate::inflight::Inflight;
use crate::last_refusal::{Key, LastRefusal};
use crate::local;
use crate::metrics::Metrics;
use crate::minute::Minute;
use crate::snapshot::Snapshot;
use crate::stats::{PassRt, Stats};
use crate::sync::{AtomicU64, Ordering};

/// `overload_time` before the CPU was ever seen over the threshold.
const NEVER: u64 = u64::MAX;

/// An adaptive load shedder: admits a request unless the CPU is (or was, within the
/// cool-off) above the threshold **and** more requests are in flight than the service has
/// shown it can sustain.
///
/// Cheap to clone (an `Arc`); clones share one state. Build one per service or route
/// (see [`ShedderGroup`](crate::ShedderGroup)) and keep it.
///
/// ```
/// use keel_shedder::{Shedder, cpu::ManualCpu};
///
/// let cpu = ManualCpu::new(300); // injected here; by default the cgroup/host CPU
/// let shedder = Shedder::builder().cpu_source(cpu.clone()).build()?;
///
/// match shedder.allow() {
///     Ok(guard) => {
///         // ... handle the request ...
///         guard.pass(); // or guard.fail(); dropping it releases the slot too
///     }
///     Err(overloaded) => println!("503: {overloaded}"),
/// }
/// assert_eq!(shedder.snapshot().in_flight, 0);
/// # Ok::<(), keel_shedder::ConfigError>(())
/// ```
pub struct Shedder<C: Clock = CoarseClock> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for Shedder<C> {
    fn clone(&self) -> Self {
        Shedder {
            inner: Arc::clone(&self.inner),
        }
    }
}

pub(crate) struct Inner<C: Clock> {
    pub(crate) name: String,
    pub(crate) stats: Stats<C>,
    pub(crate) cpu: CpuChoice,
    pub(crate) threshold: u32,
    pub(crate) cool_off_ns: u64,
    pub(crate) fallback: CpuFallback,
    pub(crate) shadow: bool,
    pub(crate) enabled: bool,
    pub(crate) sample_period: u32,
    pub(crate) inflight: Inflight,
    /// go-zero's `avgFlying`.
    pub(crate) avg_flying: InFlightAverage,
    /// When the CPU was last seen at or over the threshold (clock nanos), or [`NEVER`].
    pub(crate) overload_time: AtomicU64,
    /// A request was dropped and the shedder has not cooled off since.
    pub(crate) dropped_recently: AtomicBool,
    pub(crate) minute: Minute,
    /// The last refusal, reused while nothing it was decided on has changed.
    pub(crate) last_refusal: LastRefusal,
    pub(crate) events: Events,
    pub(crate) metrics: Metrics,
}

impl Shedder {
    /// A builder with go-zero's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A shedder with go-zero's defaults on the system CPU signal.
    pub fn new() -> Shedder {
        Builder::default()
            .build()
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }

    /// A shedder that admits everything and records nothing, for turning shedding off
    /// without changing the code around it (go-zero's `Disable()`, per instance).
    pub fn noop() -> Shedder {
        Builder::default()
            .enabled(false)
            .cpu_source(crate::cpu::NoCpu)
            .build()
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

impl Default for Shedder {
    fn default() -> Self {
        Shedder::new()
    }
}

impl<C: Clock> Shedder<C> {
    pub(crate) fn from_parts(builder: Builder, window: RollingWindow<PassRt, C>) -> Shedder<C> {
        let stripes = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
        let start = window.clock().now();
        let name = builder.name_or_default();
        let inflight = Inflight::new(stripes.clamp(4, 64));
        Shedder {
            inner: Arc::new(Inner {
                metrics: Metrics::new(&name, &inflight, builder.enabled),
                name,
                stats: Stats::new(window),
                cpu: builder.cpu_or_default(),
                threshold: builder.cpu_threshold,
                cool_off_ns: u64::try_from(builder.cool_off.as_nanos()).unwrap_or(u64::MAX),
                fallback: builder.fallback,
                shadow: builder.shadow,
                enabled: builder.enabled,
                sample_period: builder.sample_period,
                inflight,
                avg_flying: InFlightAverage::new(
                    u64::try_from(builder.avg_interval.as_nanos()).unwrap_or(u64::MAX),
                ),
                overload_time: AtomicU64::new(NEVER),
                dropped_recently: AtomicBool::new(false),
                minute: Minute::new(start),
                last_refusal: LastRefusal::default(),
                events: Events,
            }),
        }
    }

    /// Admits the request (a [`Guard`] to report its outcome on) or refuses it.
    ///
    /// Cost when the CPU is below the threshold: a CPU reading (one atomic load), a
    /// striped counter increment and, for one request in
    /// [`latency_sample_period`](Builder::latency_sample_period), a precise clock read.
    /// A refusal that repeats the one before it (same coarse tick and CPU reading, no
    /// request finished since) costs a few loads and the thread's drop counter.
    #[inline]
    pub fn allow(&self) -> Result<Guard<'_, C>, Overloaded> {
        let start = self.inner.admit()?;
        Ok(Guard::new(&self.inner, start))
    }

    /// [`allow`](Shedder::allow) with a guard that owns a handle to the shedder, for
    /// moving into a spawned task or a future (costs one `Arc` clone).
    #[inline]
    pub fn allow_owned(&self) -> Result<OwnedGuard<C>, Overloaded> {
        let start = self.inner.admit()?;
        Ok(OwnedGuard::new(Arc::clone(&self.inner), start))
    }

    /// The shedder's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether this is a no-op shedder ([`Shedder::noop`], `enabled(false)`).
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Whether the shedder runs dry ([`Builder::shadow`]).
    pub fn is_shadow(&self) -> bool {
        self.inner.shadow
    }

    /// The current state and statistics.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.inner)
    }

    /// Publishes the request counters (`keel_shedder_requests_total`, feature `metrics`)
    /// now: every decision made so far reaches the recorder.
    ///
    /// Decisions are counted in the shedder's own per-thread stripes, not by a recorder
    /// call per request (that would cost more than the whole admission); the counters
    /// reach the recorder at least once a second on keel-timex's periodic thread, at every
    /// [`snapshot`](Shedder::snapshot), here, and when the shedder is dropped. Call this
    /// before rendering the recorder for a scrape that holds the last second's requests
    /// too. Cheap (the stripes summed, then at most three counter increments under a lock
    /// no request takes), but not meant for every request. Without the feature it does
    /// nothing.
    ///
    /// ```
    /// use keel_shedder::{Shedder, cpu::ManualCpu};
    ///
    /// let shedder = Shedder::builder().name("api").cpu_source(ManualCpu::new(0)).build()?;
    /// shedder.allow().expect("an idle CPU admits").pass();
    /// shedder.publish_metrics();
    /// // ... then render the recorder (e.g. metrics-exporter-prometheus's `render()`):
    /// // keel_shedder_requests_total{name="api",outcome="admitted"} counts this request.
    /// # Ok::<(), keel_shedder::ConfigError>(())
    /// ```
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish_now();
    }

    /// The clock the shedder reads.
    pub fn clock(&self) -> &C {
        self.inner.stats.clock()
    }
}

impl<C: Clock> Inner<C> {
    /// The admission decision. `Ok(start)` holds the precise start time of a timed request
    /// or [`UNTIMED`].
    // Always: the caller's Result handling then folds into it (a call here cost a fifth
    // of a repeated refusal).
    #[inline(always)]
    fn admit(&self) -> Result<u64, Overloaded> {
        if !self.enabled {
            return Ok(UNTIMED);
        }
        let now = self.stats.clock().now();
        self.minute.tick(now, self);
        let cpu = self.cpu.usage();
        // Under overload, most requests are refused on the figures of the refusal before
        // them (see `last_refusal`): no stripes summed twice, no limit computed.
        if !self.shadow
            && let Some(refusal) = self
                .last_refusal
                .reuse(now.as_nanos(), cpu, || self.inflight.completed())
        {
            return Err(self.refused(refusal));
        }
        // The stripes count every decision; with feature `metrics` they are also the
        // request counters, published from their totals (no recorder call here).
        match self.decide(now, cpu) {
            Some(refusal) if !self.shadow => return Err(self.refused(refusal)),
            Some(_) => self.inflight.admit_shadow(local::stripe()),
            None => self.inflight.admit(local::stripe()),
        }
        if local::sample(self.sample_period) {
            // The CPU gauge follows the reading from the timed admissions and every
            // refusal: the reading changes a few times a second, and a check on every
            // admission was a tenth of the feature's cost.
            self.metrics.cpu(cpu);
            Ok(self.stats.clock().now_precise().as_nanos())
        } else {
            Ok(UNTIMED)
        }
    }

    /// Counts a refusal.
    #[inline]
    fn refused(&self, refusal: Overloaded) -> Overloaded {
        self.inflight.drop_one();
        self.metrics.cpu(refusal.cpu);
        refusal
    }

    /// go-zero's `shouldDrop` with a fresh CPU reading (for the white-box tests).
    #[cfg(test)]
    pub(crate) fn should_drop(&self, now: Nanos) -> Option<Overloaded> {
        self.decide(now, self.cpu.usage())
    }

    /// go-zero's `shouldDrop` with the CPU reading `cpu`: `(overloaded || still hot) &&
    /// high throughput`.
    #[inline]
    fn decide(&self, now: Nanos, cpu: Option<u32>) -> Option<Overloaded> {
        let overloaded = match cpu {
            Some(c) => c >= self.threshold,
            None => self.fallback == CpuFallback::InFlightOnly,
        };
        if overloaded {
            // Store only when it changes (once per coarse-clock tick): every admission
            // writing this shared line would make it bounce between cores.
            if self.overload_time.load(Ordering::Relaxed) != now.as_nanos() {
                self.overload_time.store(now.as_nanos(), Ordering::Relaxed);
            }
        } else if !self.still_hot(now) {
            return None;
        }
        self.over_limit(now, cpu)
    }

    /// go-zero's `stillHot`: a request was dropped and the CPU was over the threshold less
    /// than the cool-off ago. Clears `dropped_recently` once cooled off.
    #[inline]
    pub(crate) fn still_hot(&self, now: Nanos) -> bool {
        if !self
            .dropped_recently
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return false;
        }
        let last = self.overload_time.load(Ordering::Relaxed);
        if last == NEVER {
            return false;
        }
        if now.as_nanos().saturating_sub(last) < self.cool_off_ns {
            return true;
        }
        if self
            .dropped_recently
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.events.stopped(&self.name, now.as_nanos());
        }
        false
    }

    /// go-zero's `highThru`: both the in-flight average and the current count exceed
    /// max flight × overload factor. Returns the refusal if they do, and memoises it.
    #[inline]
    fn over_limit(&self, now: Nanos, cpu: Option<u32>) -> Option<Overloaded> {
        let factor = cpu.map_or(1.0, |c| overload_factor(c, self.threshold));
        let limit = self.stats.max_flight_at(now) * factor;
        if self.avg_flying.get() <= limit {
            return None;
        }
        // The finished count first, then the average again: a request counted as finished
        // has stepped the average before (see `finish`), so the memo's key holds every
        // change the figures below are made of.
        let finished = self.inflight.completed();
        let avg = self.avg_flying.get();
        let in_flight = self.inflight.admitted().saturating_sub(finished);
        self.metrics.in_flight(in_flight);
        if avg <= limit || in_flight as f64 <= limit {
            return None;
        }
        self.mark_dropped(now);
        let refusal = Overloaded {
            cpu,
            in_flight,
            limit,
        };
        let key = Key {
            now: now.as_nanos(),
            cpu,
            finished,
        };
        self.last_refusal.remember(key, &refusal);
        Some(refusal)
    }

    fn mark_dropped(&self, now: Nanos) {
        use std::sync::atomic::Ordering as O;
        if !self.dropped_recently.load(O::Relaxed) && !self.dropped_recently.swap(true, O::Relaxed)
        {
            self.events.started(&self.name, now.as_nanos());
        }
    }

    /// A guard finished. `start` is its precise start or [`UNTIMED`]; `passed` is `None`
    /// for a guard dropped without an outcome (a cancelled request).
    #[inline]
    pub(crate) fn finish(&self, start: u64, passed: Option<bool>) {
        if !self.enabled {
            return;
        }
        let timed = start != UNTIMED;
        if timed || passed == Some(true) {
            self.record(start, passed);
        }
        // Last: a decision that counts this request as finished (an Acquire read of the
        // stripes) also sees the average and the window as it left them, which is what
        // makes reusing a refusal exact (see `last_refusal`).
        self.inflight.complete(local::stripe());
    }

    /// A finished request's statistics: the in-flight average (one step per interval, by
    /// a timed request) and, for a pass, the window (with its latency if timed).
    #[inline]
    fn record(&self, start: u64, passed: Option<bool>) {
        let timed = start != UNTIMED;
        let clock = self.stats.clock();
        let now = clock.now();
        let stepped = timed && self.avg_flying.claim(now.as_nanos());
        if stepped {
            // go-zero steps the average with the count after this request left it; it is
            // still counted here.
            let in_flight = self.inflight.in_flight().saturating_sub(1);
            self.metrics.in_flight(in_flight);
            self.avg_flying.step(in_flight as f64);
        }
        if passed == Some(true) {
            let rt = timed.then(|| {
                let elapsed = clock.now_precise().as_nanos().saturating_sub(start);
                // The histogram takes the passes that stepped the average: at most one per
                // `in_flight_average_interval` (1 ms by default; every timed pass with
                // exact statistics). A recorder's histogram sample costs more than an
                // admission (~35 ns in the Prometheus exporter).
                if stepped {
                    self.metrics.response_time(elapsed);
                }
                rt_ms(elapsed)
            });
            self.stats.pass(now, rt);
        }
    }
}

impl<C: Clock> fmt::Debug for Shedder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shedder")
            .field("name", &self.inner.name)
            .field("threshold", &self.inner.threshold)
            .field("cpu", &self.inner.cpu)
            .field("in_flight", &self.inner.inflight.in_flight())
            .field("shadow", &self.inner.shadow)
            .field("enabled", &self.inner.enabled)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl<C: Clock> Shedder<C> {
    /// Test hooks for go-zero's white-box scenarios.
    pub(crate) fn set_avg_flying(&self, avg: f64) {
        self.inner.avg_flying.set(avg);
        self.inner.last_refusal.forget();
    }
}
