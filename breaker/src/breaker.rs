//! [`Breaker`]: the decision and the synchronous calls.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use keel_rollingwindow::RollingWindow;
use keel_timex::{Clock, CoarseClock, Nanos};

use crate::cache::{Finished, finished, live};
use crate::decision::{Params, Pressure};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::reasons::Reasons;
use crate::rng::Rng;
use crate::stats::{Counts, Outcome, Outcomes};
use crate::{
    BreakerError, Builder, FailureReason, History, Mode, OnCancel, OwnedPermit, Permit, Rejected,
};

/// A Google SRE adaptive-throttling circuit breaker with go-zero's refinements.
///
/// Instead of open/closed states, each request is dropped with a probability that grows as
/// failures outnumber successes in a sliding window (10 s in 40 buckets by default):
/// `p = ((total - protection) - K·accepts) / (total + 1)`, with K shrinking from 1.5 toward
/// 1.1 while whole buckets fail, `p` scaled down by the trailing run of healthy buckets, and
/// at least one request let through per second to notice recovery.
///
/// Cloning is cheap and clones share one breaker; it is `Send + Sync`.
///
/// ```
/// use keel_breaker::Breaker;
///
/// let breaker = Breaker::new();
/// let row = breaker.call(|| Ok::<u32, std::io::Error>(42));
/// assert_eq!(row.unwrap(), 42);
/// ```
///
/// # Cost
///
/// A decision reads the coarse clock, one cached history of the finished buckets and the
/// live bucket: O(1), no lock, no allocation. go-zero folds all 40 buckets per request.
/// With several threads calling, a decision may reuse a reading of the live bucket for up
/// to [`Builder::live_refresh`] (1 ms), so that threads do not pull each other's cache lines
/// on every call; with one thread it is exact. go-zero's formula divides three times per
/// decision; here the two divisions by the bucket count are tables built at construction
/// (the same doubles), and a rejection compares the random draw against the drop ratio by
/// cross-multiplying, dividing only when the two are within 2^-48 of each other: the same
/// answer as go-zero's `draw < ratio` on every draw, without a division's latency (on this
/// project's 2-vCPU AMD EPYC benchmark machine, 38.8 → 28.5 ns per adaptive rejection).
///
/// # Differences from go-zero
///
/// - `allow` returns `Result<Permit, Rejected>` instead of go-zero's nil promise on
///   rejection; a permit dropped unresolved records a failure if a panic is unwinding, and
///   nothing otherwise: a cancelled call (client gone, sibling failed) says nothing about the
///   dependency ([`OnCancel`]). go-zero's sqlx counts `context.Canceled` as acceptable and
///   `DeadlineExceeded` as a failure; keel's equivalent of the deadline is
///   [`Builder::timeout`] (feature `tokio`), and [`Builder::slow_call`] counts slow calls
///   as failures (resilience4j's slow-call threshold).
/// - The failing/working-bucket scale is the configured bucket count; go-zero hard-codes 40
///   even for other windows, so a 10-bucket breaker never reached full recovery speed there.
/// - No process-wide registry: [`Registry`](crate::Registry) is an explicit value.
/// - Operator controls go-zero lacks: [`Mode`] (shadow, forced open/closed, disabled),
///   [`reset`](Breaker::reset), [`snapshot`](Breaker::snapshot).
/// - Rejections can be left out of the total ([`Builder::count_rejections`]).
/// - With several threads calling, a decision may see the other threads' outcomes of the
///   last millisecond late ([`Builder::live_refresh`]); go-zero takes a lock per request
///   instead. With one thread, decisions equal go-zero's exactly (property-tested).
pub struct Breaker<C: Clock = CoarseClock> {
    inner: Arc<Inner<C>>,
}

