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
/// timer set with `delay` fires at the start of the first tick at or after `now + delay`:
/// never early, and late by less than one tick plus however late the driver runs. A zero
/// delay fires on the next tick. A driver that falls behind (a busy machine, a slow
/// callback) catches up on its next turn: it fires everything due by the current time,
/// never one tick per wake-up.
///
/// # Cost
///
/// `set`, `move_timer` and `remove` take the wheel's lock for O(1) work: a hash lookup and a
/// linked-list splice (moving a timer later is a single write: it is moved to its new slot
/// only when its old one comes due). Each timer costs 32 bytes for `u64` keys and values
/// plus ~5-10 bytes of index; nothing is allocated per timer, and memory is given back when
/// most timers have fired or been removed.
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

    fn too_far(&self, e: TooFar) -> TimerError {
        TimerError::DelayTooLong {
            max: self.shared.ticks(e.max_ticks),
        }
    }

    /// The tick to schedule `target` on. The span is counted from the last processed
    /// tick, which lags the clock while the driver sleeps (an idle wheel is never polled):
    /// on a refusal, catch the wheel up to now and try again, so the span is counted from
    /// the present unless a due slot is still waiting for its driver.
    #[inline]
    fn deadline(&self, wheel: &mut Wheel<K, V>, target: u64) -> Result<u64, TimerError> {
        match wheel.deadline_for(target) {
            Ok(deadline) => Ok(deadline),
            Err(_) => wheel
                .deadline_after_catch_up(self.shared.now_tick(), target)
                .map_err(|e| self.too_far(e)),
        }
    }

    /// Schedules `key` to fire with `value` after `delay`.
    ///
    /// A key that already has a timer keeps one timer: its value is replaced and it is
    /// rescheduled to the new delay (go-zero's `SetTimer`); the old value is returned.
    ///
    /// # Errors
    ///
    /// [`TimerError::Closed`] after [`stop`](Self::stop); [`TimerError::DelayTooLong`] beyond
    /// the wheel's span; [`TimerError::Full`] at about 4.29 billion timers.
    pub fn set(&self, key: K, value: V, delay: Duration) -> Result<Option<V>, TimerError> {
        self.check_open()?;
        let target = self.shared.target_tick(delay);
        let (old, wake) = {
            let mut wheel = self.shared.wheel.lock();
            // Checked again under the lock: `stop` clears the wheel under it, so nothing set
            // after a stop can linger.
            self.check_open()?;
            let deadline = self.deadline(&mut wheel, target)?;
            let old = wheel
                .set(key, value, deadline)
                .map_err(|Full| TimerError::Full)?;
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
    /// thread while leaving the old timer behind: the timer moves to the next tick and fires
    /// once.
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
        let target = self.shared.target_tick(delay);
        let (found, wake) = {
            let mut wheel = self.shared.wheel.lock();
            self.check_open()?;
            let deadline = self.deadline(&mut wheel, target)?;
            let found = wheel.reschedule(key, deadline);
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
        Ok(wheel.remove(key).map(|(_, v)| v))
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
        Ok(wheel.drain())
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
        self.shared.wheel.lock().poll(now, |k, v| due.push((k, v)));
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
    let discarded = shared.wheel.lock().drain();
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
