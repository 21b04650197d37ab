//! Wakers for the futures the driver polls inside its own task: a wake queues the stage's
//! index and wakes the task only if the driver is not polling right now (it rechecks the
//! queue before it returns `Pending`), so stages in the caller's task never reschedule it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

use parking_lot::Mutex;

pub(super) struct Hub {
    parent: Mutex<Option<Waker>>,
    in_poll: AtomicBool,
    ready: Mutex<Vec<usize>>,
}

pub(super) struct StageWake {
    hub: Arc<Hub>,
    index: usize,
    queued: AtomicBool,
}

impl Wake for StageWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.hub.ready.lock().push(self.index);
        }
        if !self.hub.in_poll.load(Ordering::SeqCst)
            && let Some(w) = self.hub.parent.lock().as_ref()
        {
            w.wake_by_ref();
        }
    }
}

/// One stage's waker and its queued flag.
pub(super) struct Stage {
    wake: Arc<StageWake>,
    pub(super) waker: Waker,
}

impl Stage {
    /// Marks the stage as taken off the ready list (before polling it).
    #[inline]
    pub(super) fn unqueue(&self) {
        self.wake.queued.store(false, Ordering::Release);
    }
}

impl Hub {
    pub(super) fn new() -> Arc<Hub> {
        Arc::new(Hub {
            parent: Mutex::new(None),
            in_poll: AtomicBool::new(false),
            ready: Mutex::new(Vec::new()),
        })
    }

    /// A stage with this index, queued from the start.
    pub(super) fn stage(self: &Arc<Hub>, index: usize, queued: bool) -> Stage {
        let wake = Arc::new(StageWake {
            hub: Arc::clone(self),
            index,
            queued: AtomicBool::new(queued),
        });
        if queued {
            self.ready.lock().push(index);
        }
        Stage {
            waker: Waker::from(Arc::clone(&wake)),
            wake,
        }
    }

    /// The driver starts polling with `waker`.
    pub(super) fn enter(&self, waker: &Waker) {
        {
            let mut p = self.parent.lock();
            if !p.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *p = Some(waker.clone());
            }
        }
        self.in_poll.store(true, Ordering::SeqCst);
    }

    /// Moves the ready indices into `out` (empty if none).
    pub(super) fn take_ready(&self, out: &mut Vec<usize>) {
        let mut r = self.ready.lock();
        std::mem::swap(&mut *r, out);
    }

    /// The driver is about to return `Pending`: `false` if a stage was woken meanwhile
    /// (then it keeps polling).
    pub(super) fn leave(&self) -> bool {
        self.in_poll.store(false, Ordering::SeqCst);
        if self.ready.lock().is_empty() {
            return true;
        }
        self.in_poll.store(true, Ordering::SeqCst);
        false
    }

    /// The driver yields (it has woken its task itself).
    pub(super) fn pause(&self) {
        self.in_poll.store(false, Ordering::SeqCst);
    }

    /// The driver is done: drop the task's waker.
    pub(super) fn clear(&self) {
        self.in_poll.store(true, Ordering::SeqCst);
        *self.parent.lock() = None;
    }
}
