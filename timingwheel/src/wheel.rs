//! [`TimingWheel`]: the handle every driver shares.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keel_timex::{Clock, MonotonicClock, Nanos};

use crate::TimerError;
use crate::core::{Full, TooFar, Wheel};
use crate::shared::Shared;

/// A keyed timing wheel: one-shot timers addressed by your key `K`, each carrying a value `V`.
///
/// Build one with [`Builder`](crate::Builder): [`build`](crate::Builder::build) for a wheel
/// you drive with [`advance`](TimingWheel::advance), [`spawn`](crate::Builder::spawn) for
/// one a background thread drives into a callback, or `stream` (feature `tokio`) for one
/// whose expirations arrive as an async stream. The handle is `Clone + Send + Sync`; clones
/// share one wheel, and the wheel stops when the last handle is dropped.
///
/// ```
/// use keel_timex::ManualClock;
/// use keel_timingwheel::Builder;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let wheel = Builder::new(Duration::from_millis(10)).clock(clock.clone()).build()?;
/// wheel.set("session-42", 7, Duration::from_millis(30))?;
/// wheel.move_timer("session-42", Duration::from_millis(50))?; // pushed back
///
/// clock.advance(Duration::from_millis(40));
/// assert!(wheel.advance().is_empty());
/// clock.advance(Duration::from_millis(10));
/// assert_eq!(wheel.advance(), vec![("session-42", 7)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Timing
///
/// Time is cut into ticks of the builder's length, counted from when the wheel was built. A
/// timer set with `delay` fires at the start of the first tick that begins at or after
/// `now + delay` and after `now`: never early, and late by less than one tick plus however
/// late the driver runs. A tick that has begun is never a timer's tick, so a zero delay
/// fires at the start of the next tick, whether it is set within a tick or exactly at a
/// tick's start, and whether or not that tick has been processed yet. A driver that falls
/// behind (a busy machine, a slow callback) catches up on its next turn: it fires
/// everything due by the current time, never one tick per wake-up.
///
/// ```
/// use keel_timex::ManualClock;
/// use keel_timingwheel::Builder;
/// use std::time::Duration;
///
/// let tick = Duration::from_millis(10);
/// let clock = ManualClock::new();
/// let wheel = Builder::new(tick).clock(clock.clone()).build()?;
/// // Exactly at a tick start (the wheel's first), not yet processed: the next tick.
/// wheel.set("at a tick start", 1, Duration::ZERO)?;
/// assert!(wheel.advance().is_empty());
/// assert_eq!(wheel.time_left("at a tick start"), Some(tick));
///
/// clock.advance(Duration::from_millis(3)); // within the tick
/// wheel.set("mid-tick", 2, Duration::ZERO)?;
/// assert_eq!(wheel.time_left("mid-tick"), Some(Duration::from_millis(7)));
///
/// clock.advance(Duration::from_millis(7)); // the next tick starts: both fire
/// let mut fired = wheel.advance();
/// fired.sort();
/// assert_eq!(fired, vec![("at a tick start", 1), ("mid-tick", 2)]);
///
/// // At a tick start already processed: the next tick as well.
/// wheel.set("after advance", 3, Duration::ZERO)?;
/// assert!(wheel.advance().is_empty());
/// clock.advance(tick);
/// assert_eq!(wheel.advance(), vec![("after advance", 3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # The longest delay
///
/// [`max_delay`](TimingWheel::max_delay), `tick × (slots^levels − slots^(levels − 1) − 1)`,
/// is a promise: a delay up to it is accepted at any moment (mid-tick, on a wheel whose
/// driver is asleep or behind, on a manual wheel nobody advanced for a year), and a longer
/// one is refused with [`TimerError::DelayTooLong`] naming that same `max`, so a caller
/// that clamps to the reported `max` and retries succeeds.
///
/// # Cost
///
/// `set`, `move_timer` and `remove` take the wheel's lock for O(1) work: a hash lookup and a
/// linked-list splice (moving a timer later is a single write: it is moved to its new slot
/// only when its old one comes due). Each timer costs 32 bytes for `u64` keys and values
/// plus 5.8 bytes of index, per timer of capacity: both double together, so a full wheel
/// uses ~38 bytes per timer and one just grown up to twice that (39.7 bytes at a million
/// timers, 37.8 with [`capacity`](crate::Builder::capacity) of a million). Nothing is
/// allocated per timer, and memory is given back when most timers have fired or been
/// removed.
pub struct TimingWheel<K, V, C: Clock = MonotonicClock> {
    pub(crate) shared: Arc<Shared<K, V, C>>,
}

