//! A bloom filter on a Redis bitmap, shared by every instance: [`RedisBloom`] (go-zero's
//! `core/bloom`), to turn away lookups of keys that do not exist before they reach
//! [`RedisCache::take`](crate::RedisCache::take) and the database (cache penetration).
//!
//! The filter is one Redis string used as a bitmap. [`add`](RedisBloom::add) sets a key's
//! `k` bits and [`contains`](RedisBloom::contains) tests them, each in **one** Lua script
//! call (`EVALSHA`, loaded again on `NOSCRIPT`) with the bit offsets as arguments. The size
//! (`m` bits, `k` hashes) is derived from the expected number of items and the
//! false-positive rate, and the offsets of a key are computed, by keel-collection's
//! [`BloomParams`], exactly as its in-memory
//! [`BloomFilter`](keel_collection::bloom::BloomFilter) computes them: the same key sets
//! the same bits in both, in every process (fixed-key hashes; see
//! [`keel_collection::bloom`]).
//!
//! # In front of `take`
//!
//! ```no_run
//! use keel_rediscache::bloom::RedisBloom;
//! use keel_rediscache::{Connection, RedisCache};
//!
//! type Error = Box<dyn std::error::Error + Send + Sync>;
//!
//! # async fn select_user(id: u64) -> Result<Option<String>, std::io::Error> { Ok(None) }
//! # async fn insert_user(id: u64, name: &str) -> Result<(), std::io::Error> { Ok(()) }
//! /// The user `id`, or `None` if there is no such row.
//! async fn user(cache: &RedisCache<String>, ids: &RedisBloom, id: u64) -> Result<Option<String>, Error> {
//!     let key = id.to_string();
//!     // Certainly no such row: neither Redis's cache entry nor the database is asked.
//!     if !ids.contains(&key).await? {
//!         return Ok(None);
//!     }
//!     // Probably a row (or one of the rare false positives, which the cache's
//!     // "not found" placeholders absorb).
//!     Ok(cache.take_optional(&key, || select_user(id)).await?)
//! }
//!
//! /// A new row: added to the filter before it becomes visible, so no reader ever
//! /// finds the row missing from the filter (a failed insert leaves a harmless positive).
//! async fn create_user(ids: &RedisBloom, id: u64, name: &str) -> Result<(), Error> {
//!     ids.add(&id.to_string()).await?;
//!     insert_user(id, name).await?;
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Error> {
//! let client = redis::Client::open("redis://127.0.0.1:6379/")?;
//! let connection = Connection::single(client.clone()).await?;
//! let cache: RedisCache<String> = RedisCache::builder("users", connection.clone())
//!     .subscriber(client)
//!     .build()?;
//! // 10 million ids at 0.1% false positives: 143.8 million bits (17 MiB in Redis), 10 hashes.
//! let ids = RedisBloom::new(connection, "user-ids", 10_000_000, 0.001)?;
//! // Fill it with every existing id (e.g. at deployment) before the first lookup.
//! create_user(&ids, 7, "ada").await?;
//! let _nobody = user(&cache, &ids, 8).await?; // None: almost always without a query
//! # Ok(()) }
//! ```
//!
//! A bloom filter answers "certainly absent" or "probably present", so it must know every
//! key that exists: fill it before putting it in front of the cache, and add each new key
//! before the row is visible. Keys cannot be removed (a deleted row stays "probably
//! present"). Every process must use the same name, expected items and rate for one
//! filter (other sizes would test other bits), and the same key type (`"7"` and `7u64` are
//! different keys). When Redis fails, `contains` returns the error: propagate it, or fail
//! open with `.unwrap_or(true)` and let the cache decide.
//!
//! # Bounds
//!
//! Those of [`BloomParams::new`]: at least one expected item, a rate in `(0, 1)`, at most
//! [`MAX_BITS`] = 2³² bits (512 MiB: the largest bitmap Redis's `SETBIT` addresses).
//! Redis allocates the bitmap up to the highest bit set, so after the first adds the key
//! holds about `m / 8` bytes. The key has no expiry.
//!
//! # Differences from go-zero
//!
//! go-zero's `bloom.New(store, key, bits)` is sized by hand in bits with 14 hashes fixed,
//! and hashes with MurmurHash3; here the size follows from the items and the rate, and
//! the positions are those of the in-memory filter. Both use one Lua script per
//! operation; `add` also answers whether the key was certainly new.

use std::fmt;
use std::hash::Hash;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionLike;

pub use keel_collection::bloom::{BloomConfigError, BloomParams, MAX_BITS};

use crate::conn::Connection;
use crate::error::{RedisError, RedisErrorKind};

/// Sets the bits at the offsets `ARGV` of the bitmap `KEYS[1]`; 1 if one of them was not
/// set yet (the key was certainly new), else 0.
const ADD: &str = r"
local fresh = 0
for i = 1, #ARGV do
  if redis.call('SETBIT', KEYS[1], ARGV[i], 1) == 0 then
    fresh = 1
  end
end
return fresh
";

/// 1 if every bit at the offsets `ARGV` of the bitmap `KEYS[1]` is set; 0 at the first
/// one that is not.
const CONTAINS: &str = r"
for i = 1, #ARGV do
  if redis.call('GETBIT', KEYS[1], ARGV[i]) == 0 then
    return 0
  end
end
return 1
";

static ADD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ADD));
static CONTAINS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CONTAINS));

