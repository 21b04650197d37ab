//! Striped request counters: how many requests are in flight, admitted and dropped.
//!
//! go-zero keeps one atomic `flying` counter that every admission and completion updates:
//! with two threads that cache line bounces between cores on every request (8 ns per
//! `fetch_add` instead of 2 here). Here each thread updates its own cache-padded stripe and
//! a reader adds the stripes up. Stripes count monotonically (admitted, completed) instead
//! of holding a signed balance, which also gives the per-minute statistics for free.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct Stripe {
    admitted: AtomicU64,
    completed: AtomicU64,
    dropped: AtomicU64,
}

/// Totals over every stripe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) admitted: u64,
    pub(crate) completed: u64,
    pub(crate) dropped: u64,
}

#[derive(Debug)]
pub(crate) struct Inflight {
    stripes: Box<[CachePadded<Stripe>]>,
    mask: usize,
}

impl Inflight {
    /// `stripes` is rounded up to a power of two.
    pub(crate) fn new(stripes: usize) -> Inflight {
        let n = stripes.max(1).next_power_of_two();
        Inflight {
            stripes: (0..n)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
            mask: n - 1,
        }
    }

    #[inline]
    fn stripe(&self, index: usize) -> &Stripe {
        &self.stripes[index & self.mask]
    }

    /// A request was admitted by a thread using stripe `index`.
    #[inline]
    pub(crate) fn admit(&self, index: usize) {
        self.stripe(index).admitted.fetch_add(1, Ordering::Relaxed);
    }

    /// A request finished (any outcome) on a thread using stripe `index`, which need not be
    /// the stripe that admitted it.
    #[inline]
    pub(crate) fn complete(&self, index: usize) {
        // Release: a reader that sees this completion also sees the admission it ends (the
        // admission happened before it), so `in_flight` never counts a completion without
        // its admission.
        self.stripe(index).completed.fetch_add(1, Ordering::Release);
    }

    /// A request was refused.
    #[inline]
    pub(crate) fn drop_one(&self, index: usize) {
        self.stripe(index).dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests admitted and not yet finished. Never negative: completions are read first
    /// (with Acquire), so every admission they end is visible to the admissions read after.
    #[inline]
    pub(crate) fn in_flight(&self) -> u64 {
        let (admitted, completed) = self.sums();
        admitted.saturating_sub(completed)
    }

    /// (admitted, completed) summed over the stripes, completions first.
    #[inline]
    fn sums(&self) -> (u64, u64) {
        let completed: u64 = self
            .stripes
            .iter()
            .map(|s| s.completed.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add);
        let admitted: u64 = self
            .stripes
            .iter()
            .map(|s| s.admitted.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add);
        (admitted, completed)
    }

    /// Every counter summed (not one consistent instant: for statistics).
    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.stripes.iter() {
            t.completed = t
                .completed
                .wrapping_add(s.completed.load(Ordering::Acquire));
        }
        for s in self.stripes.iter() {
            t.admitted = t.admitted.wrapping_add(s.admitted.load(Ordering::Relaxed));
            t.dropped = t.dropped.wrapping_add(s.dropped.load(Ordering::Relaxed));
        }
        t
    }

    #[cfg(test)]
    pub(crate) fn stripes(&self) -> usize {
        self.stripes.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn completions_on_other_stripes_balance_admissions() {
        let f = Inflight::new(3);
        assert_eq!(f.stripes(), 4);
        f.admit(0);
        f.admit(1);
        f.admit(9); // wraps onto stripe 1
        assert_eq!(f.in_flight(), 3);
        f.complete(2);
        f.complete(3);
        assert_eq!(f.in_flight(), 1);
        f.drop_one(0);
        f.complete(0);
        assert_eq!(f.in_flight(), 0);
        assert_eq!(
            f.totals(),
            Totals {
                admitted: 3,
                completed: 3,
                dropped: 1
            }
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::mpsc::channel;
    use loom::thread;

    /// A request admitted on one thread and completed on another (a task that migrated):
    /// a concurrent reader never sees a negative balance, and the end state is 0.
    #[test]
    fn loom_in_flight_is_never_negative() {
        loom::model(|| {
            let f = Arc::new(Inflight::new(2));
            let (tx, rx) = channel();
            let admitter = {
                let f = f.clone();
                thread::spawn(move || {
                    f.admit(0);
                    tx.send(()).unwrap();
                })
            };
            let completer = {
                let f = f.clone();
                thread::spawn(move || {
                    rx.recv().unwrap();
                    f.complete(1);
                })
            };
            // The raw balance, before `in_flight` clamps it: a completion seen without
            // its admission would make it negative.
            let (admitted, completed) = f.sums();
            assert!(
                completed <= admitted,
                "{completed} completions, {admitted} admissions"
            );
            assert!(admitted <= 1);
            admitter.join().unwrap();
            completer.join().unwrap();
            assert_eq!(f.in_flight(), 0);
        });
    }
}
