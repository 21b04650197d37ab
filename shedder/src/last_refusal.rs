//! The last refusal, reused by the requests that follow it while nothing it was decided
//! on has changed.
//!
//! Under overload the refusal is what runs millions of times, and deciding one afresh
//! reads the in-flight stripes twice over, the per-bucket capacity and the average, and
//! does the float arithmetic of the limit. Yet within one coarse-clock tick, with the same
//! CPU reading and no request finished, a fresh decision is bound to refuse again:
//!
//! - the limit is the max flight of the *finished* buckets (a function of the time) times
//!   the overload factor of the CPU reading;
//! - the in-flight average moves only when a request finishes;
//! - the in-flight count falls only when a request finishes (admissions only raise it);
//! - whether the shedder is still hot depends on the time and on refusals, which only
//!   keep it hot.
//!
//! So the memo is keyed by the coarse time, the CPU reading and the number of finished
//! requests, and a hit is exact: it refuses only what a fresh decision would refuse. A
//! request finishes its statistics (window, average) *before* it counts as finished, and a
//! decision reads the finished count *before* the average, so a decision that counts a
//! finished request also saw what that request changed.
//!
//! The fields are written together under a sequence lock (writers skip publishing when
//! another one is writing; readers that race a writer decide afresh).

use crate::Overloaded;
use crate::sync::{AtomicU64, Ordering, fence};

/// The CPU reading of a decision made without a signal.
const NO_CPU: u64 = u64::MAX;

/// What a refusal was decided on, and its figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key {
    /// The coarse-clock time of the decision (nanos).
    pub(crate) now: u64,
    pub(crate) cpu: Option<u32>,
    /// Requests finished when the decision read the in-flight count.
    pub(crate) finished: u64,
}

#[derive(Debug, Default)]
pub(crate) struct LastRefusal {
    /// Even: the fields are consistent; odd: a writer is storing them.
    sequence: AtomicU64,
    /// `Key::now + 1`; 0 before the first refusal.
    at: AtomicU64,
    cpu: AtomicU64,
    finished: AtomicU64,
    in_flight: AtomicU64,
    limit: AtomicU64,
}

#[inline]
fn encode_cpu(cpu: Option<u32>) -> u64 {
    cpu.map_or(NO_CPU, u64::from)
}

impl LastRefusal {
    /// The memoised refusal if it was decided at `now` with the CPU reading `cpu`, and
    /// `finished()` (read only if those match) still counts the requests it counted.
    #[inline]
    pub(crate) fn reuse(
        &self,
        now: u64,
        cpu: Option<u32>,
        finished: impl FnOnce() -> u64,
    ) -> Option<Overloaded> {
        let sequence = self.sequence.load(Ordering::Acquire);
        if self.at.load(Ordering::Relaxed) != now.wrapping_add(1)
            || self.cpu.load(Ordering::Relaxed) != encode_cpu(cpu)
            || sequence & 1 == 1
        {
            return None;
        }
        let counted = self.finished.load(Ordering::Relaxed);
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let limit = f64::from_bits(self.limit.load(Ordering::Relaxed));
        // The fields above were read before the sequence is read again.
        fence(Ordering::Acquire);
        if self.sequence.load(Ordering::Relaxed) != sequence || finished() != counted {
            return None;
        }
        Some(Overloaded {
            cpu,
            in_flight,
            limit,
        })
    }

