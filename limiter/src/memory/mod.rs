//! The in-memory limiters: lock-free per-key words in sharded maps.

pub(crate) mod keyed;
#[cfg(feature = "redis")]
pub(crate) mod lease;
pub(crate) mod period;
pub(crate) mod token;
