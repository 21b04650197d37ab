//! Several instances of one cache, each with its own local tier and connections, on the
//! shared Redis: one database query per cold key and per expiry across all of them,
//! expiries spread by jitter, deletes reaching every instance.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_rediscache::RedisCache;
use keel_timex::ManualClock;

async fn instances(
    client: &redis::Client,
    name: &str,
    n: usize,
    clock: &ManualClock,
    configure: impl Fn(
        keel_rediscache::Builder<String, ManualClock>,
    ) -> keel_rediscache::Builder<String, ManualClock>,
) -> Vec<RedisCache<String, ManualClock>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let builder = RedisCache::builder(name, support::connection(client).await)
            .timeout(support::BUSY_MACHINE_TIMEOUT)
            .clock(clock.clone())
            .subscriber(client.clone());
        out.push(configure(builder).build().expect("build"));
    }
    for cache in &out {
        assert!(
            cache.wait_subscribed(Duration::from_secs(10)).await,
            "not subscribed"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_key_1000_requests_over_4_instances_query_the_database_once() {
    let Some(client) = support::shared().await else {
        return;
    };
    let Some((pg, table)) = support::postgres_table(100).await else {
        return;
    };
    let pg = Arc::new(pg);
    let name = support::unique("cold");
    let clock = ManualClock::new();
    let caches = instances(&client, &name, 4, &clock, |b| b).await;
    let queries = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let sql = format!("SELECT name, pg_sleep(0.05)::text FROM {table} WHERE id = $1");
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let cache = caches[i % 4].clone();
        let (pg, queries, barrier, sql) = (
            Arc::clone(&pg),
            Arc::clone(&queries),
            Arc::clone(&barrier),
            sql.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            cache
                .take("42", || async move {
                    queries.fetch_add(1, Ordering::SeqCst);
                    let row = pg.query_one(&sql, &[&42i64]).await?;
                    Ok::<String, tokio_postgres::Error>(row.get(0))
                })
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().expect("take"), "user 42");
    }
    let stats: Vec<_> = caches.iter().map(RedisCache::snapshot).collect();
    let loads: u64 = stats.iter().map(|s| s.loads).sum();
    let waits: u64 = stats.iter().map(|s| s.lease_waits).sum();
    let l2: u64 = stats.iter().map(|s| s.l2_hits).sum();
    println!(
        "cold key: 1000 requests over 4 instances -> {} database queries; \
         local loads per instance {:?}, lease waits {waits}, Redis hits {l2}",
        queries.load(Ordering::SeqCst),
        stats.iter().map(|s| s.misses).collect::<Vec<_>>(),
    );
    assert_eq!(queries.load(Ordering::SeqCst), 1);
    assert_eq!(loads, 1);
    // Every instance but the loader's got the value from Redis (after waiting or not).
    assert!(l2 >= 3, "{stats:?}");
    support::drop_table(&pg, &table).await;
    support::cleanup(&client, &name).await;
}

/// Rounds of 200 concurrent takes over 4 instances, the clock moving 25 s between rounds,
/// values fresh for 60 s: exactly one query per logical expiry crossed.
async fn hot_key_rounds(stale_grace: Duration) {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("hot");
    let clock = ManualClock::new();
    let caches = instances(&client, &name, 4, &clock, |b| {
        b.ttl(Duration::from_secs(60))
            .jitter(0.0)
            .stale_grace(stale_grace)
            .local(Duration::from_secs(3_600), 1_000)
    })
    .await;
    let queries = Arc::new(AtomicUsize::new(0));
    let version = Arc::new(AtomicU64::new(0));
    let (mut expected, mut fresh_until) = (0, None);
    for round in 0..16u64 {
        if round > 0 {
            clock.advance(Duration::from_secs(25));
        }
        let t = round * 25;
        if fresh_until.is_none_or(|until| t >= until) {
            expected += 1;
            fresh_until = Some(t + 60);
        }
        let mut tasks = Vec::new();
        for i in 0..200 {
            let cache = caches[i % 4].clone();
            let (queries, version) = (Arc::clone(&queries), Arc::clone(&version));
            tasks.push(tokio::spawn(async move {
                cache
                    .take("hot", || async move {
                        queries.fetch_add(1, Ordering::SeqCst);
                        let v = version.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(format!("v{v}"))
                    })
                    .await
                    .expect("take")
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            queries.load(Ordering::SeqCst),
            expected,
            "after round {round} (t = {t} s)"
        );
    }
    let stale: u64 = caches.iter().map(|c| c.snapshot().stale_served).sum();
    let waits: u64 = caches.iter().map(|c| c.snapshot().lease_waits).sum();
    println!(
        "hot key, stale grace {stale_grace:?}: 16 rounds x 200 takes over 4 instances, \
         {expected} logical expiries (incl. the cold start) -> {} queries; stale served {stale}, lease waits {waits}",
        queries.load(Ordering::SeqCst)
    );
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_key_expiring_under_load_is_queried_once_per_expiry_waiting() {
    hot_key_rounds(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_key_expiring_under_load_is_queried_once_per_expiry_serving_stale() {
    hot_key_rounds(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_written_together_expire_over_the_jitter_window() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("spread");
    let clock =
        ManualClock::starting_at(keel_timex::Nanos::from_duration(Duration::from_secs(1_000)));
    let start_ms = 1_000_000u64;
    let cache: RedisCache<u32, ManualClock> =
        RedisCache::builder(&name, support::connection(&client).await)
            .timeout(support::BUSY_MACHINE_TIMEOUT)
            .ttl(Duration::from_secs(1_000))
            .clock(clock.clone())
            .build()
            .unwrap();
    const KEYS: u32 = 100_000;
    let writers: Vec<_> = (0..32u32)
        .map(|w| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for k in (w..KEYS).step_by(32) {
                    cache.set(&k.to_string(), k).await.expect("set");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    // The logical expiry of each key, from its envelope (bytes 2..10, ms on the clock).
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut offsets = Vec::with_capacity(KEYS as usize);
    for batch in (0..KEYS).collect::<Vec<_>>().chunks(2_000) {
        let mut pipe = redis::pipe();
        for k in batch {
            pipe.cmd("GET").arg(cache.redis_key(&k.to_string()));
        }
        let values: Vec<Vec<u8>> = pipe.query_async(&mut c).await.unwrap();
        for v in values {
            let expiry = u64::from_le_bytes(v[2..10].try_into().unwrap());
            offsets.push(expiry - start_ms);
        }
    }
    let (min, max) = (
        *offsets.iter().min().unwrap(),
        *offsets.iter().max().unwrap(),
    );
    assert!(
        min >= 950_000 && max <= 1_050_000,
        "outside ±5%: {min}..{max} ms"
    );
    // Ten 10 s buckets over 950..1050 s: each holds about a tenth.
    let mut buckets = [0u32; 10];
    for o in &offsets {
        buckets[((o - 950_000) / 10_000).min(9) as usize] += 1;
    }
    println!(
        "100,000 keys set at once: logical expiries {min}..{max} ms, per 10 s bucket {buckets:?}"
    );
    for b in buckets {
        assert!((8_500..=11_500).contains(&b), "uneven spread: {buckets:?}");
    }
    // Redis's own expiry (PX) follows: a sample's PTTL is inside the window.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(cache.redis_key("77"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 1_050_000, "PTTL {pttl}");
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_on_one_instance_reaches_every_other_instance() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("invalidate");
    let clock = ManualClock::new();
    let caches = instances(&client, &name, 3, &clock, |b| {
        b.local(Duration::from_secs(3_600), 10_000)
    })
    .await;
    let mut latencies = Vec::new();
    for i in 0..200 {
        let key = format!("k{i}");
        for cache in &caches {
            let v = cache
                .take(&key, || async { Ok::<_, Infallible>("old".to_string()) })
                .await
                .unwrap();
            assert_eq!(v, "old");
            assert_eq!(cache.local_entry(&key), Some(Some("old".to_string())));
        }
        let started = Instant::now();
        caches[0].del(&key).await.expect("del");
        let gone = support::eventually(Duration::from_secs(10), || {
            caches[1..].iter().all(|c| c.local_entry(&key).is_none())
        })
        .await;
        latencies.push(started.elapsed());
        assert!(gone, "an instance still serves the deleted {key}");
        for cache in &caches[1..] {
            let v = cache
                .take(&key, || async { Ok::<_, Infallible>("new".to_string()) })
                .await
                .unwrap();
            assert_eq!(v, "new");
        }
    }
    // `set` reaches them too.
    caches[2].set("k0", "set".to_string()).await.unwrap();
    assert!(
        support::eventually(Duration::from_secs(10), || caches[0..2]
            .iter()
            .all(|c| c.local_entry("k0").is_none()))
        .await
    );
    assert_eq!(
        caches[0]
            .take("k0", || async { Ok::<_, Infallible>("x".to_string()) })
            .await
            .unwrap(),
        "set"
    );
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "invalidation (del on one instance -> 2 others' local tiers cleared, incl. the DEL and PUBLISH): \
         p50 {:?}, p99 {:?}, max {:?} over {} deletes",
        pct(50),
        pct(99),
        latencies.last().unwrap(),
        latencies.len()
    );
    assert!(*latencies.last().unwrap() < Duration::from_secs(5));
    let received: Vec<u64> = caches
        .iter()
        .map(|c| c.snapshot().invalidations_received)
        .collect();
    assert!(received[1] >= 200 && received[2] >= 200, "{received:?}");
    support::cleanup(&client, &name).await;
}
