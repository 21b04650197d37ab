//! Penetration behind the bloom filter: 100,000 reads of ids that do not exist, each asked
//! of a `RedisBloom` before `take_optional`, reach the database at most the configured
//! false-positive rate of the time (+ slack); ids that exist are read as usual.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_rediscache::RedisCache;
use keel_rediscache::bloom::RedisBloom;

const USERS: u64 = 10_000;
const RATE: f64 = 0.01;
const LOOKUPS: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_ids_behind_the_filter_reach_the_database_at_the_false_positive_rate() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("bloom-take");
    let bloom = RedisBloom::new(support::connection(&client).await, &name, USERS, RATE).unwrap();
    let cache: RedisCache<String> =
        RedisCache::builder(name.as_str(), support::connection(&client).await)
            .timeout(support::BUSY_MACHINE_TIMEOUT)
            .ttl(Duration::from_secs(60))
            .build()
            .expect("build");

    // The users that exist are added as they are inserted in the database.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let bloom = bloom.clone();
        tasks.push(tokio::spawn(async move {
            for id in (t..USERS).step_by(8) {
                bloom.add(&id.to_string()).await.expect("add");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    // The "database": counts queries; ids below USERS exist.
    let queries = Arc::new(AtomicU64::new(0));
    let read = |cache: RedisCache<String>, bloom: RedisBloom, queries: Arc<AtomicU64>, id: u64| async move {
        let key = id.to_string();
        if !bloom.contains(&key).await.expect("contains") {
            return None;
        }
        cache
            .take_optional(&key, || {
                queries.fetch_add(1, Ordering::Relaxed);
                std::future::ready(Ok::<_, Infallible>(
                    (id < USERS).then(|| format!("user {id}")),
                ))
            })
            .await
            .expect("take")
    };

    // 100,000 absent ids (distinct, far above the real ones), over 8 tasks.
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (cache, bloom, queries) = (cache.clone(), bloom.clone(), Arc::clone(&queries));
        tasks.push(tokio::spawn(async move {
            for i in (t..LOOKUPS).step_by(8) {
                let id = (1 << 40) + i * 7_919;
                assert_eq!(
                    read(cache.clone(), bloom.clone(), Arc::clone(&queries), id).await,
                    None
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let absent_queries = queries.load(Ordering::Relaxed);
    let bound = (1.5 * RATE * LOOKUPS as f64) as u64 + 20;
    println!(
        "bloom + take: {LOOKUPS} absent ids -> {absent_queries} database queries \
         (configured rate {RATE}: {:.0} expected, bound {bound})",
        RATE * LOOKUPS as f64
    );
    assert!(absent_queries <= bound, "{absent_queries} > {bound}");

    // Ids that exist pass the filter and are read (once each).
    for id in [0, 1, USERS / 2, USERS - 1] {
        let found = read(cache.clone(), bloom.clone(), Arc::clone(&queries), id).await;
        assert_eq!(found, Some(format!("user {id}")));
    }
    assert_eq!(queries.load(Ordering::Relaxed), absent_queries + 4);

    bloom.clear().await.expect("clear");
    support::cleanup(&client, &name).await;
}
