//! [`Link`]: the Redis side of one instance: keys, commands bounded by the timeout, the
//! scripts and the invalidation channel. Shared by the cache and its background tasks.

use std::sync::Arc;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Cmd, FromRedisValue, Script};
use serde::{Deserialize, Serialize};

use crate::conn::Connection;
use crate::error::RedisError;
use crate::metrics::Metrics;
use crate::stats::Counters;

/// Deletes the lease if it still holds the caller's token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end \
         return 0",
    )
});

/// Writes the value (KEYS[2]) only while the lease (KEYS[1]) holds the caller's token, and
/// releases the lease: 1 if written, 0 if the lease was lost.
static FENCED_WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end \
         redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) \
         redis.call('DEL', KEYS[1]) \
         return 1",
    )
});

/// `set`: writes the value and deletes the lease, so that a rebuild in flight (which read
/// the database before this write) cannot overwrite it.
static WRITE_AND_FENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) \
         redis.call('DEL', KEYS[1]) \
         return 1",
    )
});

/// Deletes a value only if it still is the (corrupt) bytes the caller read.
static DELETE_IF_EQUAL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end \
         return 0",
    )
});

/// An invalidation message: the keys whose local copies are stale, and who sent it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) origin: u64,
    pub(crate) keys: Vec<String>,
}

pub(crate) struct Link {
    pub(crate) conn: Connection,
    pub(crate) timeout: Duration,
    pub(crate) stats: Arc<Counters>,
    /// The metric handles (feature `metrics`; empty without it), recorded next to `stats`.
    pub(crate) metrics: Metrics,
    pub(crate) name: String,
    pub(crate) channel: String,
    pub(crate) instance: u64,
}

/// The keys of one cache key: the value and the lease share the hash tag `{name:key}`, so
/// they live on one cluster slot and one script may touch both.
pub(crate) struct Keys {
    pub(crate) value: String,
    pub(crate) lease: String,
}

impl Link {
    pub(crate) fn keys(&self, key: &str) -> Keys {
        let value = format!("{{{}:{}}}", self.name, key);
        let lease = format!("{value}:lease");
        Keys { value, lease }
    }

    /// Runs a command, bounded by the timeout; every failure is counted.
    pub(crate) async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        let outcome = tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await;
        self.settle(outcome)
    }

    async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, RedisError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.conn.clone();
        let outcome =
            tokio::time::timeout(self.timeout, invocation.invoke_async::<T>(&mut conn)).await;
        self.settle(outcome)
    }

    fn settle<T>(
        &self,
        outcome: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, RedisError> {
        let result = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => RedisError::from_redis(&e),
            Err(_) => RedisError::timeout(self.timeout),
        };
        Counters::add(&self.stats.redis_errors);
        self.metrics.redis_error(result.kind());
        Err(result)
    }

    pub(crate) async fn get(&self, keys: &Keys) -> Result<Option<Vec<u8>>, RedisError> {
        self.run(redis::cmd("GET").arg(&keys.value)).await
    }

    /// `SET lease token NX PX lease`: whether this caller got the lease.
    pub(crate) async fn acquire(
        &self,
        keys: &Keys,
        token: &str,
        lease: Duration,
    ) -> Result<bool, RedisError> {
        let reply: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(&keys.lease)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(lease)),
            )
            .await?;
        Ok(reply.is_some())
    }

    pub(crate) async fn release(&self, keys: &Keys, token: &str) -> Result<(), RedisError> {
        self.script::<i64>(&RELEASE, &[&keys.lease], &[token.as_bytes()])
            .await
            .map(drop)
    }

    pub(crate) async fn fenced_write(
        &self,
        keys: &Keys,
        token: &str,
        entry: &[u8],
        px: Duration,
    ) -> Result<bool, RedisError> {
        let px = millis(px).to_string();
        let written: i64 = self
            .script(
                &FENCED_WRITE,
                &[&keys.lease, &keys.value],
                &[token.as_bytes(), entry, px.as_bytes()],
            )
            .await?;
        Ok(written == 1)
    }

    pub(crate) async fn write(
        &self,
        keys: &Keys,
        entry: &[u8],
        px: Duration,
    ) -> Result<(), RedisError> {
        let px = millis(px).to_string();
        self.script::<i64>(
            &WRITE_AND_FENCE,
            &[&keys.lease, &keys.value],
            &[entry, px.as_bytes()],
        )
        .await
        .map(drop)
    }

    /// Deletes the value and the lease (a rebuild in flight then cannot write).
    pub(crate) async fn delete(&self, keys: &Keys) -> Result<(), RedisError> {
        self.run::<i64>(redis::cmd("DEL").arg(&keys.value).arg(&keys.lease))
            .await
            .map(drop)
    }

    pub(crate) async fn delete_if_equal(
        &self,
        keys: &Keys,
        bytes: &[u8],
    ) -> Result<(), RedisError> {
        self.script::<i64>(&DELETE_IF_EQUAL, &[&keys.value], &[bytes])
            .await
            .map(drop)
    }

    /// Tells every instance that `keys` changed.
    pub(crate) async fn publish(&self, keys: &[&str]) -> Result<(), RedisError> {
        let message = Message {
            origin: self.instance,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        };
        let payload = postcard::to_allocvec(&message).unwrap_or_default();
        self.run::<i64>(redis::cmd("PUBLISH").arg(&self.channel).arg(payload))
            .await?;
        Counters::add(&self.stats.invalidations_sent);
        self.metrics.invalidation_sent();
        Ok(())
    }
}

/// A duration in whole ms for `PX`, at least 1 (0 is refused by Redis).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
