//! One thread's copy of the window: `size` slots, each a bucket tagged with its slice.
//!
//! # Ground rules
//!
//! - A stripe has **one writer at a time**: the thread that owns it (see
//!   [`crate::stripes`]), or whoever holds the fallback lock. Only the writer calls
//!   [`Stripe::add`], so the writer-side loads can be `Relaxed` (they read the writer's own
//!   stores) and bucket fields are updated with a plain load and store.
//! - Any thread may call [`Stripe::read`] at any time.
//! - A slot's `stamp` is `slice + 1` for the slice its bucket holds, `0` before the first
//!   write, and [`BUSY`] while the writer recycles it for a newer slice. Stamps of a slot
//!   only grow (apart from passing through `BUSY`).
//!
//! # Publication protocol (a per-slot seqlock)
//!
//! Writer, moving a slot to slice `j`: store `BUSY` (Relaxed), reset and add with `Release`
//! stores, store `j + 1` (Release). Reader: load the stamp (Acquire); if it is `j + 1`, read
//! the fields (Acquire), then load the stamp again. If both loads agree the fields belong to
//! slice `j`: the first Acquire saw the reset, and a read that saw a later slice's write
//! synchronises with it, so the second load sees `BUSY` or later and the read is discarded.

use crate::Bucket;
use crate::sync::{AtomicU64, Ordering};

/// Stamp of a slot that its writer is recycling.
pub(crate) const BUSY: u64 = u64::MAX;
/// The last slice a window records: later clock readings count as this slice, so that a
/// stamp (`slice + 1`) never overflows nor reaches [`BUSY`]. Only a 1 ns interval can get
/// there, 584 years after the window's origin.
pub(crate) const MAX_SLICE: u64 = u64::MAX - 2;
/// `cur_idx` before the first write: no slot is current.
const NO_SLOT: u64 = u64::MAX;

pub(crate) struct Slot<B> {
    stamp: AtomicU64,
    bucket: B,
}

pub(crate) struct Stripe<B> {
    /// Largest stamp written to any slot here (0 = none). Written on slice changes only.
    last: AtomicU64,
    /// Writer-only hint: window-relative start (ns) of the slice in slot `cur_idx`. Lets the
    /// common add skip two divisions and the stamp check.
    cur_start: AtomicU64,
    cur_idx: AtomicU64,
    slots: Box<[Slot<B>]>,
}

impl<B: Bucket> Stripe<B> {
    pub(crate) fn new(size: usize) -> Stripe<B> {
        Stripe {
            last: AtomicU64::new(0),
            cur_start: AtomicU64::new(0),
            cur_idx: AtomicU64::new(NO_SLOT),
            slots: (0..size)
                .map(|_| Slot {
                    stamp: AtomicU64::new(0),
                    bucket: B::default(),
                })
                .collect(),
        }
    }

    /// Records `input` at `rel` ns after the window origin. Writer only.
    #[inline]
    pub(crate) fn add(&self, rel: u64, interval: u64, input: B::Input) {
        let start = self.cur_start.load(Ordering::Relaxed);
        let idx = self.cur_idx.load(Ordering::Relaxed);
        // wrapping_sub: an add for a time before `start` wraps to a huge value and misses.
        if rel.wrapping_sub(start) < interval
            && let Some(slot) = self.slots.get(idx as usize)
        {
            // The hint is only ever set to a slot this writer stamped for that slice, and
            // only this writer restamps slots, so the stamp needs no check.
            slot.bucket.add(input);
            return;
        }
        self.add_slow(rel, interval, input);
    }

    #[cold]
    #[inline(never)]
    fn add_slow(&self, rel: u64, interval: u64, input: B::Input) {
        let slice = (rel / interval).min(MAX_SLICE);
        let idx = slice % self.slots.len() as u64;
        let stamp = slice + 1;
        let slot = &self.slots[idx as usize];
        let cur = slot.stamp.load(Ordering::Relaxed);
        if cur == stamp {
            slot.bucket.add(input);
        } else if cur < stamp || cur == BUSY {
            // An older slice (or a recycle that a panicking bucket left unfinished): reuse it.
            slot.stamp.store(BUSY, Ordering::Relaxed);
            slot.bucket.reset();
            slot.bucket.add(input);
            slot.stamp.store(stamp, Ordering::Release);
            if stamp > self.last.load(Ordering::Relaxed) {
                self.last.store(stamp, Ordering::Release);
            }
        } else {
            // The slot already holds a slice at least a whole window newer: this add's slice
            // has left the window, and any reduce would skip it. Nothing to record.
            return;
        }
        self.cur_start.store(slice * interval, Ordering::Relaxed);
        self.cur_idx.store(idx, Ordering::Relaxed);
    }

