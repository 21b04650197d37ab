//! (f) With `--redis`, a client's limit is shared by every instance: two services on two
//! ports, one Redis key prefix unique to this run. A client spending most of its burst on
//! one instance has only the rest on the other; another client is unaffected.
//!
//! The rate is one token a minute, so nothing refills during the test. The keys expire by
//! themselves (their TTL is twice the bucket's fill time); nothing else in Redis is
//! touched.

use std::time::{SystemTime, UNIX_EPOCH};

use keel::limiter::Rate;

use super::client::get;
use super::env::{Env, REDIS, redis_up};
use super::load::statuses;

const BURST: u32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_each_clients_limit_on_redis() {
    let Some(env) = Env::start("redis").await else {
        return;
    };
    if !redis_up().await {
        return;
    }
    let mut config = env.config.clone();
    (config.rate, config.burst) = (Rate::per_minute(1), BURST);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    config.redis = Some(REDIS.to_owned());
    config.redis_prefix = format!("keel-service-test-{}-{nanos}", std::process::id());
    let (a, b) = (env.serve(&config).await, env.serve(&config).await);

    let mut on_a = Vec::new();
    for id in 1..=4 {
        on_a.push(
            get(a.addr, &format!("/users/{id}"), Some("roaming"))
                .await
                .status,
        );
    }
    let mut on_b = Vec::new();
    for id in 1..=4 {
        on_b.push(
            get(b.addr, &format!("/users/{id}"), Some("roaming"))
                .await
                .status,
        );
    }
    let other = get(b.addr, "/users/1", Some("homebody")).await;

    assert_eq!(on_a, [200, 200, 200, 200]);
    assert_eq!(
        on_b,
        [200, 429, 429, 429],
        "one token was left for instance b"
    );
    assert_eq!(other.status, 200, "another client has its own bucket");
    for server in [&a, &b] {
        let redis = server
            .app
            .limiter
            .snapshot()
            .redis
            .expect("a Redis-backed limiter");
        assert!(redis.healthy && redis.errors == 0, "{redis:?}");
        assert!(redis.decisions >= 1, "{redis:?}");
    }
    let refused = get(b.addr, "/users/1", Some("roaming")).await;
    assert_eq!(refused.status, 429);
    println!(
        "shared limit: a {on_a:?}, b {on_b:?}, Retry-After {:?}; other client {:?}",
        refused.retry_after,
        statuses(&[other])
    );
}