impl<K, V, C> TimingWheel<K, V, C>
where
    K: Hash + Eq,
    C: Clock,
{
    pub(crate) fn from_shared(shared: Arc<Shared<K, V, C>>) -> TimingWheel<K, V, C> {
        TimingWheel { shared }
    }

    #[inline]
    fn check_open(&self) -> Result<(), TimerError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            Err(TimerError::Closed)
        } else {
            Ok(())
        }
    }

    fn too_far(&self) -> TimerError {
        TimerError::DelayTooLong {
            max: self.shared.max_delay,
        }
    }

    /// The longest delay [`set`](Self::set) and [`move_timer`](Self::move_timer) accept:
    /// `tick × (slots^levels − slots^(levels − 1) − 1)` (the span of the wheel less one
    /// top-level slot, less the tick under way), at most `u64::MAX` ns. A promise: a delay
    /// up to it is accepted at any moment, and a longer one is always refused with
    /// [`TimerError::DelayTooLong`] carrying this value.
    ///
    /// ```
    /// use keel_timex::ManualClock;
    /// use keel_timingwheel::{Builder, TimerError};
    /// use std::time::Duration;
    ///
    /// // 4 slots × 2 levels of 10 ms: 16 − 4 − 1 = 11 ticks.
    /// let clock = ManualClock::new();
    /// let wheel = Builder::new(Duration::from_millis(10))
    ///     .slots_per_level(4)
    ///     .levels(2)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// let max = wheel.max_delay();
    /// assert_eq!(max, Duration::from_millis(110));
    ///
    /// // Mid-tick, the longest delay still fits.
    /// clock.advance(Duration::from_millis(7));
    /// assert_eq!(wheel.set(1, "max", max), Ok(None));
    /// assert_eq!(
    ///     wheel.set(2, "longer", max + Duration::from_nanos(1)),
    ///     Err(TimerError::DelayTooLong { max })
    /// );
    ///
    /// // Clamping to the reported max and retrying succeeds.
    /// let wanted = Duration::from_secs(3600);
    /// let delay = match wheel.set(3, "clamped", wanted) {
    ///     Err(TimerError::DelayTooLong { max }) => max,
    ///     other => panic!("{other:?}"),
    /// };
    /// assert_eq!(wheel.set(3, "clamped", delay), Ok(None));
    ///
    /// // A wheel left unadvanced for a long time accepts it too.
    /// clock.advance(Duration::from_secs(86_400) + Duration::from_millis(3));
    /// assert_eq!(wheel.set(4, "after a day", max), Ok(None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_delay(&self) -> Duration {
        self.shared.max_delay
    }

    /// The tick to schedule a `delay` (already checked against the max) on. The span is
    /// counted from the last processed tick, which lags the clock while the driver sleeps
    /// (an idle wheel is never polled) or is behind: on a refusal, catch the wheel up to
    /// now (due timers are kept for the driver) and try again, so the span is counted from
    /// the present and a delay up to the max always fits.
    #[inline]
    fn deadline(&self, wheel: &mut Wheel<K, V>, delay: Duration) -> Result<u64, TimerError> {
        let target = self.shared.target_tick(delay);
        match wheel.deadline_for(target) {
            Ok(deadline) => Ok(deadline),
            Err(TooFar) => wheel
                .deadline_after_catch_up(self.shared.now_tick(), target)
                .map_err(|TooFar| self.too_far()),
        }
    }

    /// Schedules `key` to fire with `value` after `delay`.
    ///
    /// A key that already has a timer keeps one timer: its value is replaced and it is
    /// rescheduled to the new delay (go-zero's `SetTimer`); the old value is returned.
    ///
    /// # Errors
    ///
    /// [`TimerError::Closed`] after [`stop`](Self::stop); [`TimerError::DelayTooLong`] for
    /// a delay longer than [`max_delay`](Self::max_delay) (and only then); [`TimerError::Full`]
    /// at about 4.29 billion timers.
    pub fn set(&self, key: K, value: V, delay: Duration) -> Result<Option<V>, TimerError> {
        self.check_open()?;
        if delay > self.shared.max_delay {
            return Err(self.too_far());
        }
        let (old, wake) = {
            let mut wheel = self.shared.wheel.lock();
            // Checked again under the lock: `stop` clears the wheel under it, so nothing set
            // after a stop can linger.
            self.check_open()?;
            let deadline = self.deadline(&mut wheel, delay)?;
            let old = wheel
                .set(key, value, deadline)
                .map_err(|Full| TimerError::Full)?;
            self.shared.metrics.set(wheel.len());
            (old, self.shared.must_wake(deadline))
        };
        if wake {
            self.shared.wake_driver();
        }
        Ok(old)
    }

    /// Moves `key`'s timer to fire `delay` from now, keeping its value (go-zero's
    /// `MoveTimer`). Returns `false` if `key` has no timer.
    ///
    /// Unlike go-zero, a delay shorter than a tick does not run the callback on the caller's
    /// thread while leaving the old timer behind: the timer moves to the next tick (see
    /// [Timing](TimingWheel#timing)) and fires once.
    ///
    /// # Errors
    ///
    /// As for [`set`](Self::set).
    #[doc(alias = "move")]
    #[doc(alias = "reset")]
    pub fn move_timer<Q>(&self, key: &Q, delay: Duration) -> Result<bool, TimerError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.check_open()?;
        if delay > self.shared.max_delay {
            return Err(self.too_far());
        }
        let (found, wake) = {
            let mut wheel = self.shared.wheel.lock();
            self.check_open()?;
            let deadline = self.deadline(&mut wheel, delay)?;
            let found = wheel.reschedule(key, deadline);
            self.shared.metrics.moved(found);
            (found, found && self.shared.must_wake(deadline))
        };
        if wake {
            self.shared.wake_driver();
        }
        Ok(found)
    }

    /// Cancels `key`'s timer and returns its value (`None` if it had none).
    ///
    /// # Errors
    ///
    /// [`TimerError::Closed`] after [`stop`](Self::stop).
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>, TimerError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.check_open()?;
        let mut wheel = self.shared.wheel.lock();
        self.check_open()?;
        let removed = wheel.remove(key).map(|(_, v)| v);
        self.shared.metrics.removed(removed.is_some(), wheel.len());
        Ok(removed)
    }

    /// Whether `key` has a pending timer.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shared.wheel.lock().contains(key)
    }

    /// How long until `key`'s timer fires (zero if it is due), or `None` if it has none.
    pub fn time_left<Q>(&self, key: &Q) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let deadline = self.shared.wheel.lock().deadline_of(key)?;
        Some(self.shared.until_tick(deadline))
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.shared.wheel.lock().len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every pending timer out without firing it, in no particular order, and
    /// releases their memory. The keys are forgotten: setting one again schedules a new
    /// timer (go-zero's stale mapping after `Drain` is fixed). Use it on shutdown to flush
    /// what would have fired.
    ///
    /// # Errors
    ///
    /// [`TimerError::Closed`] after [`stop`](Self::stop) (which discards pending timers).
    pub fn drain(&self) -> Result<Vec<(K, V)>, TimerError> {
        self.check_open()?;
        let mut wheel = self.shared.wheel.lock();
        self.check_open()?;
        let drained = wheel.drain();
        self.shared.metrics.timers(wheel.len());
        Ok(drained)
    }

    /// Fires everything due by the clock's current time and returns it, earliest deadline
    /// first (timers due on the same tick in no particular order).
    ///
    /// This is the manual driver: call it from your own loop (or a test, after advancing a
    /// [`ManualClock`](keel_timex::ManualClock)); [`next_deadline`](Self::next_deadline)
    /// says when to call it next. User code never runs under the wheel's lock: the entries
    /// are taken out first. On a wheel with a driver, whoever calls first gets the entries.
    /// Empty after [`stop`](Self::stop).
    pub fn advance(&self) -> Vec<(K, V)> {
        let mut due = Vec::new();
        if self.shared.stopped.load(Ordering::Acquire) {
            return due;
        }
        let now = self.shared.now_tick();
        let mut wheel = self.shared.wheel.lock();
        let fired = wheel.poll(now, |k, v| due.push((k, v)));
        self.shared.metrics.fired(fired, wheel.len());
        drop(wheel);
        due
    }

    /// When the wheel next has work: the clock time at which [`advance`](Self::advance)
    /// should next be called (it may find only timers to move down a level, never a timer
    /// due earlier). `None` if no timer is pending.
    pub fn next_deadline(&self) -> Option<Nanos> {
        let tick = self.shared.wheel.lock().next_expiration()?;
        Some(self.shared.tick_start(tick))
    }

    /// Stops the wheel: pending timers never fire and their memory is released; callbacks
    /// already handed out run on; the driver thread exits and the expirations stream ends;
    /// every later operation returns [`TimerError::Closed`]. Idempotent (a second go-zero
    /// `Stop` panics).
    pub fn stop(&self) {
        stop(&self.shared);
    }

    /// Whether the wheel is stopped.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// The tick length.
    pub fn tick(&self) -> Duration {
        self.shared.tick()
    }

    /// The wheel's clock.
    pub fn clock(&self) -> &C {
        &self.shared.clock
    }

    /// Bytes the wheel holds for its timers (entries and index; not the fixed slot arrays,
    /// about 0.5 KiB per level).
    pub fn allocated_bytes(&self) -> usize {
        self.shared.wheel.lock().allocated_bytes()
    }
}

pub(crate) fn stop<K: Hash + Eq, V, C: Clock>(shared: &Shared<K, V, C>) {
    if shared.stopped.swap(true, Ordering::AcqRel) {
        return;
    }
    // Dropped outside the lock: user values may have slow destructors.
    let discarded = {
        let mut wheel = shared.wheel.lock();
        let discarded = wheel.drain();
        shared.metrics.timers(wheel.len());
        discarded
    };
    drop(discarded);
    shared.wake_driver();
}

impl<K, V, C: Clock> Clone for TimingWheel<K, V, C> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        TimingWheel {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, V, C: Clock> Drop for TimingWheel<K, V, C> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last handle: nobody can set or remove timers any more, so the driver has
            // nothing left to wait for.
            self.shared.stopped.store(true, Ordering::Release);
            self.shared.wake_driver();
        }
    }
}

impl<K, V, C: Clock> fmt::Debug for TimingWheel<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimingWheel")
            .field("tick", &self.shared.tick())
            .field("stopped", &self.shared.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
