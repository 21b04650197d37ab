//! [`SeqCell`]: a few words published together, read without a lock; and the two caches the
//! decision is built on.
//!
//! go-zero folds all 40 buckets on every request. The finished buckets cannot change any
//! more (apart from an add racing a bucket boundary), so the breaker folds them once when a
//! new bucket starts and caches the result ([`finished`]); each decision combines it with the
//! live bucket, which is exactly go-zero's history. With several threads calling, the live
//! bucket itself is cached for a moment too ([`live`]), so that a decision does not pull in
//! the cache lines the other threads are writing.
//!
//! # Publication protocol (a seqlock)
//!
//! One writer at a time (the `writer` lock, only ever `try_lock`ed on the decision path).
//! Writer: `seq` to odd (Relaxed), the words with `Release` stores, `seq` to the next even
//! value (Release). Reader: `seq` (Acquire), the words (Acquire), `seq` again; the read
//! counts only if both `seq` loads are equal and even. A reader that saw any new word
//! synchronises with its Release store, which follows the odd store, so its second `seq` load
//! differs: no torn read is accepted. Checked by the loom test below.

use parking_lot::Mutex;

use crate::History;
use crate::stats::Counts;
use crate::sync::{AtomicU64, Ordering};

/// `N` words, published and read as a unit.
#[derive(Debug)]
pub(crate) struct SeqCell<const N: usize> {
    seq: AtomicU64,
    words: [AtomicU64; N],
    writer: Mutex<()>,
}

impl<const N: usize> SeqCell<N> {
    pub(crate) fn new(words: [u64; N]) -> Self {
        SeqCell {
            seq: AtomicU64::new(0),
            words: words.map(AtomicU64::new),
            writer: Mutex::new(()),
        }
    }

    /// The words, unless a write is under way.
    #[inline]
    pub(crate) fn get(&self) -> Option<[u64; N]> {
        let seq = self.seq.load(Ordering::Acquire);
        let words = std::array::from_fn(|i| self.words[i].load(Ordering::Acquire));
        (seq & 1 == 0 && self.seq.load(Ordering::Relaxed) == seq).then_some(words)
    }

    /// Publishes `words`, unless another thread is publishing right now (then its value,
    /// computed just as recently, stands).
    #[inline]
    pub(crate) fn try_publish(&self, words: [u64; N]) {
        if let Some(_writer) = self.writer.try_lock() {
            self.write(words);
        }
    }

    /// Publishes `words`, waiting for a concurrent writer (operator paths only).
    pub(crate) fn publish(&self, words: [u64; N]) {
        let _writer = self.writer.lock();
        self.write(words);
    }

    fn write(&self, words: [u64; N]) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        for (cell, w) in self.words.iter().zip(words) {
            cell.store(w, Ordering::Release);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

/// What a decision needs from the finished buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    /// Number of the current bucket's slice.
    pub(crate) slice: u64,
    /// History of the buckets before it.
    pub(crate) history: History,
}

/// The history of the finished buckets, valid for clock readings in `[from, until)`.
pub(crate) mod finished {
    use super::*;

    /// `[from, until, slice, accepts, total, working << 32 | failing]`; nothing is cached
    /// while `until` is 0.
    pub(crate) type Cell = SeqCell<6>;

    pub(crate) fn empty() -> Cell {
        SeqCell::new([0; 6])
    }

    #[inline]
    pub(crate) fn get(cell: &Cell, now: u64) -> Option<Finished> {
        let [from, until, slice, accepts, total, runs] = cell.get()?;
        (from <= now && now < until).then_some(Finished {
            slice,
            history: History {
                accepts,
                total,
                working_buckets: (runs >> 32) as u32,
                failing_buckets: runs as u32,
            },
        })
    }

    pub(crate) fn words(from: u64, until: u64, f: Finished) -> [u64; 6] {
        let h = f.history;
        let runs = u64::from(h.working_buckets) << 32 | u64::from(h.failing_buckets);
        [from, until, f.slice, h.accepts, h.total, runs]
    }
}

/// The live bucket merged across threads, as read at some instant: reused by decisions in
/// the same slice until `until`.
pub(crate) mod live {
    use super::*;

    /// `[slice + 1, until, success, failure, drop]`; `slice + 1` so that 0 means "nothing".
    pub(crate) type Cell = SeqCell<5>;

    pub(crate) fn empty() -> Cell {
        SeqCell::new([0; 5])
    }

    #[inline]
    pub(crate) fn get(cell: &Cell, slice: u64, now: u64) -> Option<Counts> {
        let [tag, until, success, failure, drop] = cell.get()?;
        (tag == slice + 1 && now < until).then_some(Counts {
            success,
            failure,
            drop,
        })
    }

    pub(crate) fn words(slice: u64, until: u64, c: Counts) -> [u64; 5] {
        [slice + 1, until, c.success, c.failure, c.drop]
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A reader racing a writer sees the old words, the new words, or nothing; never a mix.
    #[test]
    fn loom_reader_never_accepts_torn_words() {
        loom::model(|| {
            let cell = Arc::new(SeqCell::new([1, 1, 1]));
            let writer = {
                let cell = cell.clone();
                loom::thread::spawn(move || cell.try_publish([2, 2, 2]))
            };
            let seen = cell.get();
            writer.join().unwrap();
            assert!(
                matches!(seen, None | Some([1, 1, 1]) | Some([2, 2, 2])),
                "{seen:?}"
            );
            assert_eq!(cell.get(), Some([2, 2, 2]));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn finished_history_is_served_only_inside_its_bucket() {
        let cell = finished::empty();
        assert_eq!(finished::get(&cell, 0), None);
        let f = Finished {
            slice: 3,
            history: History {
                accepts: 1,
                total: 2,
                working_buckets: 3,
                failing_buckets: 4,
            },
        };
        cell.try_publish(finished::words(300, 400, f));
        assert_eq!(finished::get(&cell, 299), None);
        assert_eq!(finished::get(&cell, 300), Some(f));
        assert_eq!(finished::get(&cell, 399), Some(f));
        assert_eq!(finished::get(&cell, 400), None);
        cell.publish([0; 6]);
        assert_eq!(finished::get(&cell, 350), None);
    }

    #[test]
    fn live_counts_are_served_for_their_slice_until_they_expire() {
        let cell = live::empty();
        assert_eq!(
            live::get(&cell, 0, 0),
            None,
            "slice 0 is not mistaken for empty"
        );
        let c = Counts {
            success: 1,
            failure: 2,
            drop: 3,
        };
        cell.try_publish(live::words(7, 1_000, c));
        assert_eq!(live::get(&cell, 7, 999), Some(c));
        assert_eq!(live::get(&cell, 7, 1_000), None);
        assert_eq!(live::get(&cell, 8, 999), None);
    }
}
