//! The last few failure reasons, for operators (go-zero's error window).

use std::collections::VecDeque;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// How many reasons a breaker keeps (go-zero keeps 5).
pub(crate) const KEPT: usize = 5;

/// One recorded failure: when, and what the call said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReason {
    /// Wall-clock time of the failure.
    pub at: SystemTime,
    /// The error text, or the reason given to [`Permit::failure_with`](crate::Permit::failure_with).
    pub reason: String,
}

impl fmt::Display for FailureReason {
    /// `HH:MM:SS reason`, the time in UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        write!(f, "{h:02}:{m:02}:{s:02} {}", self.reason)
    }
}

/// A ring of the last [`KEPT`] reasons. Touched only when a failure carries a reason.
#[derive(Debug, Default)]
pub(crate) struct Reasons(Mutex<VecDeque<FailureReason>>);

impl Reasons {
    pub(crate) fn push(&self, reason: String) {
        let entry = FailureReason {
            at: SystemTime::now(),
            reason,
        };
        let mut ring = self.0.lock();
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// Newest first.
    pub(crate) fn recent(&self) -> Vec<FailureReason> {
        self.0.lock().iter().rev().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.0.lock().clear();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_five_newest_first() {
        for n in [0, 1, 2, 5, 6, 1000] {
            let r = Reasons::default();
            for i in 0..n {
                r.push(format!("e{i}"));
            }
            let got: Vec<String> = r.recent().into_iter().map(|f| f.reason).collect();
            let want: Vec<String> = (0..n).rev().take(KEPT).map(|i| format!("e{i}")).collect();
            assert_eq!(got, want, "n = {n}");
        }
    }

    #[test]
    fn displays_time_then_reason() {
        let f = FailureReason {
            at: UNIX_EPOCH + std::time::Duration::from_secs(3600 + 2 * 60 + 3),
            reason: "boom".into(),
        };
        assert_eq!(f.to_string(), "01:02:03 boom");
    }
}
