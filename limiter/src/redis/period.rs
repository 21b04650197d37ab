//! [`RedisPeriod`]: fixed-window counters on Redis.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::health::Backend;
use super::scripts::{Call, PERIOD_SCRIPT};
use super::{BackendError, RedisStats, RedisStore, int, redis_key};
use crate::metrics::{Kind, RedisMetrics};
use crate::{PeriodDecision, PeriodState};

/// The longest window on Redis: 100 years (a key's TTL must fit Redis's clock; a longer
/// period is this one in practice).
const MAX_PERIOD_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

pub(crate) struct RedisPeriod {
    backend: Arc<Backend>,
    prefix: String,
    quota: u32,
    period_ms: u64,
    /// The alignment offset in ms, as the script reads it ("" for unaligned windows).
    align: String,
}

impl RedisPeriod {
    /// A limiter's counters under `prefix`; `name` is the limiter's (its metrics' label).
    pub(crate) fn new(
        store: RedisStore,
        prefix: String,
        quota: u32,
        period: Duration,
        align_offset_ms: Option<i64>,
        name: &str,
    ) -> RedisPeriod {
        RedisPeriod {
            backend: Backend::new(store, prefix.clone(), RedisMetrics::new(name, Kind::Period)),
            prefix,
            quota,
            period_ms: u64::try_from(period.as_millis())
                .unwrap_or(u64::MAX)
                .clamp(1, MAX_PERIOD_MS),
            align: align_offset_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        }
    }

    /// Whether `key`'s decisions go to Redis now.
    #[inline]
    pub(crate) fn is_healthy(&self, key: &str) -> bool {
        self.backend.is_healthy(|| redis_key(&self.prefix, key))
    }

    pub(crate) fn take(&self, key: &str) -> Result<PeriodDecision, BackendError> {
        let call = self.call(key);
        let reply = self.backend.eval(&call);
        self.backend
            .record(call.key(), reply.and_then(|v| decision(&v, self.quota)))
    }

    pub(crate) async fn take_async(&self, key: &str) -> Result<PeriodDecision, BackendError> {
        let call = self.call(key);
        let reply = self.backend.eval_async(&call).await;
        self.backend
            .record(call.key(), reply.and_then(|v| decision(&v, self.quota)))
    }

    pub(crate) fn stats(&self) -> RedisStats {
        self.backend.stats()
    }

    /// The script's call on `key`'s counter. No client time is sent: aligned windows read
    /// the server's clock.
    fn call(&self, key: &str) -> Call {
        let mut call = PERIOD_SCRIPT.call(redis_key(&self.prefix, key));
        call.arg(self.period_ms).arg(&self.align);
        call
    }
}

/// `{count, ms left in the window}`. A count below 1 (a counter someone set negative) or a
/// negative TTL cannot come from a counter the limiter wrote: an unexpected reply.
fn decision(reply: &Value, quota: u32) -> Result<PeriodDecision, BackendError> {
    if let Value::Array(items) = reply
        && let [count, left] = items.as_slice()
        && let (Some(count), Some(left)) = (int(count), int(left))
        && count >= 1
        && let Ok(left) = u64::try_from(left)
    {
        let state = match count.cmp(&i64::from(quota)) {
            std::cmp::Ordering::Less => PeriodState::Allowed,
            std::cmp::Ordering::Equal => PeriodState::HitQuota,
            std::cmp::Ordering::Greater => PeriodState::OverQuota,
        };
        return Ok(PeriodDecision {
            state,
            resets_in: Duration::from_millis(left),
        });
    }
    Err(BackendError::unexpected("period script", reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::RedisErrorKind;

    fn reply(count: i64, left: i64) -> Value {
        Value::Array(vec![Value::Int(count), Value::Int(left)])
    }

    #[test]
    fn replies_are_decoded_or_refused() {
        let d = decision(&reply(1, 1500), 2).unwrap();
        assert_eq!(
            (d.state, d.resets_in),
            (PeriodState::Allowed, Duration::from_millis(1500))
        );
        assert_eq!(
            decision(&reply(2, 0), 2).unwrap().state,
            PeriodState::HitQuota
        );
        assert_eq!(
            decision(&reply(i64::MAX, 9), 2).unwrap().state,
            PeriodState::OverQuota
        );
        for odd in [
            // A counter someone set to a negative number or zero before our INCRBY.
            reply(0, 1000),
            reply(-4, 1000),
            // A negative TTL (PTTL's -1 / -2 never leave the script).
            reply(1, -1),
            reply(1, -2),
            reply(1, i64::MIN),
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
            Value::Array(vec![Value::BulkString(b"1".to_vec()), Value::Int(5)]),
            Value::Array(vec![Value::Int(1), Value::Nil]),
        ] {
            let e = decision(&odd, 2).unwrap_err();
            assert_eq!(e.kind, RedisErrorKind::UnexpectedReply, "{odd:?}");
            assert!(e.kind.is_key_local());
        }
    }
}
