//! [`CancelToken`]: the caller's way to stop a running map-reduce from outside.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A cancellation flag shared by clones: once [`cancel`](CancelToken::cancel)led it
/// stays cancelled. Pass one in [`Options::token`](crate::Options::token) to stop a
/// map-reduce from another thread or task; the stages see it through
/// [`Cancel::is_cancelled`](crate::Cancel::is_cancelled) too.
///
/// ```
/// use keel_mapreduce::CancelToken;
///
/// let token = CancelToken::new();
/// let seen_by_workers = token.clone();
/// assert!(!seen_by_workers.is_cancelled());
/// token.cancel();
/// assert!(seen_by_workers.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

/// [`Inner::state`] of a token not cancelled yet.
const LIVE: u8 = 0;
/// Cancelled by its own [`CancelToken::cancel`].
const BY_ITSELF: u8 = 1;
/// Cancelled because the token it was made a child of was.
const BY_PARENT: u8 = 2;

#[derive(Default)]
struct Inner {
    /// [`LIVE`] until the first cancel, then who cancelled it; set once.
    state: AtomicU8,
    /// Tokens cancelled with this one (a map-reduce's own stop signal is a child of the
    /// caller's token, so the caller's cancel reaches every stage at once, not when some
    /// thread next looks). Also the lock the condvar's waiters hold.
    children: Mutex<Vec<Weak<Inner>>>,
    cond: Condvar,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels: every waiter wakes, every clone reads cancelled from now on.
    /// Cancelling a token cancels the map-reduce calls running with it before this
    /// returns: from then on their [`Source::send`](crate::thread::Source::send) returns
    /// `false` and no mapper starts.
    pub fn cancel(&self) {
        self.inner.cancel(BY_ITSELF);
    }

    /// Whether the token was cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) != LIVE
    }

    /// A token cancelled when this one is (at once if it already is), and on its own
    /// without touching this one.
    pub(crate) fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        {
            let mut children = self.inner.children.lock();
            // Read under the lock: a cancel that set the state after this read takes the
            // list after this push, so the child is never missed.
            if !self.is_cancelled() {
                // Children end with their call: drop the dead ones before the list grows,
                // so a token reused for many calls holds at most twice the live ones.
                if children.len() == children.capacity() {
                    children.retain(|c| c.strong_count() > 0);
                }
                children.push(Arc::downgrade(&child.inner));
                return child;
            }
        }
        child.inner.cancel(BY_PARENT);
        child
    }

    /// Whether this token was cancelled through the token it is a child of (not by its own
    /// [`cancel`](CancelToken::cancel), nor before it).
    pub(crate) fn cancelled_by_parent(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) == BY_PARENT
    }

    /// Blocks until cancelled or `timeout` passed; `true` if cancelled. A timeout too long
    /// to represent as an [`Instant`] waits until cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            self.wait();
            return true;
        };
        let mut guard = self.inner.children.lock();
        while !self.is_cancelled() {
            if self.inner.cond.wait_until(&mut guard, deadline).timed_out() {
                return self.is_cancelled();
            }
        }
        true
    }

    /// Blocks until cancelled.
    pub fn wait(&self) {
        let mut guard = self.inner.children.lock();
        while !self.is_cancelled() {
            self.inner.cond.wait(&mut guard);
        }
    }

    /// Completes once cancelled.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

impl Inner {
    fn cancel(&self, by: u8) {
        if self
            .state
            .compare_exchange(LIVE, by, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // Taken under the lock, so a waiter between its check and its wait cannot miss the
        // wake, and a child registering now is either in the list or sees the state.
        let children = std::mem::take(&mut *self.children.lock());
        self.cond.notify_all();
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
        for child in children {
            if let Some(child) = child.upgrade() {
                child.cancel(BY_PARENT);
            }
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_wake_on_cancel() {
        let t = CancelToken::new();
        assert!(!t.wait_timeout(Duration::from_millis(1)));
        let other = t.clone();
        let waiter = std::thread::spawn(move || other.wait());
        t.cancel();
        waiter.join().unwrap();
        assert!(t.wait_timeout(Duration::ZERO));
    }

    #[test]
    fn a_child_is_cancelled_with_its_parent_and_says_so() {
        let parent = CancelToken::new();
        let child = parent.child();
        let sibling = parent.child();
        sibling.cancel();
        assert!(
            !parent.is_cancelled(),
            "a child's cancel stays with the child"
        );
        parent.cancel();
        assert!(child.is_cancelled() && child.cancelled_by_parent());
        assert!(sibling.is_cancelled() && !sibling.cancelled_by_parent());
        assert!(!parent.cancelled_by_parent());

        let late = parent.child();
        assert!(late.is_cancelled() && late.cancelled_by_parent());
    }

    #[test]
    fn dead_children_do_not_pile_up() {
        let parent = CancelToken::new();
        let live: Vec<_> = (0..3).map(|_| parent.child()).collect();
        for _ in 0..10_000 {
            drop(parent.child());
        }
        assert!(parent.inner.children.lock().len() <= 2 * (live.len() + 1));
        parent.cancel();
        assert!(live.iter().all(CancelToken::cancelled_by_parent));
    }
}