pub(crate) struct Inner<C: Clock> {
    pub(crate) name: String,
    window: RollingWindow<Outcomes, C>,
    finished: finished::Cell,
    live: live::Cell,
    /// How long a decision may reuse a reading of the live bucket when several threads
    /// write, in nanoseconds; 0 = read it every time.
    live_refresh: u64,
    params: Params,
    /// Last time a request passed while the pressure was positive, in clock nanoseconds;
    /// 0 = never (go-zero's `lastPass`).
    last_pass: AtomicU64,
    mode: AtomicU8,
    rng: Rng,
    count_rejections: bool,
    shadow_rejections: AtomicU64,
    pub(crate) reasons: Reasons,
    events: Events,
    metrics: Metrics,
    /// A call longer than this (clock nanoseconds) is a failure; 0 = no threshold.
    slow_call: u64,
    on_cancel: OnCancel,
    /// The deadline of async and tower calls (feature `tokio`).
    pub(crate) timeout: Option<Duration>,
    /// Permits dropped unresolved without a panic.
    cancelled: AtomicU64,
}

/// A point-in-time view of a breaker, for dashboards and health endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The window's history as the next decision sees it.
    pub history: History,
    /// Probability that the next request is dropped (0 when healthy), before force-pass.
    pub drop_ratio: f64,
    /// The current mode.
    pub mode: Mode,
    /// Calls that shadow mode let through although the breaker would have rejected them.
    pub shadow_rejections: u64,
    /// Calls cancelled by their caller (a permit dropped unresolved without a panic), however
    /// [`OnCancel`] counted them.
    pub cancelled: u64,
}

impl Breaker {
    /// A breaker with go-zero's defaults on the process-wide coarse clock.
    pub fn new() -> Breaker {
        Builder::default()
            .build()
            .expect("the default configuration is valid")
    }

    /// Starts configuring a breaker.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A breaker that lets everything through and records nothing (go-zero's `NopBreaker`):
    /// a [`Breaker`] in [`Mode::Disabled`].
    pub fn nop() -> Breaker {
        let b = Breaker::new();
        b.set_mode(Mode::Disabled);
        b
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl<C: Clock> Clone for Breaker<C> {
    fn clone(&self) -> Self {
        Breaker {
            inner: Arc::clone(&self.inner),
        }
    }
}

// # Decisions
impl<C: Clock> Breaker<C> {
    pub(crate) fn from_parts(
        builder: Builder,
        params: Params,
        window: RollingWindow<Outcomes, C>,
    ) -> Breaker<C> {
        let name = builder.name_or_default();
        Breaker {
            inner: Arc::new(Inner {
                metrics: Metrics::new(&name),
                name,
                window,
                finished: finished::empty(),
                live: live::empty(),
                live_refresh: u64::try_from(builder.live_refresh.as_nanos()).unwrap_or(u64::MAX),
                params,
                last_pass: AtomicU64::new(0),
                mode: AtomicU8::new(builder.mode as u8),
                rng: builder.seed.map_or(Rng::PerThread, Rng::seeded),
                count_rejections: builder.count_rejections,
                shadow_rejections: AtomicU64::new(0),
                reasons: Reasons::default(),
                events: Events::default(),
                slow_call: builder
                    .slow_call
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                on_cancel: builder.on_cancel,
                timeout: builder.timeout,
                cancelled: AtomicU64::new(0),
            }),
        }
    }

    /// Asks to make one call. `Err(Rejected)` means: do not call, the downstream needs room.
    #[inline]
    pub fn allow(&self) -> Result<Permit<'_, C>, Rejected> {
        let armed = self.inner.admit()?;
        Ok(Permit::new(&self.inner, armed))
    }

    /// [`allow`](Breaker::allow) with a permit that owns a handle to the breaker, for
    /// `'static` futures and services.
    #[inline]
    pub fn allow_owned(&self) -> Result<OwnedPermit<C>, Rejected> {
        let armed = self.inner.admit()?;
        Ok(OwnedPermit::new(Arc::clone(&self.inner), armed))
    }

    /// Runs `f` if the breaker allows it; an `Err` counts as a failure.
    ///
    /// A panic in `f` counts as a failure and keeps unwinding.
    #[inline]
    pub fn call<T, E: fmt::Display>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, BreakerError<E, Infallible>> {
        self.call_with(f, |_| false)
    }

    /// Like [`call`](Breaker::call), but an error for which `acceptable` returns `true` counts
    /// as a success (e.g. "row not found": the database answered). The error is returned
    /// either way.
    #[inline]
    pub fn call_with<T, E: fmt::Display>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        acceptable: impl FnOnce(&E) -> bool,
    ) -> Result<T, BreakerError<E, Infallible>> {
        let permit = self.allow()?;
        let result = f();
        settle(permit, &result, acceptable);
        result.map_err(BreakerError::Inner)
    }

