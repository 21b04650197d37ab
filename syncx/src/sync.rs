//! The synchronisation primitives every module builds on: loom's inside this crate's own
//! unit tests under `--cfg loom`, std's everywhere else.
//!
//! `all(test, loom)` rather than plain `loom` (as in keel-rollingwindow and keel-shedder):
//! integration and doc tests link the library built without `cfg(test)`, so under
//! `--cfg loom` they still get std's primitives while the `loom_*` unit tests run inside loom
//! models. std's `Mutex` and `Condvar` are futex-based and as fast as parking_lot's
//! uncontended; the helpers below drop lock poisoning, which this crate never relies on
//! (every critical section leaves its state consistent before it can panic).

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use std::sync::PoisonError;

/// Locks `mutex`, ignoring poisoning.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, ignoring poisoning.
#[inline]
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning; true if it timed out.
#[inline]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result) = condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner);
    (guard, result.timed_out())
}
