//! Striped request counters: how many requests are in flight, admitted and dropped.
//! They are also the request counters of the `metrics` feature: published from their
//! totals, never by a recorder call per request.
//!
//! go-zero keeps one atomic `flying` counter that every admission and completion updates:
//! with two threads that cache line bounces between cores on every request (8 ns per
//! `fetch_add` instead of 2 here). Here each thread updates its own cache-padded stripe and
//! a reader adds the stripes up. Stripes count monotonically (admitted, completed) instead
//! of holding a signed balance, which also gives the per-minute statistics for free.

use std::sync::Arc;

use crossbeam_utils::CachePadded;
use keel_rollingwindow::PerThreadCounters;

use crate::sync::{AtomicU64, Ordering};

/// A thread's counts of the requests it admitted and finished.
#[derive(Debug, Default)]
struct Stripe {
    admitted: AtomicU64,
    completed: AtomicU64,
}

/// A stripe's count of the shadow mode's admissions that would have been refused (also
/// counted in `admitted`), on a line of its own.
#[derive(Debug, Default)]
struct Refusals {
    would_drop: AtomicU64,
}

/// Totals over every stripe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) admitted: u64,
    pub(crate) completed: u64,
    pub(crate) dropped: u64,
    /// Shadow mode: admissions that would have been refused, a part of `admitted`.
    pub(crate) would_drop: u64,
}

/// The stripes. A clone shares them (the `metrics` feature's publisher holds one, so that
/// it can outlive the shedder's state by a periodic run without keeping that alive).
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    /// An `Arc` rather than a `Box`: a slice behind either is one pointer away.
    stripes: Arc<[CachePadded<Stripe>]>,
    /// One per stripe, same indexes.
    refusals: Arc<[CachePadded<Refusals>]>,
    /// Refused requests, per thread with no read-modify-write: under overload the refusal
    /// is what runs millions of times, and a locked add was most of its cost. Each thread
    /// writes its own line while every refusal reads the others' `completed` (see
    /// `last_refusal`), which must not make those lines bounce between cores.
    dropped: Arc<PerThreadCounters<1>>,
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
            refusals: (0..n)
                .map(|_| CachePadded::new(Refusals::default()))
                .collect(),
            dropped: Arc::new(PerThreadCounters::new()),
            mask: n - 1,
        }
    }

    #[inline]
    fn stripe(&self, index: usize) -> &Stripe {
        &self.stripes[index & self.mask]
    }

    #[inline]
    fn refusals(&self, index: usize) -> &Refusals {
        &self.refusals[index & self.mask]
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

    /// A request was admitted in shadow mode although it would have been refused.
    #[inline]
    pub(crate) fn admit_shadow(&self, index: usize) {
        self.refusals(index)
            .would_drop
            .fetch_add(1, Ordering::Relaxed);
        // Release, after `would_drop`: a reader that sees this admission (Acquire, see
        // `totals`) sees its `would_drop` too, so `admitted - would_drop` never counts a
        // shadow drop as a plain admission (a published counter could not take it back).
        self.stripe(index).admitted.fetch_add(1, Ordering::Release);
    }

    /// A request was refused (counted on the calling thread's own line).
    #[inline]
    pub(crate) fn drop_one(&self) {
        self.dropped.add(0);
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
        let completed = self.completed();
        (self.admitted(), completed)
    }

    /// Requests finished so far (Acquire: what a request did before it counted as
    /// finished is seen after this read).
    #[inline]
    pub(crate) fn completed(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.completed.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add)
    }

    /// Requests admitted so far.
    #[inline]
    pub(crate) fn admitted(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.admitted.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Every counter summed (not one consistent instant: for statistics). Each stripe's
    /// `would_drop` is read after its `admitted` (with Acquire): every shadow admission
    /// counted in `admitted` is counted in `would_drop` too, so `admitted - would_drop`
    /// may lag the plain admissions but never exceeds them.
    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.stripes.iter() {
            t.completed = t
                .completed
                .wrapping_add(s.completed.load(Ordering::Acquire));
        }
        for (s, r) in self.stripes.iter().zip(self.refusals.iter()) {
            t.admitted = t.admitted.wrapping_add(s.admitted.load(Ordering::Acquire));
            t.would_drop = t
                .would_drop
                .wrapping_add(r.would_drop.load(Ordering::Relaxed));
        }
        t.dropped = self.dropped.sum(0);
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
        f.drop_one();
        f.complete(0);
        assert_eq!(f.in_flight(), 0);
        f.admit_shadow(5);
        assert_eq!(f.in_flight(), 1);
        f.clone().complete(1); // a clone shares the stripes
        assert_eq!(f.in_flight(), 0);
        assert_eq!(
            f.totals(),
            Totals {
                admitted: 4,
                completed: 4,
                dropped: 1,
                would_drop: 1,
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

    /// A shadow admission read concurrently: the totals never show its `admitted` without
    /// its `would_drop`, so `admitted - would_drop` (the `metrics` feature's plain
    /// admissions, which a published counter cannot take back) never exceeds the plain
    /// admissions made.
    #[test]
    fn loom_a_shadow_admission_is_never_read_as_a_plain_one() {
        loom::model(|| {
            let f = Arc::new(Inflight::new(2));
            let shadow = {
                let f = f.clone();
                thread::spawn(move || {
                    f.admit_shadow(0);
                    f.admit(0);
                })
            };
            // Either admission read (the plain one follows the shadow one on the stripe)
            // means the shadow one's `would_drop` is read too: at most the 1 plain
            // admission counts as plain.
            let t = f.totals();
            assert!(t.admitted == 0 || t.would_drop == 1, "{t:?}");
            assert!(t.admitted.saturating_sub(t.would_drop) <= 1, "{t:?}");
            shadow.join().unwrap();
            let t = f.totals();
            assert_eq!((t.admitted, t.would_drop), (2, 1));
        });
    }
}