    /// Largest stamp (`slice + 1`) written here, 0 if none.
    #[inline]
    pub(crate) fn last_stamp(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// This stripe's copy of `slice`, if it holds one. Any thread. (Reads in the window walk
    /// slots with [`Stripe::read_slot`]; this is the by-slice form for tests.)
    #[cfg(test)]
    pub(crate) fn read(&self, slice: u64) -> Option<B::Snapshot> {
        self.read_slot((slice % self.slots.len() as u64) as usize, slice + 1)
    }

    /// The bucket in slot `idx` if its stamp is `stamp`, i.e. if it holds slice `stamp - 1`.
    #[inline]
    pub(crate) fn read_slot(&self, idx: usize, stamp: u64) -> Option<B::Snapshot> {
        self.slots.get(idx)?.read(stamp)
    }

    /// The slots, for reads that walk them in order (saving a division per bucket).
    #[inline]
    pub(crate) fn slots(&self) -> &[Slot<B>] {
        &self.slots
    }
}

impl<B: Bucket> Slot<B> {
    /// The bucket if its stamp is `stamp`, i.e. if it holds slice `stamp - 1`. Any thread.
    #[inline]
    pub(crate) fn read(&self, stamp: u64) -> Option<B::Snapshot> {
        if self.stamp.load(Ordering::Acquire) != stamp {
            return None;
        }
        let snapshot = self.bucket.read();
        // The bucket's loads are Acquire, so this load cannot move before them.
        (self.stamp.load(Ordering::Relaxed) == stamp).then_some(snapshot)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{SumCount, SumCountSnapshot};

    fn snap(sum: i64, count: u64) -> Option<SumCountSnapshot<i64>> {
        Some(SumCountSnapshot { sum, count })
    }

    #[test]
    fn recycles_slots_and_drops_expired_adds() {
        let s = Stripe::<SumCount<i64>>::new(3);
        s.add(0, 10, 1);
        s.add(9, 10, 2);
        assert_eq!(s.read(0), snap(3, 2));
        s.add(35, 10, 5); // slice 3 reuses slot 0
        assert_eq!(s.read(0), None);
        assert_eq!(s.read(3), snap(5, 1));
        assert_eq!(s.last_stamp(), 4);
        s.add(5, 10, 100); // slice 0 again: expired, dropped
        assert_eq!(s.read(3), snap(5, 1));
        s.add(12, 10, 7); // slice 1: older than the last add but still in its own slot
        assert_eq!(s.read(1), snap(7, 1));
        assert_eq!(s.last_stamp(), 4);
        s.add(36, 10, 1); // back on slice 3, hint moved by the slow path
        assert_eq!(s.read(3), snap(6, 2));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::{SumCount, SumCountSnapshot};
    use loom::sync::Arc;

    /// A reader racing a writer that recycles slot 0 from slice 0 to slice 2 must see either
    /// slice 0's whole bucket or nothing for slice 0, and for slice 2 either nothing or its
    /// whole bucket; never a mix of the two slices.
    #[test]
    fn loom_reader_never_sees_a_recycled_bucket_as_its_old_slice() {
        loom::model(|| {
            let stripe = Arc::new(Stripe::<SumCount<i64>>::new(2));
            stripe.add(0, 10, 5);
            stripe.add(0, 10, 6);
            let writer = {
                let stripe = stripe.clone();
                loom::thread::spawn(move || stripe.add(20, 10, 7))
            };
            let old = stripe.read(0);
            let new = stripe.read(2);
            writer.join().unwrap();
            assert!(
                matches!(old, None | Some(SumCountSnapshot { sum: 11, count: 2 })),
                "{old:?}"
            );
            assert!(
                matches!(new, None | Some(SumCountSnapshot { sum: 7, count: 1 })),
                "{new:?}"
            );
            assert_eq!(stripe.read(2), Some(SumCountSnapshot { sum: 7, count: 1 }));
        });
    }

    /// `last` is published after the slot it names: a reader that sees the new `last` finds
    /// the slice's data.
    #[test]
    fn loom_last_stamp_is_published_after_its_slot() {
        loom::model(|| {
            let stripe = Arc::new(Stripe::<SumCount<i64>>::new(2));
            let writer = {
                let stripe = stripe.clone();
                loom::thread::spawn(move || stripe.add(15, 10, 3))
            };
            if stripe.last_stamp() == 2 {
                assert_eq!(stripe.read(1), Some(SumCountSnapshot { sum: 3, count: 1 }));
            }
            writer.join().unwrap();
        });
    }
}
