//! keel-rediscache: a two-tier cache-aside cache for database reads across instances
//! (go-zero's `core/stores/cache`, made multi-instance).
//!
//! Work in progress (issue 19); the crate docs are completed below.

#![deny(missing_docs)]

pub mod bloom;

mod cache;
mod clock;
mod codec;
mod config;
mod conn;
mod envelope;
mod error;
mod invalidate;
mod link;
mod policy;
mod retry;
mod stats;
mod take;

pub use cache::RedisCache;
pub use clock::UnixClock;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, CodecError, Postcard};
pub use config::{
    Builder, DEFAULT_JITTER, DEFAULT_NOT_FOUND_TTL, DEFAULT_TTL, MAX_DELETE_ATTEMPTS, MAX_LEASE,
    MAX_TIMEOUT, MAX_TTL,
};
pub use conn::Connection;
pub use error::{ConfigError, DelError, RedisError, RedisErrorKind, SetError, TakeError};
pub use policy::FailurePolicy;
pub use stats::Stats;
