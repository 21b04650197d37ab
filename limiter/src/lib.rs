//! Rate limiters, go-zero's `limit` package: a token bucket and a fixed-window counter,
//! in process memory or shared through Redis.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod memory;
mod period;
mod policy;
mod rate;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod snapshot;
mod state;
mod token;

pub use error::{ConfigError, Denied};
pub use period::{PeriodBuilder, PeriodLimiter};
pub use policy::FailurePolicy;
pub use rate::Rate;
pub use snapshot::{PeriodSnapshot, TokenSnapshot};
pub use state::{PeriodDecision, PeriodState};
pub use token::{TokenBuilder, TokenLimiter};
