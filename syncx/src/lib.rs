//! Coordination primitives for services: singleflight, per-key serialisation, counting
//! limits, object pools with a max age, and shared resources: sync and async, and safe when
//! a caller panics or an async caller is cancelled. Modelled on go-zero's `core/syncx`.
//!
//! ```
//! use keel_syncx::singleflight::SingleFlight;
//!
//! let flights: SingleFlight<&str, String, std::io::Error> = SingleFlight::new();
//! // Concurrent calls for one key run the closure once and all get its result.
//! let profile = flights.run("user:42", || Ok("alice".to_string()));
//! assert_eq!(profile.unwrap(), "alice");
//! ```
//!
//! # What is here
//!
//! | module | go-zero | what it adds |
//! |---|---|---|
//! | [`singleflight`] | `SingleFlight` (`Do`, `DoEx`) | a panicking leader gives followers an error (go-zero gives them zero values); async with cancellation handover |
//! | [`locked`] | `LockedCalls` | per-key serialisation, sync and async, no key left behind |
//! | [`limit`] | `Limit`, `TimeoutLimit` | RAII permits (returning twice cannot compile), try / blocking / timeout / async acquisition with no lost wake-ups |
//! | [`pool`] | `Pool` + `WithMaxAge` | RAII objects, timeouts, async, expired objects destroyed outside the lock, factory panics leak nothing |
//! | [`resource`] | `ImmutableResource`, `ResourceManager` | typed errors, `Closed` instead of a panic after close |
//!
//! # What std and tokio already cover
//!
//! go-zero's syncx also has helpers that exist because Go lacks them. Use these instead:
//!
//! | go-zero | use instead |
//! |---|---|
//! | `AtomicBool` | [`std::sync::atomic::AtomicBool`] (`compare_exchange` is CAS) |
//! | `AtomicDuration` | an [`AtomicU64`](std::sync::atomic::AtomicU64) of nanoseconds |
//! | `AtomicFloat64` | an [`AtomicU64`](std::sync::atomic::AtomicU64) of `f64::to_bits`, `fetch_update` for `Add` |
//! | `Barrier.Guard`, `Guard(locker, fn)` | a [`Mutex`](std::sync::Mutex) guard's scope |
//! | `Cond` | [`Condvar`](std::sync::Condvar) with a predicate loop (go-zero's `Signal` is lost when nobody waits; a predicate loop never loses one) |
//! | `DoneChan` | `tokio_util::sync::CancellationToken`, or a [`OnceLock`](std::sync::OnceLock) + `Condvar` |
//! | `OnceGuard` | `AtomicBool::compare_exchange(false, true)` |
//! | `Once(fn)` | [`std::sync::Once`], [`OnceLock`](std::sync::OnceLock), [`LazyLock`](std::sync::LazyLock) |
//! | `SpinLock` | `parking_lot::Mutex` (spins briefly, then parks; a pure spin lock starves under preemption) |
//! | `ManagedResource` | an `RwLock<Option<Arc<T>>>` cleared by the user when broken, or [`resource::ImmutableResource`] |
//! | `RefResource` | [`Arc`](std::sync::Arc) and `Drop` (go-zero's `Clean` without `Use` drives its count to −1 and never cleans) |
//!
//! # Metrics
//!
//! With the feature `metrics`, [`SingleFlight`](singleflight::SingleFlight),
//! [`Limit`](limit::Limit) and [`Pool`](pool::Pool) record through the
//! [`metrics`](https://docs.rs/metrics) facade into whatever recorder is installed, labelled
//! with their name (keys never become labels):
//!
//! | metric | type | labels | counts / shows |
//! |---|---|---|---|
//! | `keel_singleflight_calls_total` | counter | `name`, `role` = `leader` \| `follower` | each call that ran its function (a follower that takes over from a cancelled async leader runs its own, and counts as a leader too) / that got another call's result (its value, its error or `LeaderPanicked`); a caller dropped while it waits is neither |
//! | `keel_limit_acquires_total` | counter | `name`, `result` = `acquired` \| `rejected` \| `timeout` | each permit handed to a caller; each `try_acquire*` that found none; each `acquire_timeout*` that gave up (a zero timeout too); an `acquire_async` future dropped before it resolved is none of them |
//! | `keel_limit_in_use` | gauge | `name` | permits out of the limit: `capacity - available()` whenever no acquisition or release is under way |
//! | `keel_pool_gets_total` | counter | `name`, `result` = `reused` \| `created` \| `rejected` \| `timeout` \| `error` | each `get*`: an idle object handed out, a new one created, a `try_get` with nothing idle and no room, a `get_timeout*` that gave up, a factory that failed or panicked; a `get_async` future dropped before it resolved is none of them |
//! | `keel_pool_idle`, `keel_pool_in_use` | gauge | `name` | [`Pool::idle`](pool::Pool::idle), [`Pool::in_use`](pool::Pool::in_use) (out, being created or being destroyed), set under the pool's lock at every change |
//! | `keel_pool_wait_duration_seconds` | histogram | `name` | each `get*` that had to wait: how long, whatever ended the wait (an object, a slot, a timeout, the future dropped), on the pool's [clock](pool::Builder::clock) |
//!
//! Names: [`SingleFlight::with_name`](singleflight::SingleFlight::with_name),
//! [`Limit::with_name`](limit::Limit::with_name), [`pool::Builder::name`]; unnamed, they are
//! `singleflight`, `limit` and `pool`. [`SingleFlight::without_metrics`](singleflight::SingleFlight::without_metrics)
//! records nothing (keel-collection's cache uses it: its loads are `keel_cache_loads_total`).
//! [`LockedCalls`](locked::LockedCalls) and the resources record nothing.
//!
//! Each primitive registers its handles once, when it is built, with the recorder installed
//! at that moment: **install the recorder before building** (one built before records
//! nothing). Its operations then only touch those handles: no lock, no allocation, no label
//! lookup. Without the feature nothing is recorded and the hot paths compile to what they are
//! without it. The table of every keel metric is `METRICS.md` at the workspace root.
//!
//! # Features
//!
//! - `tokio`: timeouts on the async acquisitions (`Limit::acquire_timeout_async`,
//!   `Pool::get_timeout_async`).
//! - `metrics`: the metrics above.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod limit;
pub mod locked;
mod metrics;
pub mod pool;
pub mod resource;
pub mod singleflight;
mod sync;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
