//! The history of the finished buckets, computed once per bucket and shared by every
//! decision in it: what makes a decision O(1).
//!
//! go-zero folds all 40 buckets on every request. The finished buckets cannot change any
//! more (apart from an add racing a bucket boundary), so the breaker folds them once when a
//! new bucket starts, publishes the result here, and each decision combines it with the live
//! bucket: `cached.then(current)` is exactly go-zero's `history()`.
//!
//! # Publication protocol (a seqlock)
//!
//! One writer at a time (the `refresh` lock). Writer: `seq` to odd (Relaxed), the fields
//! with `Release` stores, `seq` to the next even value (Release). Reader: `seq` (Acquire),
//! the fields (Acquire), `seq` again; the read counts only if both `seq` loads are equal and
//! even. A reader that saw any new field synchronises with its Release store, which follows
//! the odd store, so its second `seq` load differs: no torn read is accepted. Checked by the
//! loom test below.

use parking_lot::Mutex;

use crate::History;
use crate::sync::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct Cache {
    seq: AtomicU64,
    /// The cached history is valid for clock readings in `[from, until)`: one bucket.
    from: AtomicU64,
    until: AtomicU64,
    slice: AtomicU64,
    accepts: AtomicU64,
    total: AtomicU64,
    /// `working_buckets << 32 | failing_buckets`.
    runs: AtomicU64,
    writer: Mutex<()>,
}

/// What a decision needs from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    /// Number of the current bucket's slice.
    pub(crate) slice: u64,
    /// History of the buckets before it.
    pub(crate) history: History,
}

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache {
            seq: AtomicU64::new(0),
            from: AtomicU64::new(0),
            until: AtomicU64::new(0), // empty range: nothing cached yet
            slice: AtomicU64::new(0),
            accepts: AtomicU64::new(0),
            total: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            writer: Mutex::new(()),
        }
    }

    /// The cached history if it covers `now`.
    #[inline]
    pub(crate) fn get(&self, now: u64) -> Option<Finished> {
        let seq = self.seq.load(Ordering::Acquire);
        let from = self.from.load(Ordering::Acquire);
        let until = self.until.load(Ordering::Acquire);
        let slice = self.slice.load(Ordering::Acquire);
        let accepts = self.accepts.load(Ordering::Acquire);
        let total = self.total.load(Ordering::Acquire);
        let runs = self.runs.load(Ordering::Acquire);
        if seq & 1 == 1 || self.seq.load(Ordering::Relaxed) != seq || now < from || now >= until {
            return None;
        }
        Some(Finished {
            slice,
            history: History {
                accepts,
                total,
                working_buckets: (runs >> 32) as u32,
                failing_buckets: runs as u32,
            },
        })
    }

    /// Publishes `finished` for clock readings in `[from, until)`, unless another thread is
    /// publishing right now (then its value, for the same bucket, wins).
    pub(crate) fn publish(&self, from: u64, until: u64, finished: Finished) {
        if let Some(_writer) = self.writer.try_lock() {
            self.write(from, until, finished);
        }
    }

    /// Drops the cached value (after the window was cleared).
    pub(crate) fn invalidate(&self) {
        let _writer = self.writer.lock();
        self.write(
            0,
            0,
            Finished {
                slice: 0,
                history: History::default(),
            },
        );
    }

    fn write(&self, from: u64, until: u64, f: Finished) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        self.from.store(from, Ordering::Release);
        self.until.store(until, Ordering::Release);
        self.slice.store(f.slice, Ordering::Release);
        self.accepts.store(f.history.accepts, Ordering::Release);
        self.total.store(f.history.total, Ordering::Release);
        let runs =
            u64::from(f.history.working_buckets) << 32 | u64::from(f.history.failing_buckets);
        self.runs.store(runs, Ordering::Release);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    fn finished(n: u64) -> Finished {
        Finished {
            slice: n,
            history: History {
                accepts: n,
                total: 2 * n,
                working_buckets: n as u32,
                failing_buckets: 3 * n as u32,
            },
        }
    }

    /// A reader racing a writer sees the old value, the new value, or nothing; never a mix.
    #[test]
    fn loom_reader_never_accepts_a_torn_history() {
        loom::model(|| {
            let cache = Arc::new(Cache::new());
            cache.publish(0, 100, finished(1));
            let writer = {
                let cache = cache.clone();
                loom::thread::spawn(move || cache.publish(0, 100, finished(2)))
            };
            let seen = cache.get(50);
            writer.join().unwrap();
            assert!(
                matches!(seen, None) || seen == Some(finished(1)) || seen == Some(finished(2)),
                "{seen:?}"
            );
            assert_eq!(cache.get(50), Some(finished(2)));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_served_only_inside_its_bucket() {
        let cache = Cache::new();
        assert_eq!(cache.get(0), None);
        let f = Finished {
            slice: 3,
            history: History {
                accepts: 1,
                total: 2,
                working_buckets: 3,
                failing_buckets: 4,
            },
        };
        cache.publish(300, 400, f);
        assert_eq!(cache.get(299), None);
        assert_eq!(cache.get(300), Some(f));
        assert_eq!(cache.get(399), Some(f));
        assert_eq!(cache.get(400), None);
        cache.invalidate();
        assert_eq!(cache.get(350), None);
    }
}
