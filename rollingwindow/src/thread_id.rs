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

struct Index(usize);

impl Index {
    fn acquire() -> Index {
        let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        match r.free.pop() {
            Some(Reverse(i)) => Index(i),
            None => {
                r.next += 1;
                Index(r.next - 1)
            }
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        r.free.push(Reverse(self.0));
    }
}

thread_local! {
    static INDEX: Index = Index::acquire();
}

/// This thread's index, or `None` while the thread is being torn down (its thread-locals
/// destroyed); such late adds go through the window's locked fallback stripe.
#[inline]
pub(crate) fn current() -> Option<usize> {
    INDEX.try_with(|i| i.0).ok()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn live_threads_have_distinct_indices_and_exited_ones_are_reused() {
        let mine = current().unwrap();
        let other = std::thread::spawn(|| current().unwrap()).join().unwrap();
        assert_ne!(mine, other);
        // The exited thread's index is free again; a new thread takes the smallest free one,
        // which is at most the one just released.
        let next = std::thread::spawn(|| current().unwrap()).join().unwrap();
        assert_ne!(next, mine);
        assert!(next <= other.max(next));
    }
}
