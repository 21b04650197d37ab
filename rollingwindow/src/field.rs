//! [`Field`]: one number of a bucket, written by a single thread and read by any.

use std::fmt;
use std::marker::PhantomData;

use crate::sync::{AtomicU64, Ordering};

mod sealed {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for u64 {}
    impl Sealed for f64 {}
}

/// A number a [`Field`] can hold: `i64`, `u64` or `f64`.
///
/// Integers add with wrapping (a window of 2⁶³ events is not a practical concern); floats add
/// with IEEE semantics, so a NaN added to a bucket makes that bucket's sum NaN until the
/// bucket leaves the window (see the crate docs on NaN).
pub trait Value:
    sealed::Sealed + Copy + Default + PartialEq + fmt::Debug + Send + Sync + 'static
{
    #[doc(hidden)]
    fn to_bits(self) -> u64;
    #[doc(hidden)]
    fn from_bits(bits: u64) -> Self;
    #[doc(hidden)]
    fn plus(self, other: Self) -> Self;
    #[doc(hidden)]
    fn to_f64(self) -> f64;
}

/// The integer impls: two's-complement bits, wrapping addition.
macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            #[inline]
            fn to_bits(self) -> u64 {
                self as u64
            }
            #[inline]
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
            #[inline]
            fn plus(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

integer_value!(i64, u64);

impl Value for f64 {
    #[inline]
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    #[inline]
    fn plus(self, other: Self) -> Self {
        self + other
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

/// One number inside a [`Bucket`](crate::Bucket): the building block for custom buckets.
///
/// A window gives every thread its own copy of each bucket, so a `Field` has exactly one
/// writer at a time and [`add`](Field::add) is a plain load and store, not an atomic
/// read-modify-write: that is what makes [`RollingWindow::add`](crate::RollingWindow::add)
/// cost a few nanoseconds. Readers on other threads see whole values.
///
/// Writes are `Release` and reads `Acquire`; the window relies on that to detect a bucket
/// that was recycled while being read, so build custom buckets from `Field`s (or keep the
/// same orderings).
///
/// ```
/// use keel_rollingwindow::Field;
///
/// let f = Field::<i64>::new();
/// f.add(5);
/// f.add(-2);
/// assert_eq!(f.get(), 3);
/// f.reset();
/// assert_eq!(f.get(), 0);
/// ```
pub struct Field<T: Value> {
    bits: AtomicU64,
    _value: PhantomData<T>,
}

impl<T: Value> Field<T> {
    /// A field holding zero.
    pub fn new() -> Field<T> {
        Field {
            bits: AtomicU64::new(T::default().to_bits()),
            _value: PhantomData,
        }
    }

    /// Adds `v`. Only the bucket's single writer may call it: two concurrent writers would
    /// lose additions (never memory safety).
    #[inline]
    pub fn add(&self, v: T) {
        // Relaxed load: only this thread writes the field, so it reads its own last store.
        let cur = T::from_bits(self.bits.load(Ordering::Relaxed));
        self.bits.store(cur.plus(v).to_bits(), Ordering::Release);
    }

    /// Sets the field back to zero. Single writer, like [`add`](Field::add).
    #[inline]
    pub fn reset(&self) {
        self.bits.store(T::default().to_bits(), Ordering::Release);
    }

    /// The current value; any thread may call it.
    #[inline]
    pub fn get(&self) -> T {
        T::from_bits(self.bits.load(Ordering::Acquire))
    }
}

impl<T: Value> Default for Field<T> {
    fn default() -> Self {
        Field::new()
    }
}

impl<T: Value> fmt::Debug for Field<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_add() {
        let i = Field::<i64>::new();
        i.add(-7);
        assert_eq!(i.get(), -7);
        let u = Field::<u64>::new();
        u.add(u64::MAX);
        u.add(2);
        assert_eq!(u.get(), 1, "integers wrap");
        let f = Field::<f64>::new();
        f.add(0.5);
        f.add(0.25);
        assert_eq!(f.get(), 0.75);
        f.add(f64::NAN);
        assert!(f.get().is_nan());
        f.reset();
        assert_eq!(f.get(), 0.0);
    }
}
