//! [`FailurePolicy`]: what a Redis-backed limiter decides when Redis cannot decide.

/// What a limiter backed by Redis decides when Redis cannot decide a request.
///
/// Errors never reach the caller as errors: they become the policy's decisions. When the
/// policy applies depends on whom the error concerns (the
/// [`redis` module docs](crate::redis#failures) list every error and its blame):
///
/// - **The server** (connection refused or lost, a timeout, an error the server answers
///   about itself: `READONLY`, `LOADING`, `BUSY`, `OOM`, ...): the whole limiter switches
///   to the policy on the first such error, and a probe (`PING` every 100 ms) switches it
///   back once Redis answers again. Every switch is counted in the snapshot and, with the
///   `tracing` feature, logged.
/// - **One key** (its value is not the limiter's: another type, a period counter at
///   `i64::MAX`, a corrupt token bucket; or it lives on another cluster node): the policy
///   answers that request only; every other key stays on Redis. Counted in
///   [`RedisStats::key_errors`](crate::redis::RedisStats::key_errors).
///
/// Either way every request the policy answers is counted in the snapshot's
/// `policy_decisions`.
///
/// ```
/// # #[cfg(feature = "redis")] {
/// use keel_limiter::redis::RedisStore;
/// use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, Rate, TokenLimiter};
/// use std::time::Duration;
///
/// // Nothing listens on port 1: every decision fails to connect.
/// let down = RedisStore::open("redis://127.0.0.1:1/")?.connect_timeout(Duration::from_millis(200));
/// let sms = PeriodLimiter::builder(5, Duration::from_secs(86_400))
///     .redis(down.clone(), "sms")
///     .failure_policy(FailurePolicy::FailClosed)
///     .build()?;
/// // FailClosed: `take` answers an error, not a `PeriodDecision`.
/// assert_eq!(sms.take("alice"), Err(Denied::Unavailable));
///
/// let api = TokenLimiter::builder(Rate::per_second(100), 20)
///     .redis(down, "api")
///     .failure_policy(FailurePolicy::FailOpen)
///     .build()?;
/// assert_eq!(api.allow_key_n("203.0.113.7", 1), Ok(()));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Decide with an in-process limiter of the same configuration (go-zero's rescue). Each
    /// instance then enforces the limit on its own, so the cluster-wide rate is multiplied
    /// by the number of instances until Redis is back (for a bad key, until the key is
    /// repaired or deleted).
    #[default]
    Rescue,
    /// Allow every request: the token limiter answers `Ok(())`, the period limiter's
    /// `take` a [`PeriodDecision`](crate::PeriodDecision) of
    /// [`PeriodState::Allowed`](crate::PeriodState::Allowed) with a zero `resets_in`.
    FailOpen,
    /// Refuse every request with [`Denied::Unavailable`](crate::Denied::Unavailable)
    /// (HTTP 503, gRPC `UNAVAILABLE`; not a rate-limit refusal): the token limiter's
    /// `allow_n` / `allow_key_n` and the period limiter's `take` / `take_async` all return
    /// `Err(Denied::Unavailable)` (`take` does not answer `OverQuota`); `allow` and
    /// `allow_key` answer `false`.
    FailClosed,
}
