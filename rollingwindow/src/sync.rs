//! The atomics the lock-free parts use: loom's under `--cfg loom`, std's otherwise.
//!
//! Only the per-bucket publication protocol ([`crate::stripe`]) and the bucket fields go
//! through here; the thread registry and the lazily allocated stripe table are plain std and
//! are not modelled by loom.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
