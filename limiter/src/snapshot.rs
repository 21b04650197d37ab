//! [`TokenSnapshot`] and [`PeriodSnapshot`].

use std::time::Duration;

use crate::{FailurePolicy, Rate};

/// A token limiter's configuration and counters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenSnapshot {
    /// The limiter's name.
    pub name: String,
    /// The refill rate.
    pub rate: Rate,
    /// The bucket capacity.
    pub burst: u32,
    /// Keys held in memory (the rescue's, on Redis).
    pub keys: usize,
    /// What is decided while Redis fails.
    pub policy: FailurePolicy,
    /// Decisions the failure policy took instead of Redis.
    pub policy_decisions: u64,
    /// The Redis backend's health and counters, if the limiter is on Redis.
    #[cfg(feature = "redis")]
    pub redis: Option<crate::redis::RedisStats>,
}

/// A period limiter's configuration and counters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PeriodSnapshot {
    /// The limiter's name.
    pub name: String,
    /// Requests per key per window.
    pub quota: u32,
    /// The window length.
    pub period: Duration,
    /// Keys held in memory (the rescue's, on Redis).
    pub keys: usize,
    /// What is decided while Redis fails.
    pub policy: FailurePolicy,
    /// Decisions the failure policy took instead of Redis.
    pub policy_decisions: u64,
    /// The Redis backend's health and counters, if the limiter is on Redis.
    #[cfg(feature = "redis")]
    pub redis: Option<crate::redis::RedisStats>,
}
