//! [`CancelToken`]: the caller's way to stop a running map-reduce from outside.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    lock: Mutex<()>,
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
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        // Take the lock so a waiter between its check and its wait cannot miss the wake.
        drop(self.inner.lock.lock());
        self.inner.cond.notify_all();
        #[cfg(feature = "tokio")]
        self.inner.notify.notify_waiters();
    }

    /// Whether the token was cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Blocks until cancelled or `timeout` passed; `true` if cancelled. A timeout too long
    /// to represent as an [`Instant`] waits until cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            self.wait();
            return true;
        };
        let mut guard = self.inner.lock.lock();
        while !self.is_cancelled() {
            if self.inner.cond.wait_until(&mut guard, deadline).timed_out() {
                return self.is_cancelled();
            }
        }
        true
    }

    /// Blocks until cancelled.
    pub fn wait(&self) {
        let mut guard = self.inner.lock.lock();
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
}
