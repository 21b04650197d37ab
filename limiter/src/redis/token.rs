//! [`RedisToken`]: token buckets on Redis.

use std::sync::Arc;
use std::time::Duration;

use redis::{ScriptInvocation, Value};

use super::health::Backend;
use super::scripts::TOKEN_SCRIPT;
use super::{BackendError, RedisStats, RedisStore, int, redis_key};
use crate::{Denied, Rate};

/// The longest TTL set on a bucket: 100 years (a bucket that takes longer than 50 years
/// to fill would be forgotten, i.e. refilled, after this).
const MAX_TTL_MS: u128 = 100 * 365 * 24 * 3600 * 1000;

pub(crate) struct RedisToken {
    backend: Arc<Backend>,
    prefix: String,
    /// Tokens per period.
    per: u32,
    /// The period in microseconds, as the script reads it (a float).
    period_us: String,
    burst: u32,
    ttl_ms: u64,
}

impl RedisToken {
    pub(crate) fn new(store: RedisStore, prefix: String, rate: Rate, burst: u32) -> RedisToken {
        let period_us = rate.period().as_nanos() as f64 / 1000.0;
        RedisToken {
            backend: Backend::new(store, prefix.clone()),
            prefix,
            per: rate.tokens(),
            period_us: period_us.to_string(),
            burst,
            ttl_ms: ttl_ms(rate, burst),
        }
    }

    #[inline]
    pub(crate) fn is_healthy(&self) -> bool {
        self.backend.is_healthy()
    }

    pub(crate) fn take(&self, key: &str, n: u32) -> Result<Result<(), Denied>, BackendError> {
        if n > self.burst {
            return Ok(Err(self.never_fits(n)));
        }
        let key = redis_key(&self.prefix, key);
        let script = self.invocation(&key, n);
        let reply = self.backend.store.eval(&script);
        self.backend.record(reply.and_then(|v| decision(&v)))
    }

    pub(crate) async fn take_async(
        &self,
        key: &str,
        n: u32,
    ) -> Result<Result<(), Denied>, BackendError> {
        if n > self.burst {
            return Ok(Err(self.never_fits(n)));
        }
        let key = redis_key(&self.prefix, key);
        let script = self.invocation(&key, n);
        let reply = self.backend.store.eval_async(&script).await;
        self.backend.record(reply.and_then(|v| decision(&v)))
    }

    /// A lease: takes at least `n` and up to `most` tokens (`n ≤ most ≤ burst`), answering
    /// how many were taken.
    pub(crate) fn take_lease(
        &self,
        key: &str,
        n: u32,
        most: u32,
    ) -> Result<Result<u32, Denied>, BackendError> {
        let key = redis_key(&self.prefix, key);
        let mut script = self.invocation(&key, n);
        script.arg(most);
        let reply = self.backend.store.eval(&script);
        self.backend.record(reply.and_then(|v| lease(&v)))
    }

    /// [`take_lease`](Self::take_lease) on the async connection.
    pub(crate) async fn take_lease_async(
        &self,
        key: &str,
        n: u32,
        most: u32,
    ) -> Result<Result<u32, Denied>, BackendError> {
        let key = redis_key(&self.prefix, key);
        let mut script = self.invocation(&key, n);
        script.arg(most);
        let reply = self.backend.store.eval_async(&script).await;
        self.backend.record(reply.and_then(|v| lease(&v)))
    }

    pub(crate) fn stats(&self) -> RedisStats {
        self.backend.stats()
    }

    fn never_fits(&self, n: u32) -> Denied {
        Denied::NeverFits {
            n,
            burst: self.burst,
        }
    }

    /// The script's call. No client time is sent: the script reads the server's clock.
    fn invocation(&self, key: &str, n: u32) -> ScriptInvocation<'static> {
        let mut script = TOKEN_SCRIPT.key(key);
        script
            .arg(self.per)
            .arg(&self.period_us)
            .arg(self.burst)
            .arg(n)
            .arg(self.ttl_ms);
        script
    }
}

/// Twice the time an empty bucket takes to fill, in whole milliseconds rounded up, at
/// least 1 ms (go-zero's `floor(2 × burst / rate)` seconds is 0 when `2 × burst < rate`,
/// and its `SETEX` then fails on every call).
fn ttl_ms(rate: Rate, burst: u32) -> u64 {
    let fill_ns = rate.period().as_nanos() * u128::from(burst) / u128::from(rate.tokens().max(1));
    let ms = (2 * fill_ns).div_ceil(1_000_000).clamp(1, MAX_TTL_MS);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// `{1, 0, taken}`: allowed; `{0, µs, 0}`: refused for that long.
fn decision(reply: &Value) -> Result<Result<(), Denied>, BackendError> {
    lease(reply).map(|d| d.map(drop))
}

/// The reply with the number of tokens taken.
fn lease(reply: &Value) -> Result<Result<u32, Denied>, BackendError> {
    if let Value::Array(items) = reply
        && let [allowed, wait, taken] = items.as_slice()
        && let (Some(allowed), Some(wait), Some(taken)) = (int(allowed), int(wait), int(taken))
    {
        match allowed {
            1 => {
                if let Ok(taken) = u32::try_from(taken) {
                    return Ok(Ok(taken));
                }
            }
            0 => {
                return Ok(Err(Denied::Limited {
                    retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
                }));
            }
            _ => {}
        }
    }
    Err(BackendError::unexpected("token bucket script", reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_is_twice_the_fill_time_and_never_zero() {
        // go-zero: 10 / 5 s = 2 s fill, 4 s TTL.
        assert_eq!(ttl_ms(Rate::per_second(5), 10), 4000);
        // go-zero's zero TTL (burst × 2 < rate): 1 / 100 s fill, 20 ms here.
        assert_eq!(ttl_ms(Rate::per_second(100), 1), 20);
        // Sub-millisecond fill: rounded up to 1 ms.
        assert_eq!(ttl_ms(Rate::per_second(1_000_000), 1), 1);
        assert_eq!(
            ttl_ms(Rate::new(1, Duration::from_secs(u64::MAX / 4)), u32::MAX),
            { u64::try_from(MAX_TTL_MS).unwrap() }
        );
    }

    #[test]
    fn replies_are_decoded_or_refused() {
        let allowed = Value::Array(vec![Value::Int(1), Value::Int(0), Value::Int(1)]);
        assert_eq!(decision(&allowed), Ok(Ok(())));
        let leased = Value::Array(vec![Value::Int(1), Value::Int(0), Value::Int(40)]);
        assert_eq!(lease(&leased), Ok(Ok(40)));
        let refused = Value::Array(vec![Value::Int(0), Value::Int(1500), Value::Int(0)]);
        assert_eq!(
            decision(&refused),
            Ok(Err(Denied::Limited {
                retry_after: Duration::from_micros(1500)
            }))
        );
        for odd in [
            Value::Nil,
            Value::Int(1),
            Value::Array(vec![Value::Int(2), Value::Int(0), Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Int(0)]),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::BulkString(b"1".to_vec()), Value::Int(0)]),
        ] {
            let e = decision(&odd).unwrap_err();
            assert_eq!(e.kind, super::super::RedisErrorKind::UnexpectedReply);
        }
    }
}
