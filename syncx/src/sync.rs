//! The synchronisation primitives every module builds on: loom's inside this crate's own
//! unit tests under `--cfg loom`, std's everywhere else.
//!
//! `all(test, loom)` rather than plain `loom` (as in keel-rollingwindow and keel-shedder):
//! integration and doc tests link the library built without `cfg(test)`, so under
//! `--cfg loom` they still get the real primitives while the `loom_*` unit tests run inside
//! loom models.
//!
//! The real `Mutex` and `Condvar` are parking_lot's: as fast as std's uncontended, and on
//! two threads taking turns on one lock (a pool's get and put) several times faster: std's
//! futex lock sleeps in the kernel once a short spin fails, parking_lot's spins adaptively
//! first (keel-benches' pool get+put on 2 threads). Neither poisons: this crate never
//! relied on poisoning (every critical section leaves its state consistent before it can
//! panic), and the helpers below drop loom's.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(all(test, loom)))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::Arc;
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};

/// Locks `mutex`.
#[cfg(not(all(test, loom)))]
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}

/// Waits on `condvar`.
#[cfg(not(all(test, loom)))]
#[inline]
pub(crate) fn wait<'a, T>(condvar: &Condvar, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(&mut guard);
    guard
}

/// Waits on `condvar` for at most `timeout`; true if it timed out.
#[cfg(not(all(test, loom)))]
#[inline]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    mut guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> (MutexGuard<'a, T>, bool) {
    let timed_out = condvar.wait_for(&mut guard, timeout).timed_out();
    (guard, timed_out)
}

/// Locks `mutex`, ignoring poisoning.
#[cfg(all(test, loom))]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `condvar`, ignoring poisoning.
#[cfg(all(test, loom))]
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning; true if it timed out.
#[cfg(all(test, loom))]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result) = condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (guard, result.timed_out())
}
