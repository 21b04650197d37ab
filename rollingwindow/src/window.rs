//! [`RollingWindow`]: adds and reads.

use std::fmt;
use std::time::Duration;

use keel_timex::{Clock, CoarseClock, Nanos};

use std::sync::atomic::AtomicU64;

use crate::stripe::{MAX_SLICE, Stripe};
use crate::stripes::Stripes;
use crate::{Bucket, Builder, ConfigError};

/// A sliding window of `size` buckets, each covering `interval` of time, with go-zero's
/// semantics and a per-thread striped layout.
///
/// Values go into the bucket of the time slice they are added in; slices lie on a grid
/// anchored at construction. Reading visits the buckets still inside the window, oldest first
/// (see [`reduce`](RollingWindow::reduce) for exactly which).
///
/// Share it by `&self` (or an `Arc`) across threads. Each thread that adds writes its own
/// copy of the buckets, so [`add`](RollingWindow::add) takes no lock and no atomic
/// read-modify-write: a clock read, a few loads and two plain stores. Reads merge the
/// per-thread copies, so they cost `O(size × writing threads)`.
///
/// ```
/// use keel_rollingwindow::{RollingWindow, SumCount};
/// use keel_timex::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let window = RollingWindow::<SumCount<i64>, _>::builder(3, Duration::from_millis(50))
///     .build_with_clock(clock.clone())?;
///
/// window.add(1);
/// clock.advance(Duration::from_millis(50));
/// window.add(2);
/// window.add(3);
/// let sums: Vec<i64> = window.snapshots().iter().map(|b| b.sum).collect();
/// assert_eq!(sums, [0, 1, 5]); // oldest first
/// # Ok::<(), keel_rollingwindow::ConfigError>(())
/// ```
///
/// # Differences from go-zero
///
/// - Lock-free adds on per-thread stripes instead of one `RWMutex` around the window.
/// - Bad configuration is a [`ConfigError`], not a panic.
/// - The clock is injected ([`build_with_clock`](Builder::build_with_clock)); the default is
///   the cached [`CoarseClock`].
/// - An add for a slice older than the bucket it maps to (a thread that read the clock a
///   whole window ago) is dropped instead of resetting the window: such a value is outside
///   the window for any read. go-zero resets every bucket when time appears to go backwards.
/// - A read whose clock reading is older than the newest add treats the newest add's slice
///   as "now" rather than skipping every bucket.
pub struct RollingWindow<B: Bucket, C: Clock = CoarseClock> {
    stripes: Stripes<B>,
    clock: C,
    /// Clock reading at construction: the anchor of the bucket grid.
    origin: u64,
    /// Bucket interval in nanoseconds, at least 1.
    interval: u64,
    size: usize,
    ignore_current: bool,
    /// Slices below this one read as empty ([`RollingWindow::clear`]).
    cleared: AtomicU64,
    /// `u64::MAX / size + 1` when `size` fits in 32 bits, for [`RollingWindow::slot_of`].
    mod_magic: Option<u64>,
}

impl<B: Bucket> RollingWindow<B> {
    /// Starts configuring a window of `size` buckets of `interval` each.
    pub fn builder(size: usize, interval: Duration) -> Builder<B> {
        Builder::new(size, interval)
    }

    /// A window of `size` buckets of `interval` each on the [`CoarseClock`], without
    /// [`ignore_current_bucket`](Builder::ignore_current_bucket).
    pub fn new(size: usize, interval: Duration) -> Result<RollingWindow<B>, ConfigError> {
        Builder::new(size, interval).build()
    }
}

impl<B: Bucket, C: Clock> RollingWindow<B, C> {
    pub(crate) fn from_parts(
        size: usize,
        interval: u64,
        ignore_current: bool,
        clock: C,
    ) -> RollingWindow<B, C> {
        RollingWindow {
            stripes: Stripes::new(size),
            origin: clock.now().as_nanos(),
            clock,
            interval,
            size,
            ignore_current,
            cleared: AtomicU64::new(0),
            mod_magic: u32::try_from(size)
                .ok()
                .map(|d| (u64::MAX / u64::from(d)).wrapping_add(1)),
        }
    }

    /// Adds `input` to the current time slice's bucket.
    #[inline]
    pub fn add(&self, input: B::Input) {
        self.add_at(self.clock.now(), input);
    }

    /// Adds `input` to the bucket of the slice holding `now`, for callers that already read
    /// the clock for this operation. A `now` before construction counts as the first slice.
    #[inline]
    pub fn add_at(&self, now: Nanos, input: B::Input) {
        let rel = now.as_nanos().saturating_sub(self.origin);
        self.stripes
            .with_own(|stripe| stripe.add(rel, self.interval, input));
    }

