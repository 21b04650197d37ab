//! The one clock of keel: monotonic time that is cheap on hot paths and controllable in
//! tests.
//!
//! Every time-dependent keel primitive is generic over [`Clock`], takes its clock through its
//! builder, and reads it once per operation. Three clocks ship here (four with the `tokio`
//! feature):
//!
//! | clock | one read costs* | resolution | use it for |
//! |---|---|---|---|
//! | [`CoarseClock`] | ~1.5-2 ns (one atomic load) | ~1 ms | bucketed statistics, expiry checks |
//! | [`MonotonicClock`] | ~26 ns (`clock_gettime`) | ns | latency of one request |
//! | [`ManualClock`] | ~1 ns | whatever the test sets | deterministic tests |
//! | `TokioClock` (feature `tokio`) | ~28 ns | ns | code tested under `tokio::time::pause()` |
//!
//! *Measured on our 2-vCPU reference machine; see `BENCHMARKS.md` in the repository.
//!
//! # Example
//!
//! ```
//! use keel_timex::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();          // hand clones to the code under test
//! let deadline = clock.now() + Duration::from_secs(1);
//! clock.advance(Duration::from_millis(999));
//! assert!(clock.now() < deadline);
//! clock.advance(Duration::from_millis(1));
//! assert_eq!(clock.now(), deadline);
//! ```
//!
//! # Readings
//!
//! A reading is a [`Nanos`]: whole nanoseconds since an origin. The real clocks share one
//! process-wide origin, fixed when the first of them is created, so their readings compare.
//! Arithmetic on `Nanos` saturates; nothing here panics.
//!
//! # Tokio paused time
//!
//! `tokio::time::pause()` stops only `tokio::time::Instant`; `std::time::Instant`, and so
//! [`MonotonicClock`] and [`CoarseClock`], keep running. To test keel primitives under paused
//! tokio time, give them a `TokioClock` (feature `tokio`), which reads tokio's instant and so
//! stands still while paused and jumps with `advance()` and auto-advance. A [`ManualClock`]
//! is still the better tool when the test does not otherwise need tokio: it needs no runtime
//! and every step is explicit.
//!
//! Feature `periodic` adds the module `periodic`: one shared background thread that runs registered
//! tasks every second while their owners live (keel's crates publish the counters they
//! batch for their `metrics` feature on it).
//!
//! # Differences from go-zero
//!
//! - go-zero has one package-level clock (`timex.Now()`); here the clock is a value each
//!   primitive owns, so tests inject a [`ManualClock`] instead of sleeping, and two
//!   primitives in one process can run on different clocks.
//! - go-zero offsets its origin by a year so that 0 can mean "unset"; keel uses `Option`
//!   instead and starts at zero.
//! - go-zero's `FakeTicker` is replaced by explicit time: advance a [`ManualClock`] and call
//!   the primitive.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod clock;
mod coarse;
mod manual;
mod monotonic;
mod nanos;
mod origin;
#[cfg(feature = "periodic")]
pub mod periodic;
#[cfg(feature = "tokio")]
mod tokio_clock;

pub use clock::Clock;
pub use coarse::CoarseClock;
pub use manual::ManualClock;
pub use monotonic::MonotonicClock;
pub use nanos::Nanos;
#[cfg(feature = "tokio")]
pub use tokio_clock::TokioClock;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