    /// Like [`call_with`](Breaker::call_with), but a rejection is answered by `fallback`
    /// (a cached value, a default) instead of an error.
    pub fn call_with_fallback<T, E: fmt::Display>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        acceptable: impl FnOnce(&E) -> bool,
        fallback: impl FnOnce(Rejected) -> Result<T, E>,
    ) -> Result<T, E> {
        let permit = match self.allow() {
            Ok(permit) => permit,
            Err(rejected) => return fallback(rejected),
        };
        let result = f();
        settle(permit, &result, acceptable);
        result
    }
}

/// Records how a call went: success, or failure (with the error text) unless `acceptable`.
#[inline]
pub(crate) fn settle<T, E: fmt::Display, C: Clock>(
    permit: Permit<'_, C>,
    result: &Result<T, E>,
    acceptable: impl FnOnce(&E) -> bool,
) {
    match result {
        Ok(_) => permit.success(),
        Err(e) if acceptable(e) => permit.success(),
        Err(e) => permit.failure_with(e),
    }
}

// # Operations
impl<C: Clock> Breaker<C> {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.inner.mode.load(Ordering::Relaxed))
    }

    /// Switches mode, e.g. [`Mode::ForcedOpen`] to shed a dependency by hand.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Forgets the statistics, the force-pass time and the failure reasons; the mode stays.
    /// Outcomes recorded in the rest of the current bucket (at most 250 ms by default) are
    /// forgotten too, so the breaker admits everything until the next bucket.
    pub fn reset(&self) {
        let inner = &*self.inner;
        inner.window.clear();
        inner.finished.publish([0; 6]);
        inner.live.publish([0; 5]);
        inner.last_pass.store(0, Ordering::Relaxed);
        inner.reasons.clear();
        inner.shadow_rejections.store(0, Ordering::Relaxed);
        inner.cancelled.store(0, Ordering::Relaxed);
    }

    /// Gives the metrics recorder every call counted so far (feature `metrics`; does
    /// nothing without it). `keel_breaker_calls_total` is counted per thread and reaches
    /// the recorder at least once a second on its own, at every
    /// [`snapshot`](Self::snapshot) and when the breaker is dropped; call this before
    /// rendering a scrape that must include the last second's calls.
    ///
    /// ```
    /// let breaker = keel_breaker::Breaker::builder().name("db").build().unwrap();
    /// breaker.allow().unwrap().success();
    /// breaker.publish_metrics(); // a `/metrics` handler calls this before rendering
    /// ```
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish();
    }

    /// The history, drop ratio and mode as of now (and, feature `metrics`, publishes the
    /// call counters).
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        inner.metrics.publish();
        let now = inner.window.clock().now();
        let history = inner.history(now);
        Snapshot {
            history,
            drop_ratio: inner.params.effective_drop_ratio(&history),
            mode: self.mode(),
            shadow_rejections: inner.shadow_rejections.load(Ordering::Relaxed),
            cancelled: inner.cancelled.load(Ordering::Relaxed),
        }
    }

    /// The last five failure reasons, newest first: error texts from `call*`, reasons given
    /// to [`Permit::failure_with`].
    pub fn recent_failures(&self) -> Vec<FailureReason> {
        self.inner.reasons.recent()
    }

    /// The deadline of [`call_async`](Breaker::call_async) and the tower layer's calls, if
    /// one is set ([`Builder::timeout`], feature `tokio`).
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// The slow-call threshold, if one is set ([`Builder::slow_call`]).
    pub fn slow_call(&self) -> Option<Duration> {
        (self.inner.slow_call != 0).then(|| Duration::from_nanos(self.inner.slow_call))
    }

    /// The clock the breaker reads.
    pub fn clock(&self) -> &C {
        self.inner.window.clock()
    }
}

