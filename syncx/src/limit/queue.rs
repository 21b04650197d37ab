//! [`WaitQueue`]: the FIFO of parked threads and tasks that [`Limit`](super::Limit) and
//! [`Pool`](crate::pool::Pool) wake.
//!
//! # Ground rules
//!
//! - A queue lives inside its owner's mutex; every method runs under that lock.
//! - A waiter is registered with a fresh id. Whoever wakes it first removes the id
//!   ([`pop_first`](WaitQueue::pop_first)) under the lock, then wakes it after unlocking. So
//!   "my id is no longer queued" means "I was woken" to the waiter, whatever the wake-up
//!   reason (spurious condvar wake-up, a re-poll), and a wake-up can never be missed: the waiter
//!   checks its id under the same lock it holds between registering and sleeping.
//! - A waiter that gives up (timeout, dropped future) removes its own id; if the id was already
//!   gone, it was woken and must pass on whatever the wake-up stood for.

use std::collections::BTreeMap;
use std::task::Waker;

use crate::sync::{Arc, Condvar};

/// How to wake one waiter.
#[derive(Debug)]
pub(crate) enum Wake {
    /// A thread blocked on its own condvar (used with the owner's mutex).
    Thread(Arc<Condvar>),
    /// A task's waker.
    Task(Waker),
}

impl Wake {
    /// Wakes the waiter. Call it after unlocking where possible: a waker may run arbitrary code.
    pub(crate) fn wake(self) {
        match self {
            Wake::Thread(condvar) => {
                condvar.notify_one();
            }
            Wake::Task(waker) => waker.wake(),
        }
    }
}

/// Waiters in arrival order, keyed by an id that only grows (so the first key is the oldest).
/// `repr(C)`: the map (whose length a pool's put reads) first, the next id (read only by
/// waiters) last.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct WaitQueue {
    waiting: BTreeMap<u64, Wake>,
    next_id: u64,
}

impl WaitQueue {
    /// Queues a blocked thread; it waits on the returned condvar with the owner's mutex.
    pub(crate) fn register_thread(&mut self) -> (u64, Arc<Condvar>) {
        let condvar = Arc::new(Condvar::new());
        let id = self.push(Wake::Thread(condvar.clone()));
        (id, condvar)
    }

    /// Queues a task.
    pub(crate) fn register_task(&mut self, waker: &Waker) -> u64 {
        self.push(Wake::Task(waker.clone()))
    }

    /// Queues a thread again under the id it had, so it keeps its place in line (a waiter
    /// that was woken but found nothing left to take).
    pub(crate) fn requeue_thread(&mut self, id: u64, condvar: &Arc<Condvar>) {
        self.waiting.insert(id, Wake::Thread(condvar.clone()));
    }

    /// Queues a task again under the id it had, so it keeps its place in line.
    pub(crate) fn requeue_task(&mut self, id: u64, waker: &Waker) {
        self.waiting.insert(id, Wake::Task(waker.clone()));
    }

    fn push(&mut self, wake: Wake) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.insert(id, wake);
        id
    }

    /// Whether `id` is still queued (not yet woken, not removed).
    pub(crate) fn is_queued(&self, id: u64) -> bool {
        self.waiting.contains_key(&id)
    }

    /// Refreshes a queued task's waker; false if `id` is no longer queued (it was woken).
    pub(crate) fn update_waker(&mut self, id: u64, waker: &Waker) -> bool {
        match self.waiting.get_mut(&id) {
            Some(Wake::Task(current)) => {
                if !current.will_wake(waker) {
                    current.clone_from(waker);
                }
                true
            }
            Some(Wake::Thread(_)) => true,
            None => false,
        }
    }

    /// Removes `id`; false if it had already been woken.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        self.waiting.remove(&id).is_some()
    }

    /// Takes the oldest waiter out of the queue, for the caller to wake.
    pub(crate) fn pop_first(&mut self) -> Option<Wake> {
        self.waiting.pop_first().map(|(_, wake)| wake)
    }

    /// How many are queued.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nobody is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}
