//! Cancellable map-reduce, go-zero's `mr` package: a generator feeds items, at most
//! `workers` mappers run at once, one reducer folds their outputs into one value; any stage
//! can cancel the whole call, and a panic anywhere surfaces in the caller.
//!
//! # Example
//!
//! ```
//! use keel_mapreduce::{thread, MapReduceError, Options};
//!
//! // Sum of squares of 1..=4 on OS threads (no runtime needed).
//! let sum: Result<i64, MapReduceError<&str>> = thread::map_reduce(
//!     |source| {
//!         for i in 1..=4 {
//!             if !source.send(i) {
//!                 return; // the call is stopping
//!             }
//!         }
//!     },
//!     |i: i64, writer, _cancel| writer.write(i * i),
//!     |squares, writer, _cancel| writer.write(squares.sum()),
//!     Options::new().workers(4),
//! );
//! assert_eq!(sum, Ok(30));
//! ```
//!
//! # Two flavours, one set of rules
//!
//! - [`thread`]: scoped OS threads (the stages may borrow from the caller), `workers`
//!   long-lived worker threads pulling adaptive batches over bounded channels: for
//!   CPU-bound work without a runtime.
//! - `tokio` (feature `tokio`): the mappers run as futures polled inside the caller's task
//!   (no task per item, no spawn), or spread over `workers` long-lived spawned tasks
//!   pulling batches (`map_reduce_spawned`); plus a `Stream` form and `finish` over
//!   futures.
//!
//! Both: [`Options`] (workers, default 16; a deadline; a [`CancelToken`]), [`Cancel`]
//! handed to every mapper and the reducer (the first stop wins), typed
//! [`MapReduceError`]s, the first panic re-raised in the caller after every stage has
//! stopped, bounded queues (memory bounded whatever the input), and no thread or task
//! outliving the call.
//!
//! # Differences from go-zero
//!
//! - A stop (cancel, token, deadline) tells the generator to stop (`send` returns false)
//!   instead of draining it to completion; queued items are dropped.
//! - A second reducer write is [`MapReduceError::MultipleOutputs`], not a panic; a
//!   missing one is [`MapReduceError::NoOutput`].
//! - The caller's token and the deadline are told apart
//!   ([`MapReduceError::TokenCancelled`] vs [`MapReduceError::DeadlineExceeded`]); go-zero
//!   reports any context cancellation as `DeadlineExceeded`.
//! - Panic payloads are re-raised as they are (go-zero re-panics with a string).
//! - No goroutine per item: long-lived workers and batches.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
mod error;
mod options;
pub mod thread;
mod token;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use cancel::Cancel;
pub use error::MapReduceError;
pub use options::{DEFAULT_WORKERS, Options};
pub use token::CancelToken;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