    /// Calls `f` with each bucket still in the window, oldest first, as go-zero's `Reduce`.
    ///
    /// Let `S` be the current slice and `L` the newest slice anything was added in (the
    /// first slice if nothing was). The buckets visited are those of slices `S - size + 1`
    /// to `L`: `size - (S - L)` of them, none once `S - L >= size`. Slices between `L` and
    /// `S` (time that passed with no adds) are not visited; stale buckets are skipped, never
    /// reset by a read. With [`ignore_current_bucket`](Builder::ignore_current_bucket), `L`
    /// is left out while it is still the current slice. A slice no thread wrote is visited as
    /// an empty bucket.
    ///
    /// Each visited bucket merges every thread's copy of that slice; adds racing with the
    /// read may or may not be included.
    pub fn reduce(&self, f: impl FnMut(&B::Snapshot)) {
        self.reduce_at(self.clock.now(), f);
    }

    /// [`reduce`](RollingWindow::reduce) as of `now`.
    pub fn reduce_at(&self, now: Nanos, mut f: impl FnMut(&B::Snapshot)) {
        self.fold_at(now, (), |(), b| f(b));
    }

    /// Folds the visited buckets (see [`reduce`](RollingWindow::reduce)), oldest first.
    ///
    /// Prefer it to `reduce` with a closure that updates captured state: the accumulator can
    /// stay in a register here, while captured state is reloaded from memory after the
    /// atomic loads of every bucket.
    pub fn fold<A>(&self, init: A, f: impl FnMut(A, &B::Snapshot) -> A) -> A {
        self.fold_at(self.clock.now(), init, f)
    }

    /// [`fold`](RollingWindow::fold) as of `now`.
    pub fn fold_at<A>(&self, now: Nanos, init: A, f: impl FnMut(A, &B::Snapshot) -> A) -> A {
        let current = self.slice_at(now);
        self.stripes.with_all(|stripes| {
            let last_stamp = stripes.iter().map(|s| s.last_stamp()).max().unwrap_or(0);
            let last = last_stamp.saturating_sub(1);
            let current = current.max(last);
            let span = current - last;
            let size = self.size as u64;
            if span >= size {
                return init;
            }
            let ignore = u64::from(span == 0 && self.ignore_current);
            // Slices `current + 1 - size ..= last`, less `last` when it is ignored.
            self.fold_slices(stripes, last + 1 - ignore, size - span - ignore, init, f)
        })
    }

    /// The bucket of the slice holding `now`, merged across threads; empty if nothing was
    /// added in that slice (or it was [cleared](RollingWindow::clear)).
    ///
    /// With [`fold_previous_at`](RollingWindow::fold_previous_at) it lets a reader keep an
    /// aggregate of the finished slices and combine it with the live one, which is how the
    /// breaker decides in O(1) instead of folding the whole window per request.
    pub fn current_at(&self, now: Nanos) -> B::Snapshot {
        self.slice_bucket(self.slice_at(now))
    }

    /// The bucket of slice number `slice` (see [`slice_at`](RollingWindow::slice_at)),
    /// merged across threads; empty if it is not held any more, or never was.
    ///
    /// Built for per-request readers: no division, no allocation, and only the stripes of
    /// threads that have added are visited.
    #[inline]
    pub fn slice_bucket(&self, slice: u64) -> B::Snapshot {
        let mut merged = B::Snapshot::default();
        if slice < self.cleared.load(std::sync::atomic::Ordering::Acquire) {
            return merged;
        }
        let idx = self.slot_of(slice);
        // Wrapping: a slice past the last one recorded (see `slice_at`) gets a stamp no slot
        // holds (0 or the busy mark), so it reads as empty, which it is.
        let stamp = slice.wrapping_add(1);
        self.stripes.for_each(|stripe| {
            if let Some(part) = stripe.read_slot(idx, stamp) {
                B::merge(&mut merged, &part);
            }
        });
        merged
    }

    /// Whether at most one thread has added to this window so far. Then a read touches no
    /// cache line that another thread is writing; readers that run per request can use it to
    /// choose between a direct read and a cached one.
    #[inline]
    pub fn single_writer(&self) -> bool {
        self.stripes.at_most_one()
    }

    /// `slice % size` without a hardware division for slices below 2^32 (136 years of
    /// 1-second buckets): Lemire's "faster remainder by direct computation".
    #[inline]
    fn slot_of(&self, slice: u64) -> usize {
        match (u32::try_from(slice), self.mod_magic) {
            (Ok(a), Some(magic)) => {
                let low = magic.wrapping_mul(u64::from(a));
                ((u128::from(low) * self.size as u128) >> 64) as usize
            }
            _ => (slice % self.size as u64) as usize,
        }
    }

    /// Folds the `size - 1` slices before the one holding `now`, oldest first: the finished
    /// part of the window. Unlike [`reduce`](RollingWindow::reduce) it always visits every
    /// one of them; a slice nobody added in (or one that was cleared, or that lies before
    /// construction) is visited as an empty bucket.
    pub fn fold_previous_at<A>(
        &self,
        now: Nanos,
        init: A,
        f: impl FnMut(A, &B::Snapshot) -> A,
    ) -> A {
        self.fold_before_slice(self.slice_at(now), init, f)
    }

