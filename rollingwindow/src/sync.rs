//! The atomics the lock-free parts use: loom's in the crate's own unit tests under
//! `--cfg loom`, std's everywhere else.
//!
//! `all(test, loom)` rather than plain `loom` (tokio's convention): integration tests and
//! doc tests link the library built without `cfg(test)`, so under
//! `RUSTFLAGS="--cfg loom" cargo test -p keel-rollingwindow` they still get std atomics and
//! run normally, while the `loom_*` unit tests run inside loom models.
//!
//! Only the per-bucket publication protocol ([`crate::stripe`]) and the bucket fields go
//! through here; the thread registry and the lazily allocated stripe table are plain std and
//! are not modelled by loom.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
