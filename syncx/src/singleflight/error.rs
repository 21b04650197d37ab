//! [`FlightError`]: why a coalesced call has no value.

use std::fmt;
use std::sync::Arc;

/// Why a [`SingleFlight`](super::SingleFlight) call returned no value.
///
/// Every caller of one flight sees the same error: the leader's own error is shared through
/// an [`Arc`], so `E` need not be `Clone`. Match on the variants, or use
/// [`source`](std::error::Error::source) to reach the closure's error.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlightError<E> {
    /// The closure returned this error (to the leader and to every follower of that flight).
    Failed(Arc<E>),
    /// The closure panicked. The leader's caller gets the panic itself; its followers get
    /// this. The key is free again, so a later call runs the closure anew.
    LeaderPanicked,
}

impl<E> FlightError<E> {
    /// The closure's error, if it returned one.
    #[must_use]
    pub fn failed(&self) -> Option<&E> {
        match self {
            Self::Failed(error) => Some(error),
            Self::LeaderPanicked => None,
        }
    }

    /// True if the leader panicked.
    #[must_use]
    pub fn is_leader_panicked(&self) -> bool {
        matches!(self, Self::LeaderPanicked)
    }
}

// By hand: a derive would require `E: Clone`, but the error is shared through an `Arc`.
impl<E> Clone for FlightError<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Failed(error) => Self::Failed(Arc::clone(error)),
            Self::LeaderPanicked => Self::LeaderPanicked,
        }
    }
}

// The inner error is the `source`, not part of this message (so reporters print it once).
impl<E> fmt::Display for FlightError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(_) => f.write_str("the coalesced call failed"),
            Self::LeaderPanicked => f.write_str("the coalesced call panicked"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for FlightError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed(error) => Some(&**error),
            Self::LeaderPanicked => None,
        }
    }
}
