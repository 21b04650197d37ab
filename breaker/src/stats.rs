//! What the breaker counts per bucket, and go-zero's `history()` over those buckets.

use keel_rollingwindow::{Bucket, Field};

/// One recorded outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    /// The breaker itself rejected the request.
    Drop,
}

/// The breaker's bucket: go-zero's `{Sum, Success, Failure, Drop}`, with `Sum` derived.
#[derive(Default)]
pub(crate) struct Outcomes {
    success: Field<u64>,
    failure: Field<u64>,
    drop: Field<u64>,
}

/// The contents of one bucket (or of several, merged).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) success: u64,
    pub(crate) failure: u64,
    pub(crate) drop: u64,
}

impl Bucket for Outcomes {
    type Input = Outcome;
    type Snapshot = Counts;

    #[inline]
    fn add(&self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.success.add(1),
            Outcome::Failure => self.failure.add(1),
            Outcome::Drop => self.drop.add(1),
        }
    }

    fn reset(&self) {
        self.success.reset();
        self.failure.reset();
        self.drop.reset();
    }

    #[inline]
    fn read(&self) -> Counts {
        Counts {
            success: self.success.get(),
            failure: self.failure.get(),
            drop: self.drop.get(),
        }
    }

    #[inline]
    fn merge(total: &mut Counts, part: &Counts) {
        total.success += part.success;
        total.failure += part.failure;
        total.drop += part.drop;
    }
}

/// go-zero's `history()`: totals over the window and the two trailing runs.
///
/// `working_buckets` is the length of the trailing run of buckets with successes and no
/// failures; `failing_buckets` of buckets with failures and no successes. Empty and
/// drop-only buckets neither extend nor break a run.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct History {
    /// Successful outcomes in the window.
    pub accepts: u64,
    /// Successes, failures and the breaker's own rejections in the window.
    pub total: u64,
    /// Trailing run of buckets that only saw successes (drops aside).
    pub working_buckets: u32,
    /// Trailing run of buckets that only saw failures (drops aside).
    pub failing_buckets: u32,
}

impl History {
    /// This history extended by one newer bucket (go-zero's per-bucket step).
    #[inline]
    pub(crate) fn then(self, b: &Counts) -> History {
        History {
            accepts: self.accepts + b.success,
            total: self.total + b.success + b.failure + b.drop,
            working_buckets: if b.failure > 0 {
                0
            } else {
                self.working_buckets + u32::from(b.success > 0)
            },
            failing_buckets: if b.success > 0 {
                0
            } else {
                self.failing_buckets + u32::from(b.failure > 0)
            },
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn counts(success: u64, failure: u64, drop: u64) -> Counts {
        Counts {
            success,
            failure,
            drop,
        }
    }

    #[test]
    fn runs_are_trailing_and_ignore_empty_and_drop_only_buckets() {
        let h = [
            counts(1, 0, 0),
            counts(0, 2, 0),
            counts(0, 0, 0),
            counts(0, 0, 3),
            counts(0, 1, 0),
        ]
        .iter()
        .fold(History::default(), History::then);
        assert_eq!(
            h,
            History {
                accepts: 1,
                total: 7,
                working_buckets: 0,
                failing_buckets: 2
            }
        );
        let h = h
            .then(&counts(5, 0, 0))
            .then(&counts(0, 0, 0))
            .then(&counts(1, 0, 1));
        assert_eq!((h.working_buckets, h.failing_buckets), (2, 0));
        let mixed = h.then(&counts(1, 1, 0));
        assert_eq!((mixed.working_buckets, mixed.failing_buckets), (0, 0));
    }
}
