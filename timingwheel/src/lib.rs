//! A keyed timing wheel: set, move, remove and drain millions of one-shot timers at O(1),
//! driven by a background thread, a tokio stream or by hand.
//!
//! Timers are addressed by your key (`K: Hash + Eq`) and carry a value `V`; setting a key
//! that has a timer replaces it. This is go-zero's `TimingWheel` (the expiry engine under
//! its cache), rebuilt as a hierarchical wheel in the manner of tokio's and Kafka's.
//!
//! ```
//! use keel_timex::ManualClock;
//! use keel_timingwheel::Builder;
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let wheel = Builder::new(Duration::from_secs(1)).clock(clock.clone()).build()?;
//! wheel.set(42u64, "expire me", Duration::from_secs(3))?;
//! wheel.set(7u64, "and me", Duration::from_secs(5))?;
//! wheel.remove(&7)?;
//!
//! clock.advance(Duration::from_secs(3));
//! assert_eq!(wheel.advance(), vec![(42, "expire me")]);
//! assert!(wheel.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Drivers
//!
//! One wheel, three ways to run it, chosen on the [`Builder`]:
//!
//! | build with | what fires timers | for |
//! |---|---|---|
//! | [`Builder::build`] | you, calling [`TimingWheel::advance`] | tests on a [`ManualClock`](keel_timex::ManualClock), your own event loop |
//! | [`Builder::spawn`] | a background thread calling your callback | go-zero's `NewTimingWheel(interval, slots, execute)` |
//! | `Builder::stream` (feature `tokio`) | an async `Stream` of `(key, value)` | tokio services |
//!
//! Every driver sleeps until the next occupied slot, not every tick, and uses one OS timer
//! (the thread's park timeout) or one tokio `Sleep` per wheel, never one per timer.
//!
//! # How it works
//!
//! Time is cut into ticks. Level 0 has one slot per tick for the next `slots` ticks; each
//! level above has slots `slots` times as wide. A timer sits in the lowest level whose slot
//! still tells its deadline apart from the present; when a higher slot comes due, its
//! timers move down. Per level, a 64-bit map of occupied slots finds the next due slot with
//! one rotate and one `trailing_zeros`. Timers live in a slab (32 bytes for `u64` keys and
//! values) with the slot lists threaded through it, found by key through a hash index of
//! 4-byte slab indices in cache-line groups of 12 (about 6 bytes per timer; it doubles
//! when the slab does): about 40 bytes per `u64 -> u64` timer at a million timers. Nothing
//! is allocated per timer; when three quarters of the slab are free, the live timers are
//! compacted and the memory is given back.
//!
//! # Differences from go-zero
//!
//! - **Levels**, not laps: go-zero's single level counts each timer's remaining laps, so every
//!   tick walks a slot full of far-away timers. Here a tick's work is proportional to what
//!   comes due (plus the rare move down a level).
//! - **Timing bugs fixed**, each with a test: a moved timer fires once, at its new deadline
//!   (go-zero fires a timer moved below one tick at once on a new goroutine *and* again at
//!   the old time, and compares raw slot indices so a timer moved earlier after a wrap could
//!   fire a full turn late); `drain` forgets the keys (a later set fires); a missed tick
//!   is caught up from the clock instead of drifting late forever (#3619); `stop` is
//!   idempotent.
//! - **Deadlines from the clock**: a timer fires at the first tick at or after
//!   `now + delay` (never early, < 1 tick late). go-zero counts `floor(delay / interval)`
//!   ticks from whenever the operation reaches its loop, which can fire almost a tick early.
//!   A zero delay fires at the next tick's start, also when set exactly at a tick start
//!   (go-zero rejects delays ≤ 0 with `ErrArgument`; a `Duration` cannot be negative).
//! - **Synchronous operations**: `set`/`move_timer`/`remove` take a lock for O(1) work and
//!   return once applied (go-zero hands them to its loop goroutine over a channel and returns
//!   when accepted). Callbacks never run under the lock.
//! - **Errors are typed**: [`TimerError::Closed`] after `stop`, [`TimerError::DelayTooLong`]
//!   beyond [`TimingWheel::max_delay`], which is a promise: any delay up to it is accepted
//!   at any moment (go-zero's single level has no limit but pays for it on every tick).
//! - Same-tick callbacks of the thread driver run one after another, as in go-zero; the
//!   stream driver lets you spawn per item instead.
//!
//! # Metrics
//!
//! With the feature `metrics`, each wheel records through the [`metrics`](https://docs.rs/metrics)
//! facade, labelled with its [`Builder::name`] (default `"timingwheel"`; keys never become
//! labels):
//!
//! | metric | type | labels | shows |
//! |---|---|---|---|
//! | `keel_timingwheel_timers` | gauge | `name` | timers set and not yet fired or removed (0 once drained, stopped or dropped) |
//! | `keel_timingwheel_operations_total` | counter | `name`, `op` = `set` \| `move` \| `remove` \| `fire` | each applied `set` (new or replacing), `move_timer` and `remove` that found the key's timer, and each expiry handed out by any driver |
//!
//! The handles are registered when the wheel is built (`build`, `spawn`, `stream`), with
//! the recorder installed at that moment: **install the recorder before building** (a wheel
//! built before records nothing). Operations then only touch those handles, under the lock
//! they already take. Without the feature nothing is recorded and nothing is compiled in.
//! The whole table of keel's metrics is `METRICS.md` at the workspace root.
//!
//! # Features
//!
//! - `tokio`: [`Builder::stream`] and `Expirations`.
//! - `metrics`: the metrics above.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod builder;
mod core;
mod error;
mod metrics;
mod shared;
#[cfg(feature = "tokio")]
mod stream;
mod thread_driver;
mod wheel;

pub use builder::Builder;
pub use error::{ConfigError, TimerError};
#[cfg(feature = "tokio")]
pub use stream::Expirations;
pub use wheel::TimingWheel;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
