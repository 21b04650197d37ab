//! The [`Bucket`] trait and the built-in [`SumCount`] bucket.

use std::fmt;

use crate::field::{Field, Value};

/// What a window keeps per time slice.
///
/// A [`RollingWindow`](crate::RollingWindow) holds one bucket per slice *per writing thread*:
/// [`add`](Bucket::add) and [`reset`](Bucket::reset) are only ever called by that thread,
/// while [`read`](Bucket::read) may run on any thread at the same time. Reads merge the
/// per-thread copies of one slice with [`merge`](Bucket::merge) into one
/// [`Snapshot`](Bucket::Snapshot), which is what [`reduce`](crate::RollingWindow::reduce)
/// hands out.
///
/// Build buckets from [`Field`]s: they have the single-writer fast path and the memory
/// orderings the window relies on.
///
/// ```
/// use keel_rollingwindow::{Bucket, Field, RollingWindow};
/// use keel_timex::ManualClock;
/// use std::time::Duration;
///
/// /// Counts outcomes, like the breaker's bucket.
/// #[derive(Default)]
/// struct Outcomes { ok: Field<u64>, failed: Field<u64> }
///
/// #[derive(Clone, Copy, Default, Debug, PartialEq)]
/// struct Counts { ok: u64, failed: u64 }
///
/// impl Bucket for Outcomes {
///     type Input = bool;
///     type Snapshot = Counts;
///     fn add(&self, ok: bool) { if ok { self.ok.add(1) } else { self.failed.add(1) } }
///     fn reset(&self) { self.ok.reset(); self.failed.reset(); }
///     fn read(&self) -> Counts { Counts { ok: self.ok.get(), failed: self.failed.get() } }
///     fn merge(total: &mut Counts, part: &Counts) {
///         total.ok += part.ok;
///         total.failed += part.failed;
///     }
/// }
///
/// let window = RollingWindow::<Outcomes, _>::builder(10, Duration::from_millis(100))
///     .build_with_clock(ManualClock::new())?;
/// window.add(true);
/// window.add(false);
/// window.add(true);
/// let total = window.fold(Counts::default(), |mut t, b| { Outcomes::merge(&mut t, b); t });
/// assert_eq!(total, Counts { ok: 2, failed: 1 });
/// # Ok::<(), keel_rollingwindow::ConfigError>(())
/// ```
pub trait Bucket: Default + Send + Sync + 'static {
    /// What one [`add`](Bucket::add) records.
    type Input;
    /// A plain copy of a bucket's contents, and the merge of several.
    type Snapshot: Clone + Default;

    /// Records `input`. Called only by the thread that owns this copy of the bucket.
    fn add(&self, input: Self::Input);
    /// Empties the bucket for reuse by a new slice. Same caller as `add`.
    fn reset(&self);
    /// A copy of the contents; may run concurrently with `add`.
    fn read(&self) -> Self::Snapshot;
    /// Adds `part` (one thread's copy of a slice) into `total`.
    fn merge(total: &mut Self::Snapshot, part: &Self::Snapshot);
}

/// The built-in bucket: the sum of the added values and how many there were, as go-zero's
/// `Bucket{Sum, Count}`.
///
/// `T` is `i64`, `u64` or `f64`. For `f64`, adding NaN makes the slice's sum NaN until it
/// leaves the window; ±infinity behaves likewise (IEEE arithmetic, as in go-zero).
#[derive(Default)]
pub struct SumCount<T: Value> {
    sum: Field<T>,
    count: Field<u64>,
}

impl<T: Value> fmt::Debug for SumCount<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SumCount")
            .field("sum", &self.sum)
            .field("count", &self.count)
            .finish()
    }
}

/// What a [`SumCount`] bucket holds: the sum of the values added and their number.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct SumCountSnapshot<T> {
    /// Sum of the values added.
    pub sum: T,
    /// How many values were added.
    pub count: u64,
}

impl<T: Value> SumCountSnapshot<T> {
    /// `sum / count`, or `None` for an empty bucket.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum.to_f64() / self.count as f64)
    }
}

impl<T: Value> Bucket for SumCount<T> {
    type Input = T;
    type Snapshot = SumCountSnapshot<T>;

    #[inline]
    fn add(&self, v: T) {
        self.sum.add(v);
        self.count.add(1);
    }

    #[inline]
    fn reset(&self) {
        self.sum.reset();
        self.count.reset();
    }

    #[inline]
    fn read(&self) -> SumCountSnapshot<T> {
        SumCountSnapshot {
            sum: self.sum.get(),
            count: self.count.get(),
        }
    }

    #[inline]
    fn merge(total: &mut SumCountSnapshot<T>, part: &SumCountSnapshot<T>) {
        total.sum = total.sum.plus(part.sum);
        total.count = total.count.wrapping_add(part.count);
    }
}
