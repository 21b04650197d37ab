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
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod limit;
pub mod locked;
pub mod pool;
pub mod resource;
pub mod singleflight;
mod sync;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
