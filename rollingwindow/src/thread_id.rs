//! Small, dense, reusable thread indices: the key to each thread's own stripe.
//!
//! A thread takes the smallest free index on its first add to any window and gives it back
//! when it exits, so indices stay below the peak number of live threads that ever added and
//! a window's stripe table stays small. The mutex is taken once per thread lifetime (twice,
//! counting exit), never on the add path.
//!
//! Handing an index from an exited thread to a new one goes through the mutex, which orders
//! the old owner's last writes to its stripes before the new owner's first: the
//! one-writer-per-stripe rule holds across reuse.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, PoisonError};

struct Registry {
    next: usize,
    free: BinaryHeap<Reverse<usize>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    free: BinaryHeap::new(),
});

fn acquire() -> usize {
    let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    r.free.pop().map(|Reverse(i)| i).unwrap_or_else(|| {
        r.next += 1;
        r.next - 1
    })
}

fn release(index: usize) {
    let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    r.free.push(Reverse(index));
}

/// `INDEX` before the thread's first add.
const UNSET: usize = usize::MAX;
/// `INDEX` after the thread's index was given back: the thread is exiting.
const GONE: usize = usize::MAX - 1;

/// Gives the index back when the thread exits. Kept apart from `INDEX` so that `INDEX` has
/// no destructor: a const-initialised thread-local without one is a single load, with no
/// "initialised or destroyed?" check on the add path.
struct Release(Cell<usize>);

impl Drop for Release {
    fn drop(&mut self) {
        let index = self.0.get();
        if index < GONE {
            // Later adds from this thread's other destructors take the fallback stripe.
            INDEX.with(|i| i.set(GONE));
            release(index);
        }
    }
}

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(UNSET) };
    static RELEASE: Release = const { Release(Cell::new(UNSET)) };
}

/// This thread's index, or `None` while the thread is being torn down; such late adds go
/// through the window's locked fallback stripe.
#[inline]
pub(crate) fn current() -> Option<usize> {
    match INDEX.with(Cell::get) {
        index if index < GONE => Some(index),
        index => first_use(index),
    }
}

#[cold]
fn first_use(index: usize) -> Option<usize> {
    if index == GONE {
        return None;
    }
    let index = acquire();
    // Registering the destructor fails if this thread's thread-locals are already being
    // destroyed; then the index goes straight back.
    if RELEASE.try_with(|r| r.0.set(index)).is_err() {
        release(index);
        return None;
    }
    INDEX.with(|i| i.set(index));
    Some(index)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The two tests take indices; run them one at a time so neither sees the other's.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn live_threads_have_distinct_indices() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = current().unwrap();
        let other = std::thread::spawn(|| current().unwrap()).join().unwrap();
        assert_ne!(mine, other);
        assert_eq!(
            current(),
            Some(mine),
            "an index is kept for the thread's life"
        );
    }

    #[test]
    fn released_indices_are_reused_smallest_first() {
        // Straight on the registry; no other test in this binary takes indices meanwhile.
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let a = acquire();
        let b = acquire();
        assert_ne!(a, b);
        release(b);
        release(a);
        let first = acquire();
        let second = acquire();
        assert_eq!((first, second), (a.min(b), a.max(b)));
        release(first);
        release(second);
    }
}
