//! Helpers of the fault-injection tests: one body runs the sync or the async calls, and
//! reads what Redis holds.
#![allow(dead_code)]

use std::time::Duration;

use keel_limiter::redis::{RedisErrorKind, RedisStats};
use keel_limiter::{Denied, FailurePolicy, PeriodDecision, PeriodLimiter, TokenLimiter};

/// Which calls a test makes: `allow_key_n` / `take`, or their `_async` forms (the pooled
/// blocking connections, or the shared multiplexed one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Sync,
    Async,
}

pub(crate) const POLICIES: [FailurePolicy; 3] = [
    FailurePolicy::FailClosed,
    FailurePolicy::FailOpen,
    FailurePolicy::Rescue,
];

/// Takes `n` tokens from `key`'s bucket.
pub(crate) async fn allow(l: &TokenLimiter, mode: Mode, key: &str, n: u32) -> Result<(), Denied> {
    match mode {
        Mode::Sync => l.allow_key_n(key, n),
        Mode::Async => l.allow_key_n_async(key, n).await,
    }
}

/// Counts one request for `key`.
pub(crate) async fn take(
    l: &PeriodLimiter,
    mode: Mode,
    key: &str,
) -> Result<PeriodDecision, Denied> {
    match mode {
        Mode::Sync => l.take(key),
        Mode::Async => l.take_async(key).await,
    }
}

pub(crate) fn token_stats(l: &TokenLimiter) -> RedisStats {
    l.snapshot().redis.expect("on redis")
}

pub(crate) fn period_stats(l: &PeriodLimiter) -> RedisStats {
    l.snapshot().redis.expect("on redis")
}

/// The serialized value of `key` (`DUMP`), to check that nobody changed it.
pub(crate) fn dump(c: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("DUMP").arg(key).query(c).unwrap()
}

/// `key`'s remaining TTL in ms (`PTTL`: -1 none, -2 no key).
pub(crate) fn pttl(c: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(c).unwrap()
}

/// Only key errors of `kind`, `bad` of them, and `good` decisions: nothing switched.
#[track_caller]
pub(crate) fn assert_key_errors(s: &RedisStats, kind: RedisErrorKind, bad: u64, good: u64) {
    let what = format!("{s:?}");
    assert!(s.healthy, "one bad key never switches the limiter: {what}");
    assert_eq!(
        s.decisions, good,
        "the healthy keys' requests went to Redis: {what}"
    );
    assert_eq!(
        (s.errors, s.key_errors, s.server_errors),
        (bad, bad, 0),
        "{what}"
    );
    assert_eq!(s.errors_by_kind.of(kind), bad, "{what}");
    assert_eq!(s.errors_by_kind.total(), bad, "{what}");
    assert_eq!(
        (s.switches_to_fallback, s.switches_back, s.probes),
        (0, 0, 0),
        "no switch, no prober: {what}"
    );
    assert_eq!(s.last_error_kind, Some(kind), "{what}");
    assert!(kind.is_key_local());
}

/// Polls `cond` (async) every 5 ms until it holds; panics after `deadline`.
pub(crate) async fn until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + deadline;
    while !cond() {
        assert!(std::time::Instant::now() < end, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
