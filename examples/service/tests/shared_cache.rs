//! (i) With `--redis`, the user reads go through keel-rediscache, shared by every instance:
//! two services on two ports, one Redis key prefix unique to this run, one PostgreSQL
//! schema. 200 concurrent requests for one cold user, spread over both instances, make
//! exactly one PostgreSQL read (each instance coalesces its own callers; across the two,
//! the rebuild lease in Redis lets one load while the other waits for its value). A user
//! read on instance a is then answered by instance b from Redis, without the database.
//!
//! PostgreSQL reads are counted by each instance's `Db` (calls started, summed over both
//! instances). The keys expire by themselves (the cache's TTL); nothing else in Redis is
//! touched.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use keel::rediscache::RedisCache;
use tokio::sync::Barrier;

use super::client::get;
use super::env::{Env, REDIS, redis_up};
use super::load::{count, statuses};
use crate::app::Server;
use crate::users::Users;

const REQUESTS: usize = 200;

fn shared(server: &Server) -> RedisCache<String> {
    match &server.app.users {
        Users::Shared(cache) => cache.clone(),
        Users::Local(_) => panic!("with --redis the users cache is shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_load_each_user_once_through_redis() {
    let Some(env) = Env::start("rcache").await else {
        return;
    };
    if !redis_up().await {
        return;
    }
    let mut config = env.config.clone();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    config.redis = Some(REDIS.to_owned());
    config.redis_prefix = format!("keel-service-test-{}-{nanos}", std::process::id());
    let (a, b) = (env.serve(&config).await, env.serve(&config).await);
    let (cache_a, cache_b) = (shared(&a), shared(&b));
    let reads = || a.app.db.started() + b.app.db.started();
    assert_eq!(reads(), 0);

    // 200 requests for user 7, alternating between the instances, released together.
    let start = Arc::new(Barrier::new(REQUESTS));
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let addr = [a.addr, b.addr][i % 2];
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                get(addr, "/users/7", None).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for request in requests {
        replies.push(request.await.expect("a client panicked"));
    }
    assert_eq!(count(&replies, 200), REQUESTS, "{:?}", statuses(&replies));
    assert!(
        replies.iter().all(|r| r.body.contains("\"user 7\"")),
        "{:?}",
        replies.first()
    );
    let cold = reads();
    let (a7, b7) = (cache_a.snapshot(), cache_b.snapshot());
    assert_eq!(
        cold, 1,
        "one PostgreSQL read for {REQUESTS} requests: a {a7:?}, b {b7:?}"
    );
    assert_eq!(a7.loads + b7.loads, 1, "a {a7:?}, b {b7:?}");
    assert_eq!(a7.redis_errors + b7.redis_errors, 0, "a {a7:?}, b {b7:?}");

    // User 8: read on a (a database read), then on b: from Redis.
    let on_a = get(a.addr, "/users/8", None).await;
    assert_eq!((on_a.status, reads()), (200, 2), "{on_a:?}");
    let on_b = get(b.addr, "/users/8", None).await;
    assert_eq!(on_b.status, 200, "{on_b:?}");
    assert_eq!(on_b.body, on_a.body);
    assert_eq!(reads(), 2, "b answered from Redis, not PostgreSQL");
    let b8 = cache_b.snapshot();
    assert_eq!(
        (b8.l2_hits - b7.l2_hits, b8.loads - b7.loads),
        (1, 0),
        "{b8:?}"
    );

    // `/stats` shows the shared cache's counters.
    let stats = get(b.addr, "/stats", None).await;
    assert_eq!(stats.status, 200);
    assert!(stats.body.contains("\"l2_hits\""), "{}", stats.body);

    println!(
        "shared cache: {REQUESTS} requests for one user over 2 instances -> {cold} PostgreSQL \
         read (loads a {} b {}, lease waits a {} b {}, Redis hits a {} b {}); user 8 read on a, \
         then on b from Redis: {} PostgreSQL reads in all",
        a7.loads,
        b7.loads,
        a7.lease_waits,
        b7.lease_waits,
        a7.l2_hits,
        b7.l2_hits,
        reads()
    );
}
