//! [`Fifo`]: an unbounded first-in first-out queue shared between threads.

use std::collections::VecDeque;
use std::fmt;

use parking_lot::Mutex;

use crate::ZeroCapacity;

/// A first-in first-out queue safe to share between threads (go-zero's `collection.Queue`):
/// `put` appends, `take` removes the oldest. It grows as needed from its initial capacity,
/// of which at most [`MAX_INITIAL`](Fifo::MAX_INITIAL) slots are reserved up front: any
/// initial capacity up to `usize::MAX` is accepted, and costs what the queue holds.
///
/// ```
/// use keel_collection::Fifo;
///
/// let queue = Fifo::with_capacity(2)?;
/// queue.put("a");
/// queue.put("b");
/// queue.put("c"); // grows
/// assert_eq!(queue.take(), Some("a"));
/// assert_eq!(queue.len(), 2);
/// # Ok::<(), keel_collection::ZeroCapacity>(())
/// ```
///
/// Differences from go-zero: a zero initial capacity is an error instead of a panic;
/// `take` returns an `Option` (go-zero returns `(nil, false)`); a taken value is moved out,
/// so the queue never keeps a reference to it (what go-zero's PR #5704 added by clearing the
/// slot). Growth is `VecDeque`'s amortised doubling, not go-zero's 1.25× beyond 256 slots.
pub struct Fifo<T> {
    values: Mutex<VecDeque<T>>,
}

impl<T> Fifo<T> {
    /// The most slots [`with_capacity`](Fifo::with_capacity) reserves up front (1024): room
    /// beyond that is taken as values arrive.
    pub const MAX_INITIAL: usize = 1024;

    /// An empty queue with room for `capacity` values before it grows, up to
    /// [`MAX_INITIAL`](Fifo::MAX_INITIAL) of them.
    ///
    /// ```
    /// use keel_collection::Fifo;
    ///
    /// let queue = Fifo::with_capacity(usize::MAX)?; // reserves 1024 slots, not usize::MAX
    /// queue.put(1);
    /// assert_eq!(queue.take(), Some(1));
    /// # Ok::<(), keel_collection::ZeroCapacity>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ZeroCapacity`] if `capacity` is 0 (go-zero panics).
    pub fn with_capacity(capacity: usize) -> Result<Fifo<T>, ZeroCapacity> {
        if capacity == 0 {
            return Err(ZeroCapacity);
        }
        Ok(Fifo {
            values: Mutex::new(VecDeque::with_capacity(
                capacity.min(Fifo::<T>::MAX_INITIAL),
            )),
        })
    }

    /// Appends `value`.
    pub fn put(&self, value: T) {
        self.values.lock().push_back(value);
    }

    /// Removes and returns the oldest value, or `None` when empty.
    pub fn take(&self) -> Option<T> {
        self.values.lock().pop_front()
    }

    /// Values queued now.
    pub fn len(&self) -> usize {
        self.values.lock().len()
    }

    /// Whether the queue is empty (go-zero's `Empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> fmt::Debug for Fifo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fifo").field("len", &self.len()).finish()
    }
}
