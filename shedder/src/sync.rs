//! The atomics of the lock-free state (the in-flight stripes, the in-flight average and
//! the last refusal):
//! loom's in this crate's own unit tests under `--cfg loom`, std's everywhere else.
//!
//! `all(test, loom)` rather than plain `loom`, as in keel-rollingwindow: integration and doc
//! tests link the library built without `cfg(test)`, so under `--cfg loom` they still get
//! std atomics and run normally while the `loom_*` unit tests run inside loom models.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering, fence};
