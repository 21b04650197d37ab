//! [`MapReduceError`].

use std::error::Error;
use std::fmt;

/// Why a map-reduce returned no value. Panics in any stage are not errors: they are
/// re-raised in the caller (the first one wins).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapReduceError<E> {
    /// A mapper or the reducer called [`Cancel::cancel`](crate::Cancel::cancel) with this
    /// error (the first call wins).
    Cancelled(E),
    /// A mapper or the reducer cancelled without an error (go-zero's
    /// `ErrCancelWithNil`, "mapreduce cancelled with nil").
    CancelledWithoutError,
    /// The reducer returned without writing a value (go-zero's `ErrReduceNoOutput`).
    NoOutput,
    /// The reducer wrote more than one value. go-zero panics in the caller here; this is
    /// an error instead, and the first value is dropped.
    MultipleOutputs,
    /// The deadline of the [`Options`](crate::Options) passed first.
    DeadlineExceeded,
    /// The caller's [`CancelToken`](crate::CancelToken) was cancelled first (go-zero
    /// reports every context cancellation as `DeadlineExceeded`; here the reason is kept).
    TokenCancelled,
}

impl<E> MapReduceError<E> {
    /// The error a stage cancelled with, if that is why the call stopped.
    pub fn cancelled_with(&self) -> Option<&E> {
        match self {
            MapReduceError::Cancelled(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for MapReduceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapReduceError::Cancelled(e) => write!(f, "mapreduce cancelled: {e}"),
            MapReduceError::CancelledWithoutError => f.write_str("mapreduce cancelled with nil"),
            MapReduceError::NoOutput => f.write_str("reduce not writing value"),
            MapReduceError::MultipleOutputs => {
                f.write_str("more than one element written in reducer")
            }
            MapReduceError::DeadlineExceeded => f.write_str("mapreduce deadline exceeded"),
            MapReduceError::TokenCancelled => f.write_str("mapreduce cancelled by its token"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> Error for MapReduceError<E> {}
