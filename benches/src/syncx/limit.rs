//! [`LimitUnderTest`]: one `try_acquire` and the release of its permit, for keel's `Limit`,
//! tokio's `Semaphore` and the hand-written [`MutexCondvarLimit`].

use keel_syncx::limit::Limit;
use parking_lot::{Condvar, Mutex};
use tokio::sync::Semaphore;

/// A counting limit as the suite sees it.
pub trait LimitUnderTest: Sync {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;

    /// A limit of `capacity` permits.
    fn with_capacity(capacity: usize) -> Self;

    /// Takes a permit without waiting and returns it at once (RAII drop): `false` if none
    /// was free.
    fn try_acquire_release(&self) -> bool;

    /// Permits free now.
    fn available(&self) -> usize;
}

/// keel's `Limit`: `try_acquire()`, then dropping the `Permit`.
#[derive(Debug)]
pub struct KeelLimit(pub Limit);

impl LimitUnderTest for KeelLimit {
    const NAME: &'static str = "keel";

    fn with_capacity(capacity: usize) -> Self {
        KeelLimit(Limit::new(capacity).expect("a valid capacity"))
    }

    #[inline]
    fn try_acquire_release(&self) -> bool {
        self.0.try_acquire().is_some()
    }

    fn available(&self) -> usize {
        self.0.available()
    }
}

/// tokio's `Semaphore`: `try_acquire()`, then dropping the `SemaphorePermit`.
#[derive(Debug)]
pub struct TokioSemaphore(pub Semaphore);

impl LimitUnderTest for TokioSemaphore {
    const NAME: &'static str = "tokio Semaphore";

    fn with_capacity(capacity: usize) -> Self {
        TokioSemaphore(Semaphore::new(capacity))
    }

    #[inline]
    fn try_acquire_release(&self) -> bool {
        self.0.try_acquire().is_ok()
    }

    fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// The minimal blocking limit, written here as the hand-made peer: the free permits in a
/// `parking_lot::Mutex<usize>`, and a `Condvar` that a release notifies (go-zero's `Limit`
/// is a buffered channel, which is this in Go's runtime).
#[derive(Debug)]
pub struct MutexCondvarLimit {
    available: Mutex<usize>,
    released: Condvar,
}

/// A permit of [`MutexCondvarLimit`]; dropping it returns it and wakes one waiter.
#[derive(Debug)]
pub struct MutexPermit<'a>(&'a MutexCondvarLimit);

impl MutexCondvarLimit {
    /// A permit if one is free.
    #[inline]
    pub fn try_acquire(&self) -> Option<MutexPermit<'_>> {
        let mut available = self.available.lock();
        if *available == 0 {
            return None;
        }
        *available -= 1;
        Some(MutexPermit(self))
    }

    /// A permit, waiting for one to be released if none is free.
    pub fn acquire(&self) -> MutexPermit<'_> {
        let mut available = self.available.lock();
        while *available == 0 {
            self.released.wait(&mut available);
        }
        *available -= 1;
        MutexPermit(self)
    }
}

impl Drop for MutexPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.0.available.lock() += 1;
        self.0.released.notify_one();
    }
}

impl LimitUnderTest for MutexCondvarLimit {
    const NAME: &'static str = "mutex+condvar";

    fn with_capacity(capacity: usize) -> Self {
        MutexCondvarLimit {
            available: Mutex::new(capacity),
            released: Condvar::new(),
        }
    }

    #[inline]
    fn try_acquire_release(&self) -> bool {
        self.try_acquire().is_some()
    }

    fn available(&self) -> usize {
        *self.available.lock()
    }
}
