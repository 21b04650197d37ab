//! The rediscache suite's setups: the shared Redis, unique key names and their cleanup, and
//! keel-rediscache's and multi-tier-cache's caches built the same way.

pub mod stampede;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keel_rediscache::{Connection, RedisCache};
use multi_tier_cache::{CacheManager, CacheStrategy, L1Cache, L2Cache, MokaCacheConfig};

pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/";
pub const URL_ENV: &str = "KEEL_BENCH_REDIS_URL";

/// The Redis the suite and the stampede count use.
pub fn url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A client of `url` if the server answers `PING` within 1 s; otherwise why not.
pub async fn reachable(url: &str) -> Result<redis::Client, String> {
    let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!("{url}: no answer to PING within 1 s")),
    }
}

/// A name no other run uses.
pub fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("keel-bench-{what}-{}-{nanos}", std::process::id())
}

/// Deletes every key starting with one of `prefixes` (`SCAN MATCH prefix*`, then `DEL`).
pub async fn cleanup(client: &redis::Client, prefixes: &[String]) -> redis::RedisResult<usize> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut deleted = 0;
    for prefix in prefixes {
        let pattern = format!("{prefix}*");
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                deleted += redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<usize>(&mut conn)
                    .await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(deleted)
}

/// The prefixes of every key a cache named `name` writes.
pub fn prefixes(name: &str) -> Vec<String> {
    vec![format!("{{{name}"), name.to_owned()]
}

/// keel-rediscache's cache `name` on its own `ConnectionManager`, local tier `local_capacity`.
pub async fn keel(
    client: &redis::Client,
    name: &str,
    local_capacity: usize,
) -> Result<RedisCache<u64>, String> {
    let conn = Connection::single(client.clone())
        .await
        .map_err(|e| format!("keel connection: {e}"))?;
    RedisCache::builder(name, conn)
        .ttl(Duration::from_secs(3_600))
        .local(Duration::from_secs(3_600), local_capacity)
        .build()
        .map_err(|e| format!("keel build: {e}"))
}

/// A multi-tier-cache instance as its README builds one.
pub async fn multi_tier(url: &str, max_capacity: u64) -> Result<Arc<CacheManager>, String> {
    let l1 = L1Cache::new(MokaCacheConfig {
        max_capacity,
        time_to_live: Duration::from_secs(3_600),
        time_to_idle: Duration::from_secs(3_600),
    })
    .map_err(|e| format!("multi-tier-cache L1: {e}"))?;
    let l2 = L2Cache::with_url(url)
        .await
        .map_err(|e| format!("multi-tier-cache L2: {e}"))?;
    CacheManager::new(Arc::new(l1), Arc::new(l2))
        .await
        .map(Arc::new)
        .map_err(|e| format!("multi-tier-cache manager: {e}"))
}

pub const PEER_STRATEGY: CacheStrategy = CacheStrategy::Custom(Duration::from_secs(3_600));
