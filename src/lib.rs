//! keel: embeddable resilience primitives, modelled on go-zero's `core/`.
//!
//! This umbrella crate re-exports each keel crate as a module behind a feature named after
//! it; `full` turns them all on. Depending on a single `keel-*` crate directly works just as
//! well.
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `timex` | `keel::timex` | `keel-timex`: the clock (monotonic, coarse, manual) |
//! | `rollingwindow` | `keel::rollingwindow` | `keel-rollingwindow`: bucketed sliding window |
//! | `breaker` | `keel::breaker` | `keel-breaker`: Google SRE adaptive circuit breaker |
//! | `shedder` | `keel::shedder` | `keel-shedder`: adaptive load shedder (CPU + in-flight) |
//! | `limiter` | `keel::limiter` | `keel-limiter`: token-bucket and period limiters, memory or Redis |
//! | `mapreduce` | `keel::mapreduce` | `keel-mapreduce`: cancellable map-reduce, threads and tokio |
//! | `timingwheel` | `keel::timingwheel` | `keel-timingwheel`: keyed timing wheel for millions of timers |
//! | `syncx` | `keel::syncx` | `keel-syncx`: singleflight, per-key locks, limits, pools, shared resources |
//! | `collection` | `keel::collection` | `keel-collection`: expiring bounded cache with a coalescing loader, ring, fifo queue |
//! | `rediscache` | `keel::rediscache` | `keel-rediscache`: two-tier cache (local, then Redis) with one load per key across instances, bloom filters |
//!
//! ```toml
//! keel = { version = "0.1", features = ["rollingwindow"] }
//! ```
//!
//! # Integrations
//!
//! Integration features are passed through to every enabled crate that has them, so one
//! dependency line sets up a service:
//!
//! ```toml
//! keel = { version = "0.1", features = ["breaker", "shedder", "limiter", "axum", "tokio"] }
//! ```
//!
//! | feature | turns on |
//! |---|---|
//! | `tower` | the tower layers of the breaker, the shedder and the limiter |
//! | `axum` | `tower`, and refusals as axum responses (breaker, shedder, limiter) |
//! | `tonic` | `tower`, and refusals as gRPC statuses (breaker, shedder, limiter) |
//! | `tokio` | the breaker's deadline, async waits of the limiter and syncx, the async map-reduce, the timing wheel's stream, `TokioClock` |
//! | `redis` | the limiter's Redis backend |
//! | `tracing` | events of the breaker, the shedder, the limiter and the cache |
//!
//! An integration feature alone enables no crate: `features = ["tower"]` without
//! `"breaker"` adds nothing.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "timex")]
#[cfg_attr(docsrs, doc(cfg(feature = "timex")))]
#[doc(inline)]
pub use keel_timex as timex;

#[cfg(feature = "rollingwindow")]
#[cfg_attr(docsrs, doc(cfg(feature = "rollingwindow")))]
#[doc(inline)]
pub use keel_rollingwindow as rollingwindow;

#[cfg(feature = "breaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "breaker")))]
#[doc(inline)]
pub use keel_breaker as breaker;

#[cfg(feature = "shedder")]
#[cfg_attr(docsrs, doc(cfg(feature = "shedder")))]
#[doc(inline)]
pub use keel_shedder as shedder;

#[cfg(feature = "limiter")]
#[cfg_attr(docsrs, doc(cfg(feature = "limiter")))]
#[doc(inline)]
pub use keel_limiter as limiter;

#[cfg(feature = "mapreduce")]
#[cfg_attr(docsrs, doc(cfg(feature = "mapreduce")))]
#[doc(inline)]
pub use keel_mapreduce as mapreduce;

#[cfg(feature = "timingwheel")]
#[cfg_attr(docsrs, doc(cfg(feature = "timingwheel")))]
#[doc(inline)]
pub use keel_timingwheel as timingwheel;

#[cfg(feature = "syncx")]
#[cfg_attr(docsrs, doc(cfg(feature = "syncx")))]
#[doc(inline)]
pub use keel_syncx as syncx;

#[cfg(feature = "collection")]
#[cfg_attr(docsrs, doc(cfg(feature = "collection")))]
#[doc(inline)]
pub use keel_collection as collection;

#[cfg(feature = "rediscache")]
#[cfg_attr(docsrs, doc(cfg(feature = "rediscache")))]
#[doc(inline)]
pub use keel_rediscache as rediscache;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
