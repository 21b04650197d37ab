//! The thread driver: one background thread per wheel, asleep until the next occupied slot.

use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread;

use keel_timex::Clock;

use crate::shared::{IDLE, Shared};
use crate::{Builder, ConfigError, TimingWheel};

impl<C: Clock> Builder<C> {
    /// A wheel driven by a background thread that calls `execute(key, value)` for every
    /// timer as it fires (go-zero's `NewTimingWheel(interval, numSlots, execute)`).
    ///
    /// The thread sleeps until the next occupied slot (not every tick: an idle wheel costs
    /// nothing) and is woken when a timer is set earlier than that. It takes the due timers
    /// out under the lock and runs `execute` after releasing it, so callbacks may set,
    /// move and remove timers. Callbacks run one after another on this thread: hand slow
    /// work to a pool (go-zero issue #3789). A panicking callback is caught and the
    /// remaining timers still fire. The thread exits on [`stop`](TimingWheel::stop) or when
    /// the last handle is dropped.
    ///
    /// The thread sleeps on real time, so give a spawned wheel a real clock; with a
    /// [`ManualClock`](keel_timex::ManualClock), use [`build`](Builder::build) and
    /// [`advance`](TimingWheel::advance).
    ///
    /// ```
    /// use keel_timingwheel::Builder;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let wheel = Builder::new(Duration::from_millis(1))
    ///     .spawn(move |key: u64, value: &'static str| tx.send((key, value)).unwrap())?;
    /// wheel.set(1, "one", Duration::from_millis(5))?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, (1, "one"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for invalid settings, or if the thread cannot be spawned.
    pub fn spawn<K, V, F>(self, execute: F) -> Result<TimingWheel<K, V, C>, ConfigError>
    where
        K: Hash + Eq + Send + 'static,
        V: Send + 'static,
        F: FnMut(K, V) + Send + 'static,
    {
        let shared = self.shared(IDLE)?;
        let weak = Arc::downgrade(&shared);
        let handle = thread::Builder::new()
            .name("keel-timingwheel".into())
            .spawn(move || drive(weak, execute))
            .map_err(|e| ConfigError::Spawn(e.to_string()))?;
        let _ = shared.thread.set(handle.thread().clone());
        // A wake before `thread` was set is not lost: the thread polls once before its
        // first sleep.
        shared.wake_driver();
        Ok(TimingWheel::from_shared(shared))
    }
}

fn drive<K, V, C, F>(weak: Weak<Shared<K, V, C>>, mut execute: F)
where
    K: Hash + Eq,
    C: Clock,
    F: FnMut(K, V),
{
    let mut due = Vec::new();
    loop {
        // Hold the wheel only for one turn, so that dropping every handle frees it.
        let Some(shared) = weak.upgrade() else { return };
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let now = shared.now_tick();
        let next = {
            let mut wheel = shared.wheel.lock();
            let fired = wheel.poll(now, |k, v| due.push((k, v)));
            shared.metrics.fired(fired, wheel.len());
            let next = wheel.next_expiration();
            shared
                .wake_at
                .store(next.unwrap_or(IDLE), Ordering::Relaxed);
            next
        };
        for (key, value) in due.drain(..) {
            // A panic in one callback must not stop the wheel or lose the other timers.
            let _ = catch_unwind(AssertUnwindSafe(|| execute(key, value)));
        }
        if due.capacity() > 4096 {
            // One mass expiry must not pin its buffer for the wheel's life.
            due = Vec::new();
        }
        let sleep = next.map(|tick| shared.until_tick(tick));
        drop(shared);
        match sleep {
            Some(d) if d.is_zero() => {}
            Some(d) => thread::park_timeout(d),
            None => thread::park(),
        }
    }
}
