//! The state every handle and driver of one wheel shares: the wheel under its lock, the
//! clock and its conversion to ticks, and how to wake the driver.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::thread::Thread;
use std::time::Duration;

use keel_timex::{Clock, Nanos};
use parking_lot::Mutex;

use crate::core::Wheel;
use crate::metrics::WheelMetrics;

/// `wake_at` of a wheel with no driver to wake.
pub(crate) const NO_DRIVER: u64 = 0;
/// `wake_at` of a driver asleep with nothing scheduled.
pub(crate) const IDLE: u64 = u64::MAX;

/// The wheel's time stops this many nanoseconds after it was built (2^64 − 2^62, about
/// 438 years): later clock readings count as this one. It keeps every tick number, and
/// every tick plus the largest span (2^60 ticks), below `u64::MAX`.
const LAST_NANOS: u64 = u64::MAX - (1 << 62);

pub(crate) struct Shared<K, V, C> {
    pub(crate) wheel: Mutex<Wheel<K, V>>,
    pub(crate) clock: C,
    /// Clock reading of tick 0.
    origin: Nanos,
    tick_ns: u64,
    /// The longest delay accepted at any moment (see [`TimingWheel::max_delay`]).
    ///
    /// [`TimingWheel::max_delay`]: crate::TimingWheel::max_delay
    pub(crate) max_delay: Duration,
    pub(crate) stopped: AtomicBool,
    /// Live `TimingWheel` handles; the last one to go stops the wheel.
    pub(crate) handles: AtomicUsize,
    /// The tick the driver sleeps until ([`IDLE`]: until woken; [`NO_DRIVER`]: no driver).
    /// Read and written under the wheel lock, so a `set` that schedules earlier always sees
    /// the driver's latest plan and wakes it.
    pub(crate) wake_at: AtomicU64,
    /// The driver thread, for `unpark`.
    pub(crate) thread: OnceLock<Thread>,
    /// The task polling the expirations stream.
    pub(crate) waker: Mutex<Option<Waker>>,
    /// The wheel's metric handles (zero-sized without the feature `metrics`); recorded
    /// under the wheel lock.
    pub(crate) metrics: WheelMetrics,
}

impl<K, V, C: Clock> Shared<K, V, C> {
    pub(crate) fn new(
        wheel: Wheel<K, V>,
        clock: C,
        tick: Duration,
        wake_at: u64,
        range: u64,
        metrics: WheelMetrics,
    ) -> Shared<K, V, C> {
        let origin = clock.now();
        let tick_ns = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
        // A deadline may lie `range` ticks after the current one; the current one may be
        // all but over, so a delay of one tick less always fits.
        let max_ticks = range - 1;
        Shared {
            wheel: Mutex::new(wheel),
            clock,
            origin,
            tick_ns,
            max_delay: Duration::from_nanos(max_ticks.saturating_mul(tick_ns)),
            stopped: AtomicBool::new(false),
            handles: AtomicUsize::new(1),
            wake_at: AtomicU64::new(wake_at),
            thread: OnceLock::new(),
            waker: Mutex::new(None),
            metrics,
        }
    }

    #[inline]
    pub(crate) fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick_ns)
    }

    /// Nanoseconds since the wheel was built, at most [`LAST_NANOS`].
    #[inline]
    fn since_origin(&self) -> u64 {
        let since = self
            .clock
            .now()
            .as_nanos()
            .saturating_sub(self.origin.as_nanos());
        since.min(LAST_NANOS)
    }

    /// The tick now falls in (ticks are processed at their start).
    #[inline]
    pub(crate) fn now_tick(&self) -> u64 {
        self.since_origin() / self.tick_ns
    }

    /// The first tick that starts at or after `delay` from now and after now: a timer is
    /// never early, at most one tick late, and never due on a tick that has begun (so a
    /// zero delay counts as 1 ns: the next tick, wherever in the current one it is set).
    /// `delay` is at most [`Shared::max_delay`], so at most `u64::MAX` ns.
    #[inline]
    pub(crate) fn target_tick(&self, delay: Duration) -> u64 {
        let delay = (delay.as_nanos() as u64).max(1);
        let at = self.since_origin().saturating_add(delay);
        at.div_ceil(self.tick_ns)
    }

    /// Clock time at the start of `tick`.
    #[inline]
    pub(crate) fn tick_start(&self, tick: u64) -> Nanos {
        self.origin + Duration::from_nanos(tick.saturating_mul(self.tick_ns))
    }

    /// How long from now until `tick` starts (zero if it has).
    pub(crate) fn until_tick(&self, tick: u64) -> Duration {
        self.tick_start(tick) - self.clock.now()
    }

    /// Called under the wheel lock after scheduling at `deadline`: true if the driver sleeps
    /// past it and must be woken (after the lock is released).
    #[inline]
    pub(crate) fn must_wake(&self, deadline: u64) -> bool {
        if deadline < self.wake_at.load(Ordering::Relaxed) {
            self.wake_at.store(deadline, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Wakes whichever driver the wheel has.
    pub(crate) fn wake_driver(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        if let Some(waker) = self.waker.lock().take() {
            waker.wake();
        }
    }
}
