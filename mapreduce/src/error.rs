//! The errors, one type per set of causes an entry point can really produce:
//! [`StopError`] (why a call stopped early) for the forms without a reduced value, and
//! [`MapReduceError`] (a stop, or a reducer that wrote no value or several) for the forms
//! that return one. `finish` returns the first error itself.

use std::error::Error;
use std::fmt;

/// Why a map-reduce stopped before it ran to its end: a stage cancelled, the deadline
/// passed or the caller's token was cancelled (the first of them wins). This is all that
/// `map_reduce_void` can return: its reducer writes no value, so it has no output to miss.
///
/// Deliberately exhaustive: the variants are exactly the stops [`Cancel`](crate::Cancel)
/// and [`Options`](crate::Options) offer, so a `match` names every cause without a
/// wildcard arm.
///
/// ```
/// use keel_mapreduce::{thread, Options, StopError};
///
/// let r = thread::map_reduce_void(
///     |source| {
///         for i in 0..10 {
///             if !source.send(i) {
///                 return;
///             }
///         }
///     },
///     |i: i32, writer, cancel| {
///         if i == 3 {
///             cancel.cancel(Some("three"));
///         }
///         writer.write(i);
///     },
///     |outputs, _cancel| outputs.for_each(drop),
///     Options::new(),
/// );
/// match r {
///     Err(StopError::Cancelled(e)) => assert_eq!(e, "three"),
///     other => panic!("expected the mapper's cancel, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopError<E> {
    /// A mapper or the reducer called [`Cancel::cancel`](crate::Cancel::cancel) with this
    /// error (the first call wins).
    Cancelled(E),
    /// A mapper or the reducer cancelled without an error (go-zero's
    /// `ErrCancelWithNil`, "mapreduce cancelled with nil").
    CancelledWithoutError,
    /// The deadline of the [`Options`](crate::Options) passed first.
    DeadlineExceeded,
    /// The caller's [`CancelToken`](crate::CancelToken) was cancelled first (go-zero
    /// reports every context cancellation as `DeadlineExceeded`; here the reason is kept).
    TokenCancelled,
}

impl<E> StopError<E> {
    /// The error a stage cancelled with, if that is why the call stopped.
    pub fn cancelled_with(&self) -> Option<&E> {
        match self {
            StopError::Cancelled(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for StopError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopError::Cancelled(e) => write!(f, "mapreduce cancelled: {e}"),
            StopError::CancelledWithoutError => f.write_str("mapreduce cancelled with nil"),
            StopError::DeadlineExceeded => f.write_str("mapreduce deadline exceeded"),
            StopError::TokenCancelled => f.write_str("mapreduce cancelled by its token"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> Error for StopError<E> {}

/// Why a map-reduce returned no value: a stop (the four causes of [`StopError`], with the
/// same variant names), or a reducer that did not write exactly one value. Panics in any
/// stage are not errors: they are re-raised in the caller (the first one wins).
///
/// A [`StopError`] converts into it (`?` works from a `map_reduce_void` inside a function
/// returning `MapReduceError`).
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

impl<E> From<StopError<E>> for MapReduceError<E> {
    fn from(stop: StopError<E>) -> Self {
        match stop {
            StopError::Cancelled(e) => MapReduceError::Cancelled(e),
            StopError::CancelledWithoutError => MapReduceError::CancelledWithoutError,
            StopError::DeadlineExceeded => MapReduceError::DeadlineExceeded,
            StopError::TokenCancelled => MapReduceError::TokenCancelled,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_converts_to_the_same_named_variant_and_text() {
        let stops = [
            StopError::Cancelled("e"),
            StopError::CancelledWithoutError,
            StopError::DeadlineExceeded,
            StopError::TokenCancelled,
        ];
        let wanted = [
            MapReduceError::Cancelled("e"),
            MapReduceError::CancelledWithoutError,
            MapReduceError::DeadlineExceeded,
            MapReduceError::TokenCancelled,
        ];
        for (stop, want) in stops.into_iter().zip(wanted) {
            let text = stop.to_string();
            let with = stop.cancelled_with().copied();
            let got = MapReduceError::from(stop);
            assert_eq!(got.to_string(), text);
            assert_eq!(got.cancelled_with().copied(), with);
            assert_eq!(got, want);
        }
    }
}