    /// Memoises `refusal`, decided on `key`, unless another refusal is being stored.
    pub(crate) fn remember(&self, key: Key, refusal: &Overloaded) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        if sequence & 1 == 1
            || self
                .sequence
                .compare_exchange(
                    sequence,
                    sequence.wrapping_add(1),
                    // Acquire: the stores below stay after the sequence turned odd.
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        // The stores below are not seen before the odd sequence (with the Acquire CAS,
        // a reader that sees any of them sees the sequence changed when it checks again).
        fence(Ordering::Release);
        self.at.store(key.now.wrapping_add(1), Ordering::Relaxed);
        self.cpu.store(encode_cpu(key.cpu), Ordering::Relaxed);
        self.finished.store(key.finished, Ordering::Relaxed);
        self.in_flight.store(refusal.in_flight, Ordering::Relaxed);
        self.limit.store(refusal.limit.to_bits(), Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// Forgets the memo (a test hook changed the state behind the decision).
    #[cfg(test)]
    pub(crate) fn forget(&self) {
        self.at.store(0, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn refusal(in_flight: u64, limit: f64) -> Overloaded {
        Overloaded {
            cpu: Some(950),
            in_flight,
            limit,
        }
    }

    const KEY: Key = Key {
        now: 7,
        cpu: Some(950),
        finished: 3,
    };

    #[test]
    fn nothing_is_reused_before_a_refusal() {
        let memo = LastRefusal::default();
        assert_eq!(memo.reuse(0, None, || 0), None);
        assert_eq!(memo.reuse(u64::MAX, None, || 0), None);
    }

    #[test]
    fn a_refusal_is_reused_only_on_its_key() {
        let memo = LastRefusal::default();
        memo.remember(KEY, &refusal(12, 4.5));
        assert_eq!(memo.reuse(7, Some(950), || 3), Some(refusal(12, 4.5)));
        assert_eq!(memo.reuse(8, Some(950), || 3), None, "a later tick");
        assert_eq!(memo.reuse(7, Some(949), || 3), None, "another CPU reading");
        assert_eq!(memo.reuse(7, None, || 3), None, "no CPU signal");
        assert_eq!(memo.reuse(7, Some(950), || 4), None, "a request finished");
        let none = Key { cpu: None, ..KEY };
        memo.remember(none, &refusal(12, 4.5));
        assert!(memo.reuse(7, None, || 3).is_some());
        assert_eq!(memo.reuse(7, Some(950), || 3), None);
    }

    #[test]
    fn the_finished_count_is_read_only_when_the_rest_matches() {
        let memo = LastRefusal::default();
        memo.remember(KEY, &refusal(12, 4.5));
        assert_eq!(memo.reuse(8, Some(950), || unreachable!()), None);
        assert_eq!(memo.reuse(7, Some(1), || unreachable!()), None);
    }

    #[test]
    fn a_writer_in_progress_makes_readers_decide_afresh() {
        let memo = LastRefusal::default();
        memo.remember(KEY, &refusal(12, 4.5));
        memo.sequence.fetch_add(1, Ordering::Relaxed);
        assert_eq!(memo.reuse(7, Some(950), || 3), None);
        // And a second writer does not publish over it.
        memo.remember(Key { now: 9, ..KEY }, &refusal(1, 0.5));
        assert_eq!(memo.at.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn forget_drops_the_memo() {
        let memo = LastRefusal::default();
        memo.remember(KEY, &refusal(12, 4.5));
        memo.forget();
        assert_eq!(memo.reuse(7, Some(950), || 3), None);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// A reader racing a writer either sees no memo or one whole memo, never a mix of
    /// two refusals' fields.
    #[test]
    fn loom_a_reader_never_mixes_two_refusals() {
        loom::model(|| {
            let memo = loom::sync::Arc::new(LastRefusal::default());
            let first = Key {
                now: 1,
                cpu: Some(950),
                finished: 1,
            };
            memo.remember(first, &refusal_of(1));
            let writer = {
                let memo = memo.clone();
                loom::thread::spawn(move || memo.remember(first, &refusal_of(2)))
            };
            if let Some(seen) = memo.reuse(1, Some(950), || 1) {
                assert!(seen == refusal_of(1) || seen == refusal_of(2), "{seen:?}");
            }
            writer.join().unwrap();
            assert_eq!(memo.reuse(1, Some(950), || 1), Some(refusal_of(2)));
        });
    }

    fn refusal_of(n: u64) -> Overloaded {
        Overloaded {
            cpu: Some(950),
            in_flight: 10 * n,
            limit: n as f64,
        }
    }
}
