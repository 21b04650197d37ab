//! [`RedisToken`]: token buckets on Redis.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::health::Backend;
use super::scripts::{Call, TOKEN_SCRIPT};
use super::{BackendError, RedisStats, RedisStore, int, redis_key};
use crate::metrics::{Kind, RedisMetrics};
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
    /// A limiter's buckets under `prefix`; `name` is the limiter's (its metrics' label).
    pub(crate) fn new(
        store: RedisStore,
        prefix: String,
        rate: Rate,
        burst: u32,
        name: &str,
    ) -> RedisToken {
        let period_us = rate.period().as_nanos() as f64 / 1000.0;
        RedisToken {
            backend: Backend::new(store, prefix.clone(), RedisMetrics::new(name, Kind::Token)),
            prefix,
            per: rate.tokens(),
            period_us: period_us.to_string(),
            burst,
            ttl_ms: ttl_ms(rate, burst),
        }
    }

    /// Whether `key`'s decisions go to Redis now.
    #[inline]
    pub(crate) fn is_healthy(&self, key: &str) -> bool {
        self.backend.is_healthy(|| redis_key(&self.prefix, key))
    }

    pub(crate) fn take(&self, key: &str, n: u32) -> Result<Result<(), Denied>, BackendError> {
        if n > self.burst {
            return Ok(Err(self.never_fits(n)));
        }
        let call = self.call(key, n);
        let reply = self.backend.eval(&call);
        self.backend
            .record(call.key(), reply.and_then(|v| decision(&v, n, self.burst)))
    }

    pub(crate) async fn take_async(
        &self,
        key: &str,
        n: u32,
    ) -> Result<Result<(), Denied>, BackendError> {
        if n > self.burst {
            return Ok(Err(self.never_fits(n)));
        }
        let call = self.call(key, n);
        let reply = self.backend.eval_async(&call).await;
        self.backend
            .record(call.key(), reply.and_then(|v| decision(&v, n, self.burst)))
    }

    /// A lease: takes at least `n` and up to `most` tokens (`n ≤ most ≤ burst`), answering
    /// how many were taken.
    pub(crate) fn take_lease(
        &self,
        key: &str,
        n: u32,
        most: u32,
    ) -> Result<Result<u32, Denied>, BackendError> {
        let mut call = self.call(key, n);
        call.arg(most);
        let reply = self.backend.eval(&call);
        self.backend
            .record(call.key(), reply.and_then(|v| lease(&v, n, self.burst)))
    }

    /// [`take_lease`](Self::take_lease) on the async connection.
    pub(crate) async fn take_lease_async(
        &self,
        key: &str,
        n: u32,
        most: u32,
    ) -> Result<Result<u32, Denied>, BackendError> {
        let mut call = self.call(key, n);
        call.arg(most);
        let reply = self.backend.eval_async(&call).await;
        self.backend
            .record(call.key(), reply.and_then(|v| lease(&v, n, self.burst)))
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

    /// The script's call on `key`'s bucket. No client time is sent: the script reads the
    /// server's clock.
    fn call(&self, key: &str, n: u32) -> Call {
        let mut call = TOKEN_SCRIPT.call(redis_key(&self.prefix, key));
        call.arg(self.per)
            .arg(&self.period_us)
            .arg(self.burst)
            .arg(n)
            .arg(self.ttl_ms);
        call
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
fn decision(reply: &Value, n: u32, burst: u32) -> Result<Result<(), Denied>, BackendError> {
    lease(reply, n, burst).map(|d| d.map(drop))
}

/// The reply with the number of tokens taken. Anything the script cannot answer for a
/// request of `n` tokens from a bucket of `burst` (a grant outside `n..=burst`, a negative
/// wait, another shape) is an unexpected reply: only a value the limiter did not write
/// can produce it (a NaN or an infinity arrives as `i64::MIN`).
fn lease(reply: &Value, n: u32, burst: u32) -> Result<Result<u32, Denied>, BackendError> {
    if let Value::Array(items) = reply
        && let [allowed, wait, taken] = items.as_slice()
        && let (Some(allowed), Some(wait), Some(taken)) = (int(allowed), int(wait), int(taken))
    {
        match (allowed, u64::try_from(wait), u32::try_from(taken)) {
            (1, Ok(0), Ok(taken)) if (n..=burst).contains(&taken) => return Ok(Ok(taken)),
            (0, Ok(wait), Ok(0)) => {
                return Ok(Err(Denied::Limited {
                    retry_after: Duration::from_micros(wait),
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
        let ints = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Int(i)).collect());
        assert_eq!(decision(&ints(&[1, 0, 1]), 1, 10), Ok(Ok(())));
        assert_eq!(lease(&ints(&[1, 0, 40]), 1, 40), Ok(Ok(40)));
        assert_eq!(lease(&ints(&[1, 0, 3]), 3, 10), Ok(Ok(3)));
        assert_eq!(
            decision(&ints(&[0, 1500, 0]), 1, 10),
            Ok(Err(Denied::Limited {
                retry_after: Duration::from_micros(1500)
            }))
        );
        for odd in [
            Value::Nil,
            Value::Int(1),
            ints(&[2, 0, 1]),
            ints(&[1, 0]),
            ints(&[1]),
            Value::Array(vec![Value::BulkString(b"1".to_vec()), Value::Int(0)]),
            // A refusal with a negative wait: a bucket at -inf tokens (i64::MIN is what
            // Redis makes of a NaN or infinite Lua number).
            ints(&[0, i64::MIN, 0]),
            ints(&[0, -1, 0]),
            // A grant of fewer than n tokens, more than the bucket holds, or negative.
            ints(&[1, 0, 0]),
            ints(&[1, 0, 11]),
            ints(&[1, 0, -1]),
            // A grant with a wait, a refusal that took tokens.
            ints(&[1, 5, 1]),
            ints(&[0, 5, 1]),
        ] {
            let e = decision(&odd, 1, 10).unwrap_err();
            assert_eq!(
                e.kind,
                super::super::RedisErrorKind::UnexpectedReply,
                "{odd:?}"
            );
            assert!(e.kind.is_key_local());
        }
        assert!(lease(&ints(&[1, 0, 2]), 3, 10).is_err(), "fewer than n");
    }
}
