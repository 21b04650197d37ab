//! Atomics for the decision cache: loom's in this crate's own unit tests under `--cfg loom`,
//! std's everywhere else (see keel-rollingwindow's `sync.rs` for why `all(test, loom)`).

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
