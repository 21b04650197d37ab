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
//! handed to every mapper and the reducer (the first stop wins), typed errors, the first
//! panic re-raised in the caller after every stage has stopped, bounded queues (memory
//! bounded whatever the input), and no thread or task outliving the call.
//!
//! # Errors: each entry point names only what it can return
//!
//! | Entry points | Error | Why |
//! |---|---|---|
//! | `map_reduce`, `map_reduce_iter`, `map_reduce_stream`, `map_reduce_spawned` | [`MapReduceError<E>`] | a stop, or a reducer that wrote no value or several |
//! | `map_reduce_void`, `map_reduce_void_spawned` | [`StopError<E>`] | a stop only: the reducer writes no value |
//! | `finish` | `E`, the first function's (future's) error | no options, so a failure is the only stop |
//! | `for_each`, `finish_void` | none | a stop just ends the call early, as in go-zero |
//!
//! A stop is the first of: a stage's `cancel(Some(e))` ([`StopError::Cancelled`]), its
//! `cancel(None)` (`CancelledWithoutError`), the deadline (`DeadlineExceeded`), the
//! caller's token (`TokenCancelled`). [`MapReduceError`] has the same four variants
//! (`From<StopError<E>>` converts), plus `NoOutput` and `MultipleOutputs`.
//!
//! # When to use tokio instead
//!
//! Not every "run these in parallel" is a map-reduce; two of tokio's own tools fit better
//! where they apply, and this crate does not duplicate them.
//!
//! **A fixed handful of different futures, stop on the first error:** `tokio::try_join!`.
//! It polls them together in the caller's task, returns every output (each with its own
//! type) or the first error as it is, and drops the others on that error:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #[derive(Debug, PartialEq)]
//! struct FetchError(&'static str);
//!
//! async fn user(id: u64) -> Result<String, FetchError> {
//!     Ok(format!("user {id}"))
//! }
//! async fn orders(id: u64) -> Result<Vec<u64>, FetchError> {
//!     Ok(vec![id * 10, id * 10 + 1])
//! }
//! async fn quota(_id: u64) -> Result<u32, FetchError> {
//!     Err(FetchError("quota service down"))
//! }
//!
//! let (name, list) = tokio::try_join!(user(7), orders(7)).unwrap();
//! assert_eq!((name.as_str(), list.len()), ("user 7", 2));
//!
//! let failed = tokio::try_join!(user(7), orders(7), quota(7));
//! assert_eq!(failed, Err(FetchError("quota service down")));
//! # }
//! ```
//!
//! **A dynamic set (known only at run time, growing while it runs, on the runtime's
//! threads):** `tokio::task::JoinSet`. `join_next` yields results as they finish; returning
//! early drops the set, which aborts the tasks still running:
//!
//! ```
//! use tokio::task::JoinSet;
//!
//! async fn fetch(id: u64) -> Result<u64, String> {
//!     if id == 3 { Err(format!("{id}: not found")) } else { Ok(id * 100) }
//! }
//!
//! async fn fetch_all(ids: impl IntoIterator<Item = u64>) -> Result<u64, String> {
//!     let mut set = JoinSet::new();
//!     for id in ids {
//!         set.spawn(fetch(id));
//!     }
//!     let mut total = 0;
//!     while let Some(joined) = set.join_next().await {
//!         total += joined.expect("fetch does not panic")?; // the first error aborts the rest
//!     }
//!     Ok(total)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(fetch_all([1, 2]).await, Ok(300));
//! assert_eq!(fetch_all([1, 2, 3, 4]).await, Err("3: not found".to_owned()));
//! # }
//! ```
//!
//! `finish` stays for go-zero's `Finish`: a list, built at run time, of functions or
//! futures of one type, where only the first error matters (`thread::finish` does it
//! without a runtime).
//!
//! **What keel-mapreduce is for**, which those do not do:
//!
//! - **Bounded workers over a stream of items:** at most `workers` mappers at once over
//!   any number of items, produced lazily by a generator (or an iterator or a `Stream`)
//!   with back-pressure through bounded queues. `try_join!` has a fixed arity; a
//!   `JoinSet` runs whatever is spawned into it, as fast as it is spawned.
//! - **The reducer:** one stage folds the mappers' outputs in arrival order into one
//!   value, written exactly once (checked: [`MapReduceError::NoOutput`],
//!   [`MapReduceError::MultipleOutputs`]).
//! - **Cancellation from any stage:** a mapper or the reducer calls [`Cancel::cancel`];
//!   the caller's [`CancelToken`] or a deadline stop it from outside. The generator is
//!   told to stop, no mapper starts afterwards, and the first cause is the error.
//! - **The thread flavour without a runtime:** [`thread`] runs the same pipeline on
//!   scoped OS threads, whose stages may borrow from the caller.
//! - **go-zero's semantics:** `mr`'s rules (workers default to 16, the first stop wins,
//!   a panic in any stage surfaces in the caller), so code ported from go-zero keeps its
//!   behaviour; the deviations are listed below.
//!
//! # Differences from go-zero
//!
//! - Errors are typed per entry point (see the table above) where go-zero returns
//!   `error` everywhere. `finish` returns the failing function's own error (go-zero's
//!   `Finish` returns that same error); `map_reduce_void` returns a [`StopError`]
//!   (go-zero's `MapReduceVoid` can return the same causes: it maps `ErrReduceNoOutput`
//!   to nil).
//! - A stop (cancel, token, deadline) tells the generator to stop (`send` returns false)
//!   instead of draining it to completion; queued items are dropped.
//! - A second reducer write is [`MapReduceError::MultipleOutputs`], not a panic; a
//!   missing one is [`MapReduceError::NoOutput`].
//! - The caller's token and the deadline are told apart (`TokenCancelled` vs
//!   `DeadlineExceeded`); go-zero reports any context cancellation as `DeadlineExceeded`.
//! - Panic payloads are re-raised as they are (go-zero re-panics with a string).
//! - No goroutine per item: long-lived workers and batches.
//!
//! # Metrics
//!
//! With the feature `metrics`, every run records through the
//! [`metrics`](https://docs.rs/metrics) facade, labelled with the options'
//! [`name`](Options::name) (default `"mapreduce"`; `finish` and `finish_void`, which take no
//! options, use the default) and its flavour, `thread` or `tokio` (both tokio modes):
//!
//! | metric | type | labels | counts |
//! |---|---|---|---|
//! | `keel_mapreduce_runs_total` | counter | `name`, `flavour`, `result` = `ok` \| `error` \| `cancelled` \| `panic` | every run, by how it ended: `error` is a stage's `cancel(Some(e))`, `NoOutput`, `MultipleOutputs` or `finish`'s first error; `cancelled` is `cancel(None)`, the token, the deadline, or a tokio call's future dropped before its end; `panic` a panic re-raised |
//! | `keel_mapreduce_items_total` | counter | `name`, `flavour`, `stage` = `generated` \| `mapped` \| `reduced` | items the generator put on the source queue, items whose mapper returned (a mapper future that completed), mapper outputs handed to the reducer |
//!
//! The handles are registered when a run starts, in the call itself (on the caller's thread,
//! or at the first poll of the tokio call, before any task is spawned), with the recorder
//! installed at that moment: **install the recorder before running**. Items are counted in
//! plain integers and added to the counters per batch, so an item costs no atomic
//! operation. Without the feature nothing is recorded and nothing is compiled in. The whole
//! table of keel's metrics is `METRICS.md` at the workspace root.
//!
//! # Features
//!
//! - `tokio`: the async flavour (module `tokio`), and `CancelToken::cancelled()`.
//! - `metrics`: the metrics above.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
mod error;
mod first;
mod metrics;
mod options;
pub mod thread;
mod token;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use cancel::Cancel;
pub use error::{MapReduceError, StopError};
pub use options::{DEFAULT_WORKERS, MAX_WORKERS, Options};
pub use token::CancelToken;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