    /// [`fold_previous_at`](RollingWindow::fold_previous_at) for the slice numbered `slice`.
    pub fn fold_before_slice<A>(
        &self,
        slice: u64,
        init: A,
        f: impl FnMut(A, &B::Snapshot) -> A,
    ) -> A {
        let slice = slice.min(MAX_SLICE);
        self.stripes
            .with_all(|stripes| self.fold_slices(stripes, slice, self.size as u64 - 1, init, f))
    }

    /// The number of the slice holding `now`: 0 for the slice the window was built in, and
    /// one more every `interval` after [`origin`](RollingWindow::origin), up to `u64::MAX - 2`
    /// (reached only with a 1 ns interval, 584 years after the origin), where the window's
    /// time stops.
    #[inline]
    pub fn slice_at(&self, now: Nanos) -> u64 {
        (now.as_nanos().saturating_sub(self.origin) / self.interval).min(MAX_SLICE)
    }

    /// Where the grid of slices starts: the clock reading at construction. Slice `n` covers
    /// `origin + n × interval` up to the next one.
    pub fn origin(&self) -> Nanos {
        Nanos::from_nanos(self.origin)
    }

    /// Forgets everything added so far: every slice up to and including the current one
    /// reads as empty from now on, including adds that land in the current slice after this
    /// call. Recording resumes at the next slice boundary (at most one `interval` later).
    /// Meant for operators (a breaker's reset), not for hot paths.
    pub fn clear(&self) {
        self.clear_at(self.clock.now());
    }

    /// [`clear`](RollingWindow::clear) as of `now`.
    pub fn clear_at(&self, now: Nanos) {
        self.cleared
            .fetch_max(self.slice_at(now) + 1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Folds the `count` slices that end just before slice `end`, oldest first. Slices
    /// before the first slice or below the clear mark are visited as empty. Slot indices
    /// advance with the slices, so only the first one costs a division.
    fn fold_slices<A>(
        &self,
        stripes: &[&Stripe<B>],
        end: u64,
        count: u64,
        mut acc: A,
        mut f: impl FnMut(A, &B::Snapshot) -> A,
    ) -> A {
        let first = end.saturating_sub(count);
        let cleared = self.cleared.load(std::sync::atomic::Ordering::Acquire);
        let first_kept = first.max(cleared.min(end));
        for _ in 0..count - (end - first_kept) {
            acc = f(acc, &B::Snapshot::default());
        }
        let mut stamp = first_kept + 1;
        let mut idx = (first_kept % self.size as u64) as usize;
        let next = |idx: usize| if idx + 1 == self.size { 0 } else { idx + 1 };
        if let [stripe] = stripes {
            // One writing thread (the common case for a window per call site): no merge.
            let slots = stripe.slots();
            for _ in first_kept..end {
                acc = f(acc, &slots[idx].read(stamp).unwrap_or_default());
                stamp += 1;
                idx = next(idx);
            }
            return acc;
        }
        for _ in first_kept..end {
            let mut merged = B::Snapshot::default();
            for stripe in stripes {
                if let Some(part) = stripe.read_slot(idx, stamp) {
                    B::merge(&mut merged, &part);
                }
            }
            acc = f(acc, &merged);
            stamp += 1;
            idx = next(idx);
        }
        acc
    }

    /// The visited buckets (see [`reduce`](RollingWindow::reduce)), oldest first. Allocates;
    /// prefer `reduce` or `fold` on hot paths.
    pub fn snapshots(&self) -> Vec<B::Snapshot> {
        let mut out = Vec::with_capacity(self.size);
        self.reduce(|b| out.push(b.clone()));
        out
    }

    /// The number of buckets.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The time one bucket covers.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// `size × interval`: how far back the window reaches.
    pub fn span(&self) -> Duration {
        Duration::from_nanos(self.interval * self.size as u64)
    }

    /// Whether reads leave out the bucket still being filled.
    pub fn ignores_current_bucket(&self) -> bool {
        self.ignore_current
    }

    /// The clock the window reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<B: Bucket, C: Clock + fmt::Debug> fmt::Debug for RollingWindow<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollingWindow")
            .field("size", &self.size)
            .field("interval", &self.interval())
            .field("ignore_current_bucket", &self.ignore_current)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::SumCount;
    use keel_timex::ManualClock;

    #[test]
    fn slot_of_matches_the_remainder() {
        for size in [
            1usize,
            2,
            3,
            7,
            40,
            1000,
            crate::MAX_SIZE - 1,
            crate::MAX_SIZE,
        ] {
            let w = RollingWindow::<SumCount<i64>, _>::builder(size, Duration::from_nanos(1))
                .build_with_clock(ManualClock::new())
                .unwrap();
            for slice in [
                0u64,
                1,
                39,
                40,
                41,
                12_345,
                u32::MAX as u64 - 1,
                u32::MAX as u64,
                1 << 40,
            ] {
                assert_eq!(
                    w.slot_of(slice),
                    (slice % size as u64) as usize,
                    "{slice} % {size}"
                );
            }
        }
    }
}
