//! [`PeriodState`] and [`PeriodDecision`]: what a period limiter answers.

use std::time::Duration;

/// go-zero's period-limit states (`Unknown` is not needed: errors are handled by the
/// [`FailurePolicy`](crate::FailurePolicy)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodState {
    /// Allowed, and the quota has room left.
    Allowed,
    /// Allowed, and this request used the last unit of the quota.
    HitQuota,
    /// Refused: the quota of this window is used up.
    OverQuota,
}

impl PeriodState {
    /// Whether the request may go ahead (`Allowed` or `HitQuota`).
    pub fn is_allowed(self) -> bool {
        !matches!(self, PeriodState::OverQuota)
    }
}

/// A period limiter's answer: the state, and when the key's window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodDecision {
    /// Allowed, hit the quota, or over it.
    pub state: PeriodState,
    /// Time left in the key's current window (the `Retry-After` of a refusal). Zero when
    /// not known (a fail-open decision).
    pub resets_in: Duration,
}

impl PeriodDecision {
    /// Whether the request may go ahead.
    pub fn is_allowed(&self) -> bool {
        self.state.is_allowed()
    }
}