impl<C: Clock> fmt::Debug for Breaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.inner.name)
            .field("mode", &self.mode())
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> Inner<C> {
    /// The decision: `Ok(armed)` to admit (armed = record the outcome), `Err` to reject.
    #[inline]
    fn admit(&self) -> Result<bool, Rejected> {
        let mode = Mode::from_u8(self.mode.load(Ordering::Relaxed));
        match mode {
            Mode::Adaptive | Mode::Shadow => {}
            Mode::ForcedClosed => return Ok(true),
            Mode::Disabled => return Ok(false),
            Mode::ForcedOpen => {
                self.metrics.forced_open();
                return Err(Rejected::new());
            }
        }
        let now = self.window.clock().now();
        let history = self.decision_history(now);
        let Some(pressure) = self.params.pressure(&history) else {
            self.events.healthy(&self.name, now.as_nanos());
            self.metrics.healthy();
            return Ok(true);
        };
        self.admit_under_pressure(now, pressure, &history, mode)
    }

    /// The throttling branch: force-pass, then a random draw against the drop probability.
    #[inline(never)]
    fn admit_under_pressure(
        &self,
        now: Nanos,
        pressure: Pressure,
        history: &History,
        mode: Mode,
    ) -> Result<bool, Rejected> {
        let now_ns = now.as_nanos();
        let last = self.last_pass.load(Ordering::Relaxed);
        let force_pass = self.params.force_pass.as_nanos() as u64;
        if last != 0 && now_ns.saturating_sub(last) > force_pass {
            self.last_pass.store(now_ns, Ordering::Relaxed);
            return Ok(true);
        }
        let draw = self.rng.next_f64();
        let drops = if Metrics::RECORDS_PRESSURE {
            let p = self.params.drop_probability(pressure, history);
            self.metrics.pressure(p);
            draw < p
        } else {
            // The same answer without the division (the probability itself is needed only
            // by the metrics gauge and the `tracing` event).
            self.params.drops(draw, pressure, history)
        };
        if drops {
            if mode == Mode::Shadow {
                self.shadow_rejections.fetch_add(1, Ordering::Relaxed);
            } else {
                if self.count_rejections {
                    self.window.add_at(now, Outcome::Drop);
                }
                self.events.dropped(&self.name, now_ns, || {
                    self.params.drop_probability(pressure, history)
                });
                self.metrics.dropped();
                return Err(Rejected::new());
            }
        }
        self.last_pass.store(now_ns.max(1), Ordering::Relaxed);
        Ok(true)
    }

    /// go-zero's `history()` as of `now`, exactly: the cached finished buckets, then the live
    /// one read afresh. For snapshots.
    fn history(&self, now: Nanos) -> History {
        let f = self.finished(now);
        f.history.then(&self.window.slice_bucket(f.slice))
    }

    /// The history a decision uses: like [`Inner::history`], except that with several
    /// writing threads a reading of the live bucket is reused for up to `live_refresh`, so
    /// that decisions do not pull in the cache lines other threads are writing. With one
    /// writing thread it is exact.
    #[inline]
    fn decision_history(&self, now: Nanos) -> History {
        let f = self.finished(now);
        let live = if self.live_refresh == 0 || self.window.single_writer() {
            self.window.slice_bucket(f.slice)
        } else {
            match live::get(&self.live, f.slice, now.as_nanos()) {
                Some(counts) => counts,
                None => self.refresh_live(f.slice, now),
            }
        };
        f.history.then(&live)
    }

    /// The finished buckets' history for the bucket holding `now`, folded at most once per
    /// bucket.
    #[inline]
    fn finished(&self, now: Nanos) -> Finished {
        match finished::get(&self.finished, now.as_nanos()) {
            Some(f) => f,
            None => self.refresh_finished(now),
        }
    }

    #[cold]
    fn refresh_finished(&self, now: Nanos) -> Finished {
        let slice = self.window.slice_at(now);
        let history = self
            .window
            .fold_before_slice(slice, History::default(), History::then);
        let f = Finished { slice, history };
        let interval = self.window.interval().as_nanos() as u64;
        let from = self.window.origin().as_nanos() + slice * interval;
        self.finished
            .try_publish(finished::words(from, from.saturating_add(interval), f));
        f
    }

    #[cold]
    fn refresh_live(&self, slice: u64, now: Nanos) -> Counts {
        let counts = self.window.slice_bucket(slice);
        let until = now.as_nanos().saturating_add(self.live_refresh);
        self.live.try_publish(live::words(slice, until, counts));
        counts
    }

    #[inline]
    pub(crate) fn record(&self, outcome: Outcome) {
        self.window.add(outcome);
    }

    /// A new permit's start time: read only when a slow-call threshold needs it.
    #[inline]
    pub(crate) fn call_start(&self, armed: bool) -> u64 {
        if armed && self.slow_call != 0 {
            self.window.clock().now().as_nanos()
        } else {
            0
        }
    }

    /// A permit reported `outcome`.
    #[inline]
    pub(crate) fn finish(&self, start: u64, outcome: Outcome) {
        if self.slow_call != 0 && outcome == Outcome::Success && self.was_slow(start, "took") {
            self.record(Outcome::Failure);
            self.metrics.finished(Outcome::Failure);
        } else {
            self.record(outcome);
            self.metrics.finished(outcome);
        }
    }

    /// A permit was dropped unresolved: a panic is a failure; otherwise the caller
    /// cancelled, which counts as [`OnCancel`] says.
    #[cold]
    pub(crate) fn abandon(&self, start: u64) {
        if std::thread::panicking() {
            self.reasons.push("the call panicked".to_owned());
            self.record(Outcome::Failure);
            self.metrics.finished(Outcome::Failure);
            return;
        }
        self.cancelled.fetch_add(1, Ordering::Relaxed);
        self.metrics.cancelled();
        match self.on_cancel {
            OnCancel::Failure => {
                self.reasons.push("cancelled by the caller".to_owned());
                self.record(Outcome::Failure);
            }
            OnCancel::Ignore => {
                if self.slow_call != 0 && self.was_slow(start, "cancelled after") {
                    self.record(Outcome::Failure);
                }
            }
            OnCancel::Success => {
                if self.slow_call != 0 && self.was_slow(start, "cancelled after") {
                    self.record(Outcome::Failure);
                } else {
                    self.record(Outcome::Success);
                }
            }
        }
    }

    /// Whether a call that started at `start` has run longer than the slow-call threshold;
    /// if so its duration is kept among the recent failures.
    #[inline]
    fn was_slow(&self, start: u64, what: &str) -> bool {
        let elapsed = self.window.clock().now().as_nanos().saturating_sub(start);
        let slow = elapsed > self.slow_call;
        if slow {
            self.note_slow(elapsed, what);
        }
        slow
    }

    #[cold]
    fn note_slow(&self, elapsed: u64, what: &str) {
        self.reasons.push(format!(
            "slow call: {what} {:?}, threshold {:?}",
            Duration::from_nanos(elapsed),
            Duration::from_nanos(self.slow_call)
        ));
    }
}
