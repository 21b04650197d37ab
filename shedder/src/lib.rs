//! Adaptive load shedding for servers, go-zero's design: refuse work early and cheaply
//! when the CPU is saturated and more requests are in flight than the service has shown it
//! can sustain, so the requests it does accept still finish in time.
//!
//! # Example
//!
//! ```
//! use keel_shedder::{Shedder, cpu::ManualCpu};
//!
//! // By default the CPU signal is the container's (cgroup) usage relative to its quota,
//! // sampled in the background; here it is injected.
//! let cpu = ManualCpu::new(200);
//! let shedder = Shedder::builder().name("api").cpu_source(cpu.clone()).build()?;
//!
//! fn handle(shedder: &Shedder) -> Result<&'static str, u16> {
//!     let guard = shedder.allow().map_err(|_| 503u16)?;
//!     let body = "hello"; // ... the real work ...
//!     guard.pass(); // records the latency; fail() for an error; drop = cancelled
//!     Ok(body)
//! }
//! assert_eq!(handle(&shedder), Ok("hello"));
//!
//! // Even at 100% CPU nothing is refused until the in-flight count exceeds what the
//! // window shows the service sustains.
//! cpu.set(1000);
//! assert_eq!(handle(&shedder), Ok("hello"));
//! assert_eq!(shedder.snapshot().dropped, 0);
//! # Ok::<(), keel_shedder::ConfigError>(())
//! ```
//!
//! # The algorithm
//!
//! Over a window of `buckets` buckets (go-zero: 50 × 100 ms), ignoring the one being
//! filled, with `cpu` the smoothed CPU usage in millis:
//!
//! ```text
//! max_flight = max(1, max_pass × min_rt × buckets per second / 1000)   (Little's law)
//! factor     = clamp((1000 − cpu) / (1000 − threshold), 0.1, 1)
//! drop if    (cpu ≥ threshold  or  dropped within the cool-off of the CPU last being high)
//!        and avg_in_flight > max_flight × factor
//!        and in_flight     > max_flight × factor
//! ```
//!
//! `max_pass` is the most passes one bucket held, `min_rt` the lowest per-bucket mean
//! latency in whole ms (1000 without data: a generous limit of `max_pass × 10` with the
//! default buckets until the window has seen latencies), `avg_in_flight` a moving average
//! (β = 0.9) updated as requests finish, so a fresh shedder admits a first burst whatever
//! the CPU.
//! Both the CPU condition and the in-flight condition must hold: a busy CPU alone (a batch
//! job next door) or a burst of slow requests alone sheds nothing.
//!
//! # The CPU signal
//!
//! [`cpu::SystemCpu`] reads cgroup v2 (`cpu.max`, `cpu.stat`), cgroup v1
//! (`cpu.cfs_quota_us`, `cpuacct.usage`) or `/proc/stat`, relative to the CPUs the process
//! may use (a quota of 1.5 CPUs counts as 1000 at 1.5 CPUs busy), every 250 ms, smoothed
//! with β = 0.95 (about the last 5 s). The sampler thread starts on the first decision
//! that needs it, is shared by every shedder of the process, and stops when the last one
//! is dropped. On platforms without these files there is no signal and the shedder applies
//! its [`CpuFallback`]: never shed (the default) or shed on the in-flight check alone.
//!
//! # Differences from go-zero
//!
//! - **RAII guards.** [`Guard`] releases its in-flight slot when dropped without an outcome
//!   (a cancelled future, a panic); go-zero's promise leaks the count forever. Such a
//!   request records no latency and no pass.
//! - **No global state.** No init-time goroutine, no global `Disable()`: a shedder is
//!   disabled per instance ([`Shedder::noop`], [`Builder::enabled`]); the CPU sampler is
//!   lazy and stops with its last user; the per-minute statistics roll over on the first
//!   request after the minute instead of on a timer of their own.
//! - **Validated configuration.** A CPU threshold outside 1..=999 is refused at
//!   construction (go-zero divides by zero at 1000 and then never sheds).
//! - **A cheaper hot path.** The in-flight count is striped per thread (go-zero: one atomic
//!   every request of every thread writes); the max-flight figure is computed once per
//!   bucket, not per decision; the latency is measured on a random sample of requests
//!   ([`Builder::latency_sample_period`], default 1 in 8, 1 = every request as in go-zero)
//!   and the in-flight average is stepped on those completions, at most once per
//!   millisecond ([`Builder::in_flight_average_interval`]); [`Builder::exact_statistics`]
//!   restores go-zero's every-request statistics. An admission below the CPU
//!   threshold reads one cached CPU value and touches only the thread's own stripe.
//! - **Refusals are the cheapest decision.** Under overload the refusal is what runs
//!   millions of times. A refusal is remembered with what it was decided on (the
//!   coarse-clock tick, the CPU reading and the number of finished requests); until one of
//!   them changes, the next request is refused on those figures after a few loads,
//!   without summing the stripes for the count or computing the limit again. Nothing else
//!   can change the outcome within a tick (the limit comes from finished buckets, the
//!   average and the count fall only when a request finishes), so this refuses exactly
//!   what go-zero's decision would; [`Overloaded::in_flight`] then reports the count of
//!   the remembered decision.
//! - **CPU signal fixes.** The CPU average is kept in floating point (go-zero's integer
//!   truncation sticks at 0 below 2%), is seeded with the first sample instead of climbing
//!   from 0 for 5 s, and survives counter resets; the cgroup usage is relative to wall time
//!   × the CPU limit, and the process's own cgroup path is followed (see [`cpu`]).
//! - **Shadow mode** ([`Builder::shadow`]): decide and count, never refuse.
//!
//! # Metrics (feature `metrics`)
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade, so any recorder works
//! (Prometheus, OpenTelemetry, StatsD); the crate never installs one. Every series carries
//! the shedder's `name` (the builder's [`name`](Builder::name); an unnamed shedder's is
//! `shedder-N`, so name the ones you export):
//!
//! - `keel_shedder_requests_total{outcome}`: every decision, once: `admitted`, `dropped`,
//!   or `shadow_dropped` (admitted in [shadow mode](Builder::shadow) although it would have
//!   been dropped). A disabled shedder ([`Shedder::noop`]) records nothing. Batched (see
//!   below).
//! - `keel_shedder_in_flight`: the requests admitted and not yet finished, as the shedder
//!   last summed its stripes: on each step of the in-flight average (timed completions, at
//!   most once per [`in_flight_average_interval`](Builder::in_flight_average_interval)), a
//!   decision under CPU pressure that compares the count with the limit, a
//!   [`snapshot`](Shedder::snapshot) and the statistics period's roll-over. It is not
//!   incremented per request (that would put two shared writes on every request's path),
//!   so after traffic stops it shows the last sample until one of those reads it again.
//! - `keel_shedder_cpu_usage`: the CPU reading decisions use, as a fraction `0.0..=1.0`
//!   (millis / 1000), set when a timed admission or a refusal sees it change; left as it
//!   is without a signal.
//! - `keel_shedder_response_time_seconds` (histogram): a sample of the latencies the
//!   shedder times for its min-RT estimate: of the passed requests picked by
//!   [`latency_sample_period`](Builder::latency_sample_period), those that step the
//!   in-flight average, at most one per
//!   [`in_flight_average_interval`](Builder::in_flight_average_interval) (1 ms by default;
//!   every pass with [`exact_statistics`](Builder::exact_statistics)). A recorder's
//!   histogram sample costs more than an admission, so its count is not the passes' count:
//!   `keel_shedder_requests_total` counts those.
//!
//! **The request counters are batched.** A recorder call per request costs more than the
//! whole admission, so decisions are counted only in the shedder's own per-thread stripes
//! (which it keeps anyway), and the counters reach the recorder, as the increments since
//! the last publication:
//!
//! - at least once a second, on keel-timex's shared periodic thread (one per process, for
//!   every primitive that batches; it holds only weak references and exits when no
//!   primitive is left);
//! - at every [`snapshot`](Shedder::snapshot) and [`publish_metrics`](Shedder::publish_metrics);
//! - when the shedder's last handle is dropped, so nothing counted is lost.
//!
//! A scrape may lag the last second's requests: call
//! [`publish_metrics`](Shedder::publish_metrics) before rendering the recorder for an exact
//! one. The published counters never go down.
//!
//! **Install the recorder before building the shedder**: its handles are registered once,
//! at build time, with the recorder installed then (a shedder built before records
//! nothing); a decision then makes no recorder call at all, only a compare of the CPU
//! reading (a timed pass records one histogram sample), no lock, no allocation, no label
//! lookup. Without the feature the recording compiles to nothing. `METRICS.md` at the root
//! of the keel repository lists every crate's series.
//!
//! # Features
//!
//! - `tower`: a `Clone` layer and service sharing one shedder (ready at once, refusing in
//!   `call` with a typed error that maps to 503 / `UNAVAILABLE`).
//! - `axum`: `Overloaded` and `ShedError` as axum responses (503 with `Retry-After: 1`),
//!   a helper for `HandleErrorLayer`, and `respond_http`, a layer that answers a refusal
//!   itself (no `HandleErrorLayer`); on `axum-core`, not the whole of axum.
//! - `tonic`: `Overloaded` and `ShedError` as `tonic::Status` (`UNAVAILABLE`, a
//!   `retry-after` metadata entry), and `respond_grpc`, a layer that answers a refusal
//!   itself as a gRPC response; tonic without its transport.
//! - `tracing`: events when shedding starts and stops, and the statistics of every minute.
//! - `metrics`: decisions (batched, published at least once a second), in-flight count,
//!   CPU reading and sampled latencies through the `metrics` facade (see
//!   [Metrics](#metrics-feature-metrics)).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod average;
mod config;
pub mod cpu;
mod cpu_choice;
mod decision;
mod error;
mod events;
mod group;
mod guard;
mod inflight;
mod last_refusal;
mod local;
mod metrics;
mod minute;
mod shedder;
mod snapshot;
mod stats;
mod sync;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use config::{
    Builder, CpuFallback, DEFAULT_BUCKETS, DEFAULT_COOL_OFF, DEFAULT_CPU_THRESHOLD,
    DEFAULT_IN_FLIGHT_AVERAGE_INTERVAL, DEFAULT_LATENCY_SAMPLE_PERIOD, DEFAULT_WINDOW,
};
pub use error::{ConfigError, Overloaded};
pub use group::ShedderGroup;
pub use guard::{Guard, OwnedGuard};
pub use minute::{PeriodStats, STATS_PERIOD};
pub use shedder::Shedder;
pub use snapshot::Snapshot;

#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(all(test, not(loom)))]
mod tests_last_refusal;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
