//! The cold-key stampede count: [`REQUESTS`] concurrent requests for one cold key over
//! [`INSTANCES`] instances, released by a barrier; how often the "database" was queried.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

pub const REQUESTS: usize = 1_000;
pub const INSTANCES: usize = 4;
pub const QUERY: Duration = Duration::from_millis(5);
pub const ROUNDS: usize = 5;
const VALUE: u64 = 42;

/// One round of one implementation.
#[derive(Clone, Debug)]
pub struct Round {
    pub name: &'static str,
    pub requests: usize,
    pub queries: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// The simulated database: counts, sleeps [`QUERY`], returns [`VALUE`].
async fn query(calls: &AtomicU64) -> u64 {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(QUERY).await;
    VALUE
}

/// Runs `take(instance, key, calls)` [`REQUESTS`] times concurrently, instance `i % INSTANCES`.
async fn round<T, F, Fut>(name: &'static str, instances: Vec<T>, key: String, take: F) -> Round
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T, String, Arc<AtomicU64>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let calls = Arc::new(AtomicU64::new(0));
    // One more party: this task, which starts the clock when everyone is released.
    let barrier = Arc::new(Barrier::new(REQUESTS + 1));
    let mut tasks = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let instance = instances[i % instances.len()].clone();
        let (key, calls, barrier, take) = (
            key.clone(),
            Arc::clone(&calls),
            Arc::clone(&barrier),
            take.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            take(instance, key, calls).await
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(VALUE)) => {}
            Ok(Ok(other)) => {
                errors += 1;
                eprintln!("stampede/{name}: got {other}");
            }
            Ok(Err(e)) => {
                errors += 1;
                eprintln!("stampede/{name}: {e}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("stampede/{name}: task: {e}");
            }
        }
    }
    Round {
        name,
        requests: REQUESTS,
        queries: calls.load(Ordering::SeqCst),
        errors,
        elapsed: start.elapsed(),
    }
}

/// keel-rediscache: [`INSTANCES`] `RedisCache`s named `name` (see [`keel`](super::keel)).
pub async fn keel(client: &redis::Client, name: &str, key: &str) -> Result<Round, String> {
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(super::keel(client, name, 10_000).await?);
    }
    Ok(round(
        "keel-rediscache (RedisCache::take)",
        instances,
        key.to_owned(),
        |cache, key, calls| async move {
            cache
                .take(
                    &key,
                    || async move { Ok::<_, Infallible>(query(&calls).await) },
                )
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await)
}

/// multi-tier-cache: [`INSTANCES`] managers (see [`multi_tier`](super::multi_tier)).
pub async fn multi_tier(url: &str, name: &str, key: &str) -> Result<Round, String> {
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(super::multi_tier(url, 10_000).await?);
    }
    Ok(round(
        "multi-tier-cache (get_or_compute_typed)",
        instances,
        format!("{name}:{key}"),
        |manager, key, calls| async move {
            manager
                .get_or_compute_typed(&key, super::PEER_STRATEGY, || async move {
                    Ok(query(&calls).await)
                })
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await)
}

/// moka: [`INSTANCES`] `moka::future::Cache`s of 10 000 entries, time to live 1 h, no Redis.
pub async fn moka(key: &str) -> Round {
    let instances: Vec<moka::future::Cache<String, u64>> = (0..INSTANCES)
        .map(|_| {
            moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(3_600))
                .build()
        })
        .collect();
    round(
        "moka per instance (try_get_with)",
        instances,
        key.to_owned(),
        |cache, key, calls| async move {
            cache
                .try_get_with(key, async move { Ok::<_, Infallible>(query(&calls).await) })
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
}
