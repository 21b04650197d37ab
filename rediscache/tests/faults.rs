//! Redis failing under a private `redis-server`: FailFast answers at once and never calls
//! the loader; Load calls it within its limit; everything recovers when Redis is back;
//! failed deletes are retried; the subscription reconnects and clears the local tier.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_rediscache::{DelError, FailurePolicy, RedisCache, TakeError};
use keel_syncx::limit::Limit;

const BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_run() {
    let Some(mut server) = support::RedisServer::start() else {
        return;
    };
    let client = server.client();
    let build = |policy: FailurePolicy| {
        let client = client.clone();
        async move {
            RedisCache::<String>::builder("faults", support::connection(&client).await)
                .timeout(Duration::from_millis(200))
                .failure_policy(policy)
                .subscriber(client)
                .build()
                .unwrap()
        }
    };
    let fail_fast = build(FailurePolicy::FailFast).await;
    let load = build(FailurePolicy::Load(Limit::new(2).unwrap())).await;
    assert!(fail_fast.wait_subscribed(Duration::from_secs(10)).await);
    for cache in [&fail_fast, &load] {
        cache
            .take("warm", || async { Ok::<_, Infallible>("w".to_string()) })
            .await
            .unwrap();
    }
    server.stop();

    // FailFast: local hits still served; misses fail within the bound, loader never called.
    assert_eq!(
        fail_fast
            .take("warm", || async { Ok::<_, Infallible>("x".to_string()) })
            .await
            .unwrap(),
        "w"
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (cache, calls) = (fail_fast.clone(), Arc::clone(&calls));
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = cache
                .take(&format!("cold{}", i % 10), || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>("loaded".to_string())
                })
                .await;
            (r, started.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    for task in tasks {
        let (r, took) = task.await.unwrap();
        assert!(matches!(r, Err(TakeError::Redis(_))), "{r:?}");
        slowest = slowest.max(took);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(slowest < BOUND, "a FailFast take took {slowest:?}");
    println!("FailFast with Redis down: 100 takes failed, slowest {slowest:?}, loader calls 0");

    // Load: at most the limit's 2 loads at a time; the rest are refused at once.
    let (in_flight, max_in_flight, refused) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let cache = load.clone();
        let (in_flight, max_in_flight, refused, gate) = (
            Arc::clone(&in_flight),
            Arc::clone(&max_in_flight),
            Arc::clone(&refused),
            Arc::clone(&gate),
        );
        tasks.push(tokio::spawn(async move {
            let r = cache
                .take(&format!("db{i}"), || async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    let _pass = gate.acquire().await.unwrap();
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(format!("db{i}"))
                })
                .await;
            if matches!(r, Err(TakeError::Overloaded(_))) {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            r
        }));
    }
    // Hand-off: 2 loaders hold the permits and the 48 others have been refused.
    assert!(
        support::eventually(Duration::from_secs(10), || in_flight.load(Ordering::SeqCst)
            == 2
            && refused.load(Ordering::SeqCst) == 48)
        .await,
        "in flight {}, refused {}",
        in_flight.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst)
    );
    gate.add_permits(50);
    let ok = futures_ok(tasks).await;
    assert_eq!((ok, max_in_flight.load(Ordering::SeqCst)), (2, 2));
    assert_eq!(load.snapshot().overloaded, 48);
    println!("Load(Limit 2) with Redis down: 50 takes -> 2 loads (max 2 at once), 48 refused");

    // Redis back: normal again (values through Redis) within a bounded poll.
    server.restart();
    let back = Instant::now();
    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(10) {
        if fail_fast
            .take("after", || async { Ok::<_, Infallible>("v".to_string()) })
            .await
            .is_ok()
        {
            recovered = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered = recovered.expect("no recovery within 10 s");
    println!("Redis restarted: takes succeed again after {recovered:?}");
    assert!(recovered < Duration::from_secs(5));
    assert!(fail_fast.snapshot().redis_errors > 0);
    // The subscription reconnected and cleared the local tier (messages may be lost).
    assert!(
        support::eventually(Duration::from_secs(10), || fail_fast
            .snapshot()
            .subscriptions
            >= 2)
        .await
    );
    assert_eq!(fail_fast.local_entry("warm"), None);
}

async fn futures_ok(
    tasks: Vec<tokio::task::JoinHandle<Result<String, TakeError<Infallible>>>>,
) -> usize {
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deletes_are_retried_in_the_background() {
    let Some(server) = support::RedisServer::start() else {
        return;
    };
    let client = server.client();
    let a: RedisCache<String> = RedisCache::builder("retry", support::connection(&client).await)
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .timeout(Duration::from_millis(100))
        .delete_retries(10, Duration::from_millis(50))
        .build()
        .unwrap();
    let b: RedisCache<String> = RedisCache::builder("retry", support::connection(&client).await)
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .subscriber(client.clone())
        .build()
        .unwrap();
    assert!(b.wait_subscribed(Duration::from_secs(10)).await);
    a.set("k", "old".to_string()).await.unwrap();
    assert_eq!(
        b.take("k", || async { Ok::<_, Infallible>("x".to_string()) })
            .await
            .unwrap(),
        "old"
    );
    // Writes stall for 600 ms: the delete times out and is queued.
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(600)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    let r = a.del("k").await;
    assert!(matches!(r, Err(DelError::Queued(_))), "{r:?}");
    assert_eq!(a.snapshot().deletes_queued, 1);
    // The retry deletes it from Redis and reaches B's local tier.
    assert!(
        support::eventually(Duration::from_secs(10), || a.snapshot().deletes_retried_ok
            == 1)
        .await
    );
    assert!(support::eventually(Duration::from_secs(10), || b.local_entry("k").is_none()).await);
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg(a.redis_key("k"))
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(stored, None);
    println!(
        "queued delete: {} retry attempts",
        a.snapshot().delete_retries
    );
}
