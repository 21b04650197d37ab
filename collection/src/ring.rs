//! [`Ring`]: the last `n` values added, shared between threads.

use std::collections::VecDeque;
use std::fmt;

use parking_lot::Mutex;

use crate::ZeroCapacity;

/// Keeps the last `capacity` values added; older ones are dropped as new ones arrive
/// (go-zero's `collection.Ring`). Safe to share between threads: `add` and `take` lock one
/// mutex for O(1) and O(n) work.
///
/// ```
/// use keel_collection::Ring;
///
/// let ring = Ring::new(3)?;
/// for i in 0..5 {
///     ring.add(i);
/// }
/// assert_eq!(ring.take(), vec![2, 3, 4]); // oldest first
/// # Ok::<(), keel_collection::ZeroCapacity>(())
/// ```
///
/// Any capacity from 1 to `usize::MAX` is accepted: memory is taken as values arrive (up
/// to [`INITIAL_SLOTS`](Ring::INITIAL_SLOTS) at first, then doubling, never past the
/// capacity), so a huge ring costs what it holds, not what it could hold.
///
/// ```
/// use keel_collection::Ring;
///
/// let ring = Ring::new(usize::MAX)?; // allocates nothing yet
/// ring.add("only");
/// assert_eq!(ring.take(), vec!["only"]);
/// # Ok::<(), keel_collection::ZeroCapacity>(())
/// ```
///
/// Differences from go-zero: a zero capacity is an error instead of a panic, and the
/// values are held in a `VecDeque` (no index arithmetic to overflow: go-zero's PR #3738);
/// go-zero allocates the whole ring up front.
pub struct Ring<T> {
    capacity: usize,
    values: Mutex<VecDeque<T>>,
}

impl<T> Ring<T> {
    /// Values a ring makes room for on its first `add`: more room is taken as it fills.
    pub const INITIAL_SLOTS: usize = 64;

    /// A ring keeping the last `capacity` values. Nothing is allocated until the first
    /// [`add`](Ring::add).
    ///
    /// # Errors
    ///
    /// [`ZeroCapacity`] if `capacity` is 0.
    pub fn new(capacity: usize) -> Result<Ring<T>, ZeroCapacity> {
        if capacity == 0 {
            return Err(ZeroCapacity);
        }
        Ok(Ring {
            capacity,
            values: Mutex::new(VecDeque::new()),
        })
    }

    /// Adds `value`, dropping the oldest value if the ring is full.
    pub fn add(&self, value: T) {
        let evicted = {
            let mut values = self.values.lock();
            let evicted = if values.len() == self.capacity {
                values.pop_front()
            } else {
                if values.len() == values.capacity() {
                    // Grow by doubling from the first chunk, but never past the capacity.
                    let held = values.len();
                    let more = held.max(Ring::<T>::INITIAL_SLOTS).min(self.capacity - held);
                    values.reserve_exact(more);
                }
                None
            };
            values.push_back(value);
            evicted
        };
        // Dropped outside the lock: a value may have a slow destructor.
        drop(evicted);
    }

    /// The values held, oldest first (clones; the ring keeps them).
    pub fn take(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.values.lock().iter().cloned().collect()
    }

    /// Values held now (at most the capacity).
    pub fn len(&self) -> usize {
        self.values.lock().len()
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many values the ring keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}
