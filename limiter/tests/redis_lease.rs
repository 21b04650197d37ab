//! Lease mode on a private redis-server: tokens come from the shared bucket in batches and
//! are spent locally; the cluster never grants more than the bucket, and Redis sees about
//! one round trip per batch.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_limiter::redis::RedisStore;
use keel_limiter::{ConfigError, Denied, Rate, TokenLimiter};

fn leased(server: &support::RedisServer, burst: u32, batch: u32) -> TokenLimiter {
    TokenLimiter::builder(Rate::per_minute(1), burst)
        .redis(support::store(&server.url()), "lease")
        .lease(batch, Duration::from_secs(60))
        .build()
        .unwrap()
}

fn decisions(l: &TokenLimiter) -> u64 {
    l.snapshot().redis.unwrap().decisions
}

#[test]
fn most_decisions_stay_local_and_the_shared_bucket_is_never_exceeded() {
    let server = redis_or_skip!();
    let a = leased(&server, 1000, 50);
    let b = leased(&server, 1000, 50);
    let mut granted = 0;
    for i in 0..3000 {
        let l = if i % 3 == 0 { &b } else { &a };
        if l.allow_key("user") {
            granted += 1;
        }
    }
    // Both instances together spend exactly the bucket (1000 = 20 batches of 50).
    assert_eq!(granted, 1000);
    // One round trip per batch, plus the refused refills once the bucket ran dry.
    let trips = decisions(&a) + decisions(&b);
    assert!(
        (20..=40).contains(&trips),
        "{trips} round trips for 1000 grants"
    );
}

#[test]
fn concurrent_tasks_on_two_instances_never_exceed_the_bucket() {
    let server = redis_or_skip!();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let a = leased(&server, 500, 40);
    let b = leased(&server, 500, 40);
    let granted = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let l = if i % 2 == 0 { a.clone() } else { b.clone() };
                let granted = granted.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        if l.allow_key_n_async("k", 1).await.is_ok() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    // Every grant came out of the shared bucket of 500.
    let mut granted = granted.load(Ordering::Relaxed);
    assert!(granted <= 500, "{granted}");
    // Tokens still leased when the tasks ended (how many depends on how the last tasks
    // were scheduled: each refill racing at the end leaves up to a batch behind) are not
    // lost: spending them now, until each instance is refused, accounts for every token
    // the bucket held, unless a round trip failed after its script ran.
    for l in [&a, &b] {
        while l.allow_key("k") {
            granted += 1;
        }
    }
    let errors = a.snapshot().redis.unwrap().errors + b.snapshot().redis.unwrap().errors;
    assert!(granted <= 500, "{granted}");
    assert!(
        granted + 40 * errors >= 500,
        "{granted} granted, {errors} errors"
    );
}

#[test]
fn a_refusal_from_redis_says_when_to_retry() {
    let server = redis_or_skip!();
    let l = leased(&server, 10, 10);
    assert_eq!((0..10).filter(|_| l.allow()).count(), 10);
    match l.allow_n(1) {
        Err(Denied::Limited { retry_after }) => {
            assert!(retry_after > Duration::from_secs(5), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lease_must_fit_the_bucket_and_needs_redis() {
    let b = || TokenLimiter::builder(Rate::per_second(1), 10);
    assert_eq!(
        b().lease(5, Duration::from_secs(1)).build().unwrap_err(),
        ConfigError::LeaseNeedsRedis
    );
    let store = RedisStore::open("redis://127.0.0.1:1").unwrap();
    assert_eq!(
        b().redis(store.clone(), "x")
            .lease(11, Duration::from_secs(1))
            .build()
            .unwrap_err(),
        ConfigError::LeaseOutOfRange {
            batch: 11,
            burst: 10
        }
    );
    assert!(
        b().redis(store, "x")
            .lease(0, Duration::from_secs(1))
            .build()
            .is_err()
    );
}
