//! A bucketed sliding window of counters: the statistics under keel's breaker and shedder.
//!
//! A [`RollingWindow`] keeps `size` buckets, each covering `interval` of time on a grid
//! anchored at construction. [`add`](RollingWindow::add) puts a value into the current
//! slice's bucket; [`reduce`](RollingWindow::reduce) visits the buckets still in the window,
//! oldest first. The semantics are go-zero's `collection.RollingWindow`, including which
//! buckets a read visits and the `ignore_current_bucket` option.
//!
//! # Example
//!
//! ```
//! use keel_rollingwindow::{RollingWindow, SumCount};
//! use std::time::Duration;
//!
//! // Request latencies over the last 5 s, in 50 buckets of 100 ms.
//! let latencies = RollingWindow::<SumCount<f64>>::new(50, Duration::from_millis(100))?;
//! latencies.add(12.5);
//! latencies.add(7.5);
//! let total = latencies.fold((0.0, 0), |(s, n), b| (s + b.sum, n + b.count));
//! assert_eq!(total, (20.0, 2));
//! # Ok::<(), keel_rollingwindow::ConfigError>(())
//! ```
//!
//! # Buckets
//!
//! The window is generic over a [`Bucket`]: [`SumCount`] (sum and count of `i64`, `u64` or
//! `f64` values, go-zero's built-in bucket) ships here; write your own from [`Field`]s, as the
//! breaker does for success/failure/drop counts.
//!
//! # Time
//!
//! Slices come from a [`keel_timex::Clock`] read once per add. [`RollingWindow::new`] and
//! [`Builder::build`] use the process-wide [`CoarseClock`](keel_timex::CoarseClock): one
//! atomic load, about 1 ms behind real time, which moves a value across a bucket boundary at
//! most that much early or late. [`Builder::build_with_clock`] takes any other clock; tests use
//! a [`ManualClock`](keel_timex::ManualClock). [`RollingWindow::add_at`] and
//! [`RollingWindow::reduce_at`] take a reading the caller already has.
//!
//! # Concurrency and cost
//!
//! Every thread that adds gets its own stripe (a copy of the buckets), allocated on its first
//! add and reused by later threads once it exits. An add is a clock read, two cached-pointer
//! loads and a plain load/store per field: no lock, no atomic read-modify-write, no shared
//! cache line, so it costs the same with one thread or many. A read merges the stripes, so it
//! costs `O(size × writing threads)`; a window read on every request should be read
//! less often or cached by its user (the breaker caches its decision). A thread adding while
//! its thread-locals are being destroyed (or past 65 534 live threads) shares a fallback
//! stripe behind a lock. Per-stripe publication is a seqlock checked with loom.
//!
//! Memory: each thread that has added to a window holds `size × (8 + size_of bucket)` bytes
//! of it (40 buckets of `SumCount<i64>`: 960 bytes), plus a table of 16 lazily filled levels.
//! Thread indices are reused after threads exit, so the stripes stay bounded by the peak
//! number of live threads that ever added.
//!
//! Reads racing with adds see each add in whole or not at all for a single-field bucket; for
//! a bucket of several fields an add in flight can be seen in some fields and not others.
//! Statistics windows do not need more, and go-zero's lock gives no better guarantee to a
//! reader that runs just before an add.
//!
//! # Per-thread counters
//!
//! [`PerThreadCounters`] applies the same idea to plain counts on a hot path (keel's cache
//! hits, shedder refusals, breaker calls): each live thread owns a cache line and adds with a
//! relaxed load and store, no read-modify-write; a sum adds the lines up.
//!
//! # NaN
//!
//! `f64` sums follow IEEE arithmetic, as in go-zero: a NaN (or an infinity) added to a bucket
//! makes that slice's sum NaN (or infinite) until the slice leaves the window, after which the
//! window is clean again. Filter such values before adding if they can occur.
//!
//! # Differences from go-zero
//!
//! See [`RollingWindow`]. In short: lock-free per-thread adds, typed configuration errors,
//! an injected clock, and saner handling of time that appears to run backwards.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod bucket;
mod builder;
mod error;
mod field;
mod per_thread;
mod stripe;
mod stripes;
mod sync;
mod thread_id;
mod window;

pub use bucket::{Bucket, SumCount, SumCountSnapshot};
pub use builder::Builder;
pub use error::ConfigError;
pub use field::{Field, Value};
pub use per_thread::{PER_THREAD_STRIPES, PerThreadCounters};
pub use window::RollingWindow;

/// The most buckets a window may have (2^16). Each thread that adds holds its own copy of
/// every bucket and each read visits all of them, so beyond this a window would cost
/// megabytes per thread and milliseconds per read; [`Builder::build`] refuses it with
/// [`ConfigError::TooManyBuckets`].
pub const MAX_SIZE: usize = 1 << 16;

/// The calling thread's small, dense index: distinct among live threads, given back when
/// the thread exits and handed to the next new thread (smallest first), so indices stay
/// below the peak number of live threads. `None` while the thread is being torn down.
///
/// The windows key their per-thread stripes by it; other striped structures (keel-shedder's
/// in-flight counters) use it so that two live threads never share a stripe by accident,
/// whatever the thread churn.
///
/// ```
/// let mine = keel_rollingwindow::thread_index().unwrap();
/// let other = std::thread::spawn(|| keel_rollingwindow::thread_index().unwrap())
///     .join()
///     .unwrap();
/// assert_ne!(mine, other);
/// assert_eq!(keel_rollingwindow::thread_index(), Some(mine));
/// ```
#[inline]
pub fn thread_index() -> Option<usize> {
    thread_id::current()
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
