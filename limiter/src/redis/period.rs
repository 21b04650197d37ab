//! [`RedisPeriod`]: fixed-window counters on Redis.

use std::sync::Arc;
use std::time::Duration;

use redis::{ScriptInvocation, Value};

use super::health::Backend;
use super::scripts::PERIOD_SCRIPT;
use super::{BackendError, RedisStats, RedisStore, int, redis_key};
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
    pub(crate) fn new(
        store: RedisStore,
        prefix: String,
        quota: u32,
        period: Duration,
        align_offset_ms: Option<i64>,
    ) -> RedisPeriod {
        RedisPeriod {
            backend: Backend::new(store, prefix.clone()),
            prefix,
            quota,
            period_ms: u64::try_from(period.as_millis())
                .unwrap_or(u64::MAX)
                .clamp(1, MAX_PERIOD_MS),
            align: align_offset_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        }
    }

    #[inline]
    pub(crate) fn is_healthy(&self) -> bool {
        self.backend.is_healthy()
    }

    pub(crate) fn take(&self, key: &str) -> Result<PeriodDecision, BackendError> {
        let key = redis_key(&self.prefix, key);
        let script = self.invocation(&key);
        let reply = self.backend.store.eval(&script);
        self.backend.record(reply.and_then(|v| self.decision(&v)))
    }

    pub(crate) async fn take_async(&self, key: &str) -> Result<PeriodDecision, BackendError> {
        let key = redis_key(&self.prefix, key);
        let script = self.invocation(&key);
        let reply = self.backend.store.eval_async(&script).await;
        self.backend.record(reply.and_then(|v| self.decision(&v)))
    }

    pub(crate) fn stats(&self) -> RedisStats {
        self.backend.stats()
    }

    /// The script's call. No client time is sent: aligned windows read the server's clock.
    fn invocation(&self, key: &str) -> ScriptInvocation<'static> {
        let mut script = PERIOD_SCRIPT.key(key);
        script.arg(self.period_ms).arg(&self.align);
        script
    }

    /// `{count, ms left in the window}`.
    fn decision(&self, reply: &Value) -> Result<PeriodDecision, BackendError> {
        if let Value::Array(items) = reply
            && let [count, left] = items.as_slice()
            && let (Some(count), Some(left)) = (int(count), int(left))
            && count >= 1
        {
            let state = match count.cmp(&i64::from(self.quota)) {
                std::cmp::Ordering::Less => PeriodState::Allowed,
                std::cmp::Ordering::Equal => PeriodState::HitQuota,
                std::cmp::Ordering::Greater => PeriodState::OverQuota,
            };
            return Ok(PeriodDecision {
                state,
                resets_in: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            });
        }
        Err(BackendError::unexpected("period script", reply))
    }
}
