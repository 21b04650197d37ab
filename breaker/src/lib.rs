//! A client-side circuit breaker: Google SRE adaptive throttling with go-zero's refinements.
//!
//! Instead of open/half-open/closed states, every request is admitted with a probability
//! computed from the last 10 seconds: as failures outnumber successes the breaker drops a
//! growing share of requests locally, giving the failing dependency room to recover, and it
//! keeps letting some through (at least one a second) to notice when it has.
//!
//! # Example
//!
//! ```
//! use keel_breaker::{Breaker, BreakerError};
//!
//! #[derive(Debug)]
//! enum DbError { NotFound, Connection(String) }
//! impl std::fmt::Display for DbError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         match self {
//!             DbError::NotFound => f.write_str("not found"),
//!             DbError::Connection(e) => write!(f, "connection: {e}"),
//!         }
//!     }
//! }
//! fn query(id: u32) -> Result<String, DbError> {
//!     match id {
//!         0 => Err(DbError::NotFound),
//!         u32::MAX => Err(DbError::Connection("reset by peer".into())),
//!         _ => Ok(format!("row {id}")),
//!     }
//! }
//!
//! let breaker = Breaker::builder().name("users-db").build()?;
//! // "not found" means the database answered: count it as a success.
//! let found = breaker.call_with(|| query(0), |e| matches!(e, DbError::NotFound));
//! assert!(matches!(found, Err(BreakerError::Inner(DbError::NotFound))));
//! assert_eq!(breaker.call(|| query(7)).unwrap(), "row 7");
//! // A connection error counts as a failure and is kept for operators.
//! assert!(breaker.call(|| query(u32::MAX)).is_err());
//! assert!(breaker.recent_failures()[0].reason.contains("reset by peer"));
//! # Ok::<(), keel_breaker::ConfigError>(())
//! ```
//!
//! # Three ways in
//!
//! - [`Breaker::allow`] returns a [`Permit`]: report `success()` or `failure()`; dropping it
//!   unresolved records a failure during a panic and nothing otherwise (a cancelled call:
//!   see [`OnCancel`]).
//! - [`Breaker::call`], [`call_with`](Breaker::call_with) (an `acceptable` classifier) and
//!   [`call_with_fallback`](Breaker::call_with_fallback) wrap a closure; `call_async*` wrap a
//!   future. Errors keep the caller's type: [`BreakerError::Inner`] or
//!   [`BreakerError::Rejected`].
//! - With the `tower` feature, `BreakerLayer` wraps any tower `Service` (axum, tonic,
//!   hyper); clones share one breaker and rejections come from `call`, never `poll_ready`.
//!
//! # Cancellations, deadlines and slow calls
//!
//! A call whose caller stops waiting (a client disconnects, a sibling in a `try_join!`
//! fails, a `select!` branch loses) is a **cancellation**: it records nothing by default,
//! because it says nothing about the dependency. Counting it as a failure let a storm of
//! client disconnects shed a perfectly healthy database. A **slow** dependency must still
//! open the breaker, and there are two ways to say what slow is:
//!
//! - [`Builder::timeout`] (feature `tokio`): a deadline the breaker owns for `call_async*`
//!   and the tower layer. At expiry the call's future is dropped, the caller gets
//!   [`BreakerError::TimedOut`], and a failure is recorded. Use it instead of wrapping
//!   `tokio::time::timeout` around the breaker call, which the breaker can only see as a
//!   cancellation.
//! - [`Builder::slow_call`]: any call (sync too) that took longer than the threshold is a
//!   failure, whatever its result, and so is a call cancelled after running that long.
//!
//! [`OnCancel::Failure`] restores "every cancellation is a failure" for callers who only
//! ever cancel because the dependency is slow. A panic is always a failure.
//!
//! **If your requests carry a deadline** (a 250 ms budget per request that drops whatever
//! is still running), a stalled dependency shows up only as cancellations: give the breaker
//! a `timeout` or a `slow_call` threshold *below* that deadline, or it never hears about the
//! stall. keel's overload demo does exactly this (`slow_call(100 ms)` under a 250 ms
//! request deadline).
//!
//! # The algorithm
//!
//! Over a window of `buckets` buckets (go-zero: 40 × 250 ms), with `accepts` the successes,
//! `total` successes + failures + the breaker's own rejections, `failing` the trailing run
//! of failure-only buckets and `working` the trailing run of success-only buckets:
//!
//! ```text
//! w         = K - (K - 1.1) · failing / buckets          (K = 1.5)
//! pressure  = ((total - protection) - max(w, 1.1) · accepts) / (total + 1)   (protection = 5)
//! pressure <= 0            → admit
//! last pass > 1 s ago      → admit (force pass), remember now
//! p = pressure · (buckets - working) / buckets
//! uniform[0,1) < p         → reject (counted as a drop)
//! otherwise                → admit, remember now
//! ```
//!
//! # What to expect
//!
//! - **Opening is gradual.** Dropping starts once failures outweigh the window's successes
//!   by the K margin, so after a long healthy period it takes a good part of the window
//!   (seconds with the default 10 s) before most calls are shed; shorten the window for a
//!   faster reaction, at the cost of noisier decisions. In our PostgreSQL test (2 s window,
//!   ~400 calls/s) a refused database was shed at 99% about 2.2 s into the outage, and a
//!   stalled one (every call ended by a 500 ms [`Builder::timeout`]) at more than 70% from
//!   about 2.5 s and 95% a second later: expect about one window plus one timeout. The
//!   same test first cancels about twice as many calls as succeed (fan-outs stopped by a
//!   missing row, clients gone mid-query) against the healthy database: nothing is
//!   recorded against it, and nothing is shed.
//! - **While open, a trickle gets through**: the drop probability stays just below 1, plus a
//!   forced pass per second, so the breaker keeps probing the dependency.
//! - **Recovery takes about a window.** Once calls succeed again the drop probability falls
//!   as healthy buckets accumulate and reaches 0 when the whole window is healthy (within
//!   one window if rejections are not counted, [`Builder::count_rejections`]; within two with
//!   go-zero's counting, property-tested).
//!
//! # Cost
//!
//! go-zero folds all 40 buckets on every request. keel folds the finished buckets once per
//! bucket, caches that history (a seqlock, loom-checked), and combines it with the live
//! bucket per request, which is exactly go-zero's history (with several calling threads the
//! live bucket's reading is reused for up to 1 ms, see [`Builder::live_refresh`]): O(1),
//! lock-free, allocation-free,
//! and the clock is the cached [`CoarseClock`](keel_timex::CoarseClock). Outcomes go into a
//! per-thread striped [`keel_rollingwindow::RollingWindow`]. See `BENCHMARKS.md` for figures.
//!
//! # Operations
//!
//! [`Breaker::snapshot`], [`Breaker::recent_failures`] (the last five reasons),
//! [`Breaker::set_mode`] ([`Mode::Shadow`] dry run, forced open / closed, disabled),
//! [`Breaker::reset`], a [`Registry`] of named breakers, and with the `tracing` feature a
//! warning when a breaker starts dropping and a note when it stops (at most one of each per
//! 5 s).
//!
//! # Metrics (feature `metrics`)
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade, so any recorder works
//! (Prometheus, OpenTelemetry, StatsD); the crate never installs one. Every series carries
//! the breaker's `name` (the builder's [`name`](Builder::name); an unnamed breaker's is
//! `breaker-N`, so name the ones you export):
//!
//! - `keel_breaker_calls_total{outcome}`: every call's end, once: `success` or `failure` as
//!   recorded (a timed-out or panicked call, or one slower than [`Builder::slow_call`], is
//!   a `failure`), `rejected` for every refusal (adaptive or [`Mode::ForcedOpen`]),
//!   `cancelled` for a permit dropped unresolved whatever [`OnCancel`] records. A breaker
//!   in [`Mode::Disabled`] records nothing.
//! - `keel_breaker_drop_ratio`: the drop probability the last decision computed (0 once a
//!   decision finds no pressure; a forced pass leaves it as it was).
//! - `keel_breaker_state_changes_total{to}`: `open` at the first refusal after a decision
//!   that found no pressure, `closed` at the first such decision after a refusal: the
//!   transitions the `tracing` events report, none suppressed.
//!
//! **Install the recorder before building the breaker**: its handles are registered once,
//! at build time, with the recorder installed then (a breaker built before records
//! nothing). `keel_breaker_calls_total` is counted in per-thread stripes (a relaxed load
//! and store; the recorder's own counter would cost more than the decision) and reaches
//! the recorder at least once a second (keel-timex's shared periodic thread), at every
//! `snapshot()` and [`publish_metrics`](Breaker::publish_metrics), and when the breaker is
//! dropped: call `publish_metrics()` before rendering a scrape that must include the last
//! second. The gauge and the transitions are recorded as they happen; no lock, no
//! allocation, no label lookup on the hot path. Without the feature the recording compiles to nothing. `METRICS.md` at the root
//! of the keel repository lists every crate's series.
//!
//! # Differences from go-zero
//!
//! See [`Breaker`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod async_call;
mod breaker;
mod cache;
mod config;
mod deadline;
mod decision;
mod error;
mod events;
mod metrics;
mod mode;
mod permit;
mod policy;
mod reasons;
mod registry;
mod rng;
mod stats;
mod sync;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use breaker::{Breaker, Snapshot};
pub use config::{
    Builder, DEFAULT_BUCKETS, DEFAULT_FORCE_PASS, DEFAULT_K, DEFAULT_LIVE_REFRESH,
    DEFAULT_PROTECTION, DEFAULT_WINDOW,
};
pub use error::{BreakerError, ConfigError, Rejected, TimedOut};
pub use mode::Mode;
pub use permit::{OwnedPermit, Permit};
pub use policy::OnCancel;
pub use reasons::FailureReason;
pub use registry::Registry;
pub use stats::History;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