/// A bloom filter on a Redis bitmap, shared by every instance that uses the same name,
/// size and Redis. See the [module docs](self).
///
/// `C` is the connection: the crate's [`Connection`] (one server or a cluster), or any
/// clonable async redis connection (a [`ConnectionManager`](redis::aio::ConnectionManager),
/// a [`ClusterConnection`](redis::cluster_async::ClusterConnection), a
/// [`MultiplexedConnection`](redis::aio::MultiplexedConnection)). The filter is one key,
/// `{name}:bloom`: its hash tag keeps it (trivially) on one cluster node whatever the
/// name's suffixes.
///
/// Cheap to clone (it clones the connection handle); `&self` methods.
#[derive(Clone)]
pub struct RedisBloom<C = Connection> {
    connection: C,
    key: String,
    params: BloomParams,
    timeout: Option<Duration>,
}

impl<C> RedisBloom<C> {
    /// A filter named `name` for `expected_items` items at `false_positive_rate`, sized as
    /// [`BloomParams::new`] sizes it. Sends nothing to Redis.
    ///
    /// # Errors
    ///
    /// The [`BloomConfigError`] of [`BloomParams::new`] (0 items, a rate outside `(0, 1)`,
    /// more than [`MAX_BITS`] bits).
    pub fn new(
        connection: C,
        name: &str,
        expected_items: u64,
        false_positive_rate: f64,
    ) -> Result<Self, BloomConfigError> {
        let params = BloomParams::new(expected_items, false_positive_rate)?;
        Ok(Self::with_params(connection, name, params))
    }

    /// A filter named `name` of the size `params` gives (that of an in-memory
    /// [`BloomFilter`](keel_collection::bloom::BloomFilter), say).
    pub fn with_params(connection: C, name: &str, params: BloomParams) -> Self {
        RedisBloom {
            connection,
            key: format!("{{{name}}}:bloom"),
            params,
            timeout: None,
        }
    }

    /// Bounds each operation by `timeout` (a [`RedisErrorKind::Timeout`] error after it);
    /// by default only the connection's own timeouts apply.
    ///
    /// [`RedisErrorKind::Timeout`]: crate::RedisErrorKind::Timeout
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The Redis key of the bitmap: `{name}:bloom`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The size: `m` bits, `k` hashes.
    pub fn params(&self) -> BloomParams {
        self.params
    }
}

impl<C: ConnectionLike + Clone + Send + Sync> RedisBloom<C> {
    /// Adds `key`: sets its `k` bits, in one script call. Whether one of them was not set
    /// yet, i.e. `key` was certainly not in the filter before (`false`: it probably was).
    ///
    /// # Errors
    ///
    /// The Redis error (or timeout); some of the bits may be set.
    pub async fn add<T: Hash + ?Sized>(&self, key: &T) -> Result<bool, RedisError> {
        self.run(&ADD_SCRIPT, key).await
    }

    /// Whether `key` may be in the filter, in one script call: `false` means it was
    /// certainly never added; `true` that it was, or is a false positive.
    ///
    /// # Errors
    ///
    /// The Redis error (or timeout): the filter could not answer.
    pub async fn contains<T: Hash + ?Sized>(&self, key: &T) -> Result<bool, RedisError> {
        self.run(&CONTAINS_SCRIPT, key).await
    }

    /// Empties the filter: deletes its key.
    ///
    /// # Errors
    ///
    /// The Redis error (or timeout).
    pub async fn clear(&self) -> Result<(), RedisError> {
        let mut connection = self.connection.clone();
        let mut del = redis::cmd("DEL");
        del.arg(&self.key);
        let call = del.query_async::<i64>(&mut connection);
        self.bounded(call).await.map(drop)
    }

    async fn run<T: Hash + ?Sized>(&self, script: &Script, key: &T) -> Result<bool, RedisError> {
        let mut invocation = script.key(&self.key);
        for position in self.params.positions(key) {
            invocation.arg(position);
        }
        let mut connection = self.connection.clone();
        let call = invocation.invoke_async::<i64>(&mut connection);
        match self.bounded(call).await? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(RedisError::new(
                RedisErrorKind::UnexpectedReply,
                format!("the bloom script answered {other}"),
            )),
        }
    }

    async fn bounded<R>(
        &self,
        call: impl Future<Output = redis::RedisResult<R>>,
    ) -> Result<R, RedisError> {
        let result = match self.timeout {
            Some(after) => tokio::time::timeout(after, call)
                .await
                .map_err(|_| RedisError::timeout(after))?,
            None => call.await,
        };
        result.map_err(|e| {
            if e.kind() == redis::ErrorKind::Extension {
                // An error reply the client library has no kind for (WRONGTYPE at the
                // key, say): the server's answer, not a connection failure.
                RedisError::new(RedisErrorKind::Server, e.to_string())
            } else {
                RedisError::from_redis(&e)
            }
        })
    }
}

impl<C> fmt::Debug for RedisBloom<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBloom")
            .field("key", &self.key)
            .field("bits", &self.params.bits())
            .field("hashes", &self.params.hashes())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
