//! The limiters on a private 3-master Redis Cluster (`.ci/redis-cluster`): keys spread over
//! every master and decided exactly as on one server, sync and async; a master killed
//! sends its keys (only) to the failure policy, and they come back when it restarts.
#![cfg(feature = "redis")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keel_limiter::redis::{RedisStats, RedisStore};
use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use keel_timex::ManualClock;
use support::cluster::RedisCluster;
use support::eventually;

/// A rate so slow that no token comes back during a test: a bucket allows its burst,
/// then refuses.
const SLOW: Rate = Rate::new(1, Duration::from_secs(3600));
const BURST: u32 = 3;
const QUOTA: u32 = 3;
const PERIOD: Duration = Duration::from_secs(3600);
/// Keys per test: enough that each master serves several.
const KEYS: usize = 60;
/// How long a restarted master may take to serve again (it waits about the node timeout,
/// 2 s, before it takes its slots back) and a limiter to notice. Polled, never slept.
const BACK_WITHIN: Duration = Duration::from_secs(60);

fn store(cluster: &RedisCluster) -> RedisStore {
    RedisStore::open_cluster(cluster.urls())
        .unwrap()
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .probe_interval(Duration::from_millis(50))
}

fn token(store: RedisStore, prefix: &str, policy: FailurePolicy) -> TokenLimiter {
    TokenLimiter::builder(SLOW, BURST)
        .redis(store, prefix)
        .failure_policy(policy)
        .build()
        .unwrap()
}

fn period(store: RedisStore, prefix: &str, policy: FailurePolicy) -> PeriodLimiter {
    PeriodLimiter::builder(QUOTA, PERIOD)
        .redis(store, prefix)
        .failure_policy(policy)
        .build()
        .unwrap()
}

fn stats(l: &TokenLimiter) -> RedisStats {
    l.snapshot().redis.unwrap()
}

fn period_stats(l: &PeriodLimiter) -> RedisStats {
    l.snapshot().redis.unwrap()
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

/// The Redis key keel keeps `key` under, and the port of the master serving it (the
/// cluster's own `CLUSTER KEYSLOT` and `CLUSTER SLOTS`).
fn placed(cluster: &RedisCluster, prefix: &str, keys: &[String]) -> BTreeMap<String, u16> {
    keys.iter()
        .map(|k| {
            let slot = cluster.keyslot(&format!("{{{prefix}:{k}}}"));
            (k.clone(), cluster.port_of_slot(slot))
        })
        .collect()
}

/// Each master serves some of `keys`.
fn on_every_master(cluster: &RedisCluster, placed: &BTreeMap<String, u16>) {
    let masters: BTreeSet<u16> = placed.values().copied().collect();
    assert_eq!(
        masters,
        cluster.ports().into_iter().collect::<BTreeSet<_>>(),
        "the keys land on every master"
    );
}

/// The decisions of the same requests on an in-memory limiter whose clock never moves:
/// the burst, then refusals.
fn memory_token_answers(keys: &[String], rounds: u32) -> Vec<bool> {
    let memory = TokenLimiter::builder(SLOW, BURST)
        .build_with_clock(ManualClock::new())
        .unwrap();
    (0..rounds)
        .flat_map(|_| keys.iter().map(|k| memory.allow_key(k)).collect::<Vec<_>>())
        .collect()
}

fn memory_period_answers(keys: &[String], rounds: u32) -> Vec<PeriodState> {
    let memory = PeriodLimiter::builder(QUOTA, PERIOD)
        .build_with_clock(ManualClock::new())
        .unwrap();
    (0..rounds)
        .flat_map(|_| {
            keys.iter()
                .map(|k| memory.take(k).unwrap().state)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Token answers: allowed, or refused for a while (never the policy's `Unavailable`).
fn token_answer(d: Result<(), Denied>) -> bool {
    match d {
        Ok(()) => true,
        Err(Denied::Limited { retry_after }) => {
            assert!(retry_after > Duration::ZERO && retry_after <= PERIOD);
            false
        }
        Err(other) => panic!("not a decision of the bucket: {other:?}"),
    }
}

#[test]
fn keys_spread_over_every_master_and_decide_as_on_one_server() {
    let cluster = cluster_or_skip!();
    let keys = keys(KEYS);
    let store = store(&cluster);
    assert!(store.is_cluster());

    let tokens = token(store.clone(), "tk", FailurePolicy::FailClosed);
    let rounds = BURST + 2;
    let answers: Vec<bool> = (0..rounds)
        .flat_map(|_| {
            keys.iter()
                .map(|k| token_answer(tokens.allow_key_n(k, 1)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(answers, memory_token_answers(&keys, rounds));
    let s = stats(&tokens);
    assert_eq!(
        (s.decisions, s.errors, s.healthy),
        ((KEYS as u32 * rounds) as u64, 0, true),
        "{s:?}"
    );
    assert!(s.unhealthy_nodes.is_empty());
    assert_eq!(tokens.snapshot().policy_decisions, 0);

    // Every bucket is where the cluster says its slot is: keel's slots are the cluster's.
    let placed = placed(&cluster, "tk", &keys);
    on_every_master(&cluster, &placed);
    for (k, port) in &placed {
        assert!(
            cluster.holds(*port, &format!("{{tk:{k}}}")),
            "{k} on {port}"
        );
    }

    let periods = period(store, "pd", FailurePolicy::FailClosed);
    let rounds = QUOTA + 2;
    let answers: Vec<PeriodState> = (0..rounds)
        .flat_map(|_| {
            keys.iter()
                .map(|k| {
                    let d = periods.take(k).unwrap();
                    assert!(d.resets_in > Duration::ZERO && d.resets_in <= PERIOD);
                    d.state
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(answers, memory_period_answers(&keys, rounds));
    let s = period_stats(&periods);
    assert_eq!(
        (s.decisions, s.errors, s.healthy),
        ((KEYS as u32 * rounds) as u64, 0, true)
    );
    let placed = self::placed(&cluster, "pd", &keys);
    on_every_master(&cluster, &placed);
    for (k, port) in &placed {
        assert!(
            cluster.holds(*port, &format!("{{pd:{k}}}")),
            "{k} on {port}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_spread_over_every_master_and_decide_as_on_one_server() {
    let cluster = cluster_or_skip!();
    let keys = keys(KEYS);
    let store = store(&cluster);

    let tokens = token(store.clone(), "atk", FailurePolicy::FailClosed);
    let rounds = BURST + 2;
    let mut answers = Vec::new();
    for _ in 0..rounds {
        for k in &keys {
            answers.push(token_answer(tokens.allow_key_n_async(k, 1).await));
        }
    }
    assert_eq!(answers, memory_token_answers(&keys, rounds));
    let s = stats(&tokens);
    assert_eq!(
        (s.decisions, s.errors, s.healthy),
        ((KEYS as u32 * rounds) as u64, 0, true),
        "{s:?}"
    );

    // Concurrent callers on the shared async cluster connection: one bucket per key,
    // exactly `BURST` grants each, however the calls interleave.
    let concurrent = std::sync::Arc::new(token(store.clone(), "ctk", FailurePolicy::FailClosed));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let l = std::sync::Arc::clone(&concurrent);
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let mut granted = BTreeMap::<String, u32>::new();
            for _ in 0..BURST {
                for k in &keys {
                    if token_answer(l.allow_key_n_async(k, 1).await) {
                        *granted.entry(k.clone()).or_default() += 1;
                    }
                }
            }
            granted
        }));
    }
    let mut granted = BTreeMap::<String, u32>::new();
    for t in tasks {
        for (k, n) in t.await.unwrap() {
            *granted.entry(k).or_default() += n;
        }
    }
    assert_eq!(granted.len(), KEYS);
    assert!(granted.values().all(|&n| n == BURST), "{granted:?}");
    assert_eq!(stats(&concurrent).errors, 0);

    let periods = period(store, "apd", FailurePolicy::FailClosed);
    let rounds = QUOTA + 2;
    let mut answers = Vec::new();
    for _ in 0..rounds {
        for k in &keys {
            answers.push(periods.take_async(k).await.unwrap().state);
        }
    }
    assert_eq!(answers, memory_period_answers(&keys, rounds));
    assert_eq!(period_stats(&periods).errors, 0);

    let placed = placed(&cluster, "apd", &keys);
    on_every_master(&cluster, &placed);
    for (k, port) in &placed {
        assert!(
            cluster.holds(*port, &format!("{{apd:{k}}}")),
            "{k} on {port}"
        );
    }
}

/// The keys of the killed master, and of the others.
fn split(placed: &BTreeMap<String, u16>, dead: u16) -> (Vec<String>, Vec<String>) {
    let (on_dead, alive): (Vec<_>, Vec<_>) = placed.iter().partition(|(_, p)| **p == dead);
    let names = |v: Vec<(&String, &u16)>| v.into_iter().map(|(k, _)| k.clone()).collect();
    (names(on_dead), names(alive))
}

/// A whole round of requests, sync: the dead master's keys answered by the policy
/// (`FailClosed`: `Unavailable`), the others by Redis (a bucket of `BURST` that never
/// refills, so every allowed request is a fresh token on Redis), while one master is down.
#[test]
fn a_dead_master_sends_only_its_keys_to_the_policy_and_they_come_back() {
    let cluster = cluster_or_skip!();
    let keys = keys(KEYS);
    let store = store(&cluster);
    // A big burst: every request on Redis is allowed, so a refusal can only be the policy.
    let tokens = TokenLimiter::builder(SLOW, 1_000_000)
        .redis(store.clone(), "kd")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    let periods = PeriodLimiter::builder(1_000_000, PERIOD)
        .redis(store, "kp")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    for k in &keys {
        assert_eq!(tokens.allow_key_n(k, 1), Ok(()));
        assert_eq!(periods.take(k).unwrap().state, PeriodState::Allowed);
    }
    let placed_tokens = placed(&cluster, "kd", &keys);
    on_every_master(&cluster, &placed_tokens);
    let placed_periods = placed(&cluster, "kp", &keys);

    let dead = cluster.ports()[1];
    let dead_node = format!("127.0.0.1:{dead}");
    let (token_dead, token_alive) = split(&placed_tokens, dead);
    let (period_dead, period_alive) = split(&placed_periods, dead);
    assert!(!token_dead.is_empty() && !period_dead.is_empty());
    cluster.kill(dead);

    // Until the limiters have switched that master (its first request fails), then every
    // round is exact.
    let exact_round = || {
        let before = (stats(&tokens).decisions, period_stats(&periods).decisions);
        let dead_refused = token_dead
            .iter()
            .all(|k| tokens.allow_key_n(k, 1) == Err(Denied::Unavailable))
            && period_dead
                .iter()
                .all(|k| periods.take(k) == Err(Denied::Unavailable));
        let alive_allowed = token_alive.iter().all(|k| tokens.allow_key_n(k, 1).is_ok())
            && period_alive.iter().all(|k| {
                periods
                    .take(k)
                    .is_ok_and(|d| d.state == PeriodState::Allowed)
            });
        let after = (stats(&tokens).decisions, period_stats(&periods).decisions);
        dead_refused
            && alive_allowed
            && after.0 - before.0 == token_alive.len() as u64
            && after.1 - before.1 == period_alive.len() as u64
    };
    assert!(
        eventually(BACK_WITHIN, exact_round),
        "the dead master's keys go to the policy, the others to redis: {:?} {:?}",
        stats(&tokens),
        period_stats(&periods)
    );
    for s in [stats(&tokens), period_stats(&periods)] {
        assert!(!s.healthy);
        assert_eq!(s.unhealthy_nodes, std::slice::from_ref(&dead_node), "{s:?}");
        assert!(s.switches_to_fallback >= 1 && s.server_errors >= 1, "{s:?}");
    }

    cluster.restart(dead);
    // The restarted master is empty: fresh buckets and counters, decided on Redis again.
    let back = || {
        let decided = token_dead.iter().all(|k| tokens.allow_key_n(k, 1).is_ok())
            && period_dead.iter().all(|k| periods.take(k).is_ok());
        decided && stats(&tokens).healthy && period_stats(&periods).healthy
    };
    assert!(
        eventually(BACK_WITHIN, back),
        "back on redis after the restart: {:?} {:?}",
        stats(&tokens),
        period_stats(&periods)
    );
    // On Redis: each of these decisions counted as one.
    let before = stats(&tokens).decisions;
    for k in &keys {
        assert_eq!(tokens.allow_key_n(k, 1), Ok(()));
    }
    let s = stats(&tokens);
    assert_eq!(s.decisions - before, KEYS as u64, "{s:?}");
    assert!(
        s.unhealthy_nodes.is_empty() && s.switches_back >= 1,
        "{s:?}"
    );
    // Every switch of that master came back; none of the others was switched for good.
    assert_eq!(s.switches_to_fallback, s.switches_back, "{s:?}");
    assert!(cluster.holds(dead, &format!("{{kd:{}}}", token_dead[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_on_a_dead_master_go_to_the_policy_and_come_back() {
    let cluster = cluster_or_skip!();
    let keys = keys(KEYS);
    let store = store(&cluster);
    let tokens = TokenLimiter::builder(SLOW, 1_000_000)
        .redis(store.clone(), "akd")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    let periods = PeriodLimiter::builder(1_000_000, PERIOD)
        .redis(store, "akp")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    for k in &keys {
        assert_eq!(tokens.allow_key_n_async(k, 1).await, Ok(()));
        assert!(periods.take_async(k).await.is_ok());
    }
    let placed_tokens = placed(&cluster, "akd", &keys);
    let placed_periods = placed(&cluster, "akp", &keys);
    let dead = cluster.ports()[2];
    let (token_dead, token_alive) = split(&placed_tokens, dead);
    let (period_dead, period_alive) = split(&placed_periods, dead);
    cluster.kill(dead);

    let deadline = tokio::time::Instant::now() + BACK_WITHIN;
    loop {
        let before = (stats(&tokens).decisions, period_stats(&periods).decisions);
        let mut exact = true;
        for k in &token_dead {
            exact &= tokens.allow_key_n_async(k, 1).await == Err(Denied::Unavailable);
        }
        for k in &period_dead {
            exact &= periods.take_async(k).await == Err(Denied::Unavailable);
        }
        for k in &token_alive {
            exact &= tokens.allow_key_n_async(k, 1).await.is_ok();
        }
        for k in &period_alive {
            exact &= periods
                .take_async(k)
                .await
                .is_ok_and(|d| d.state == PeriodState::Allowed);
        }
        let after = (stats(&tokens).decisions, period_stats(&periods).decisions);
        if exact
            && after.0 - before.0 == token_alive.len() as u64
            && after.1 - before.1 == period_alive.len() as u64
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead master's keys go to the policy, the others to redis: {:?} {:?}",
            stats(&tokens),
            period_stats(&periods)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        stats(&tokens).unhealthy_nodes,
        [format!("127.0.0.1:{dead}")]
    );

    cluster.restart(dead);
    let deadline = tokio::time::Instant::now() + BACK_WITHIN;
    loop {
        let mut decided = true;
        for k in &token_dead {
            decided &= tokens.allow_key_n_async(k, 1).await.is_ok();
        }
        for k in &period_dead {
            decided &= periods.take_async(k).await.is_ok();
        }
        if decided && stats(&tokens).healthy && period_stats(&periods).healthy {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "back on redis after the restart: {:?} {:?}",
            stats(&tokens),
            period_stats(&periods)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = stats(&tokens).decisions;
    for k in &keys {
        assert_eq!(tokens.allow_key_n_async(k, 1).await, Ok(()));
    }
    assert_eq!(stats(&tokens).decisions - before, KEYS as u64);
}

/// A cluster none of whose nodes answers: every key goes to the policy (no slot map is
/// known, so the whole cluster is off), and nothing blocks past the timeouts.
#[test]
fn an_unreachable_cluster_is_decided_by_the_policy() {
    // Ports nobody listens on: the cluster is not there at all.
    let ports: Vec<u16> = (0..3).map(|_| support::free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}/"))
        .collect();
    let store = RedisStore::open_cluster(&urls)
        .unwrap()
        .connect_timeout(Duration::from_millis(200));
    let l = token(store, "nowhere", FailurePolicy::Rescue);
    for k in ["a", "b", "c"] {
        for _ in 0..BURST {
            assert_eq!(l.allow_key_n(k, 1), Ok(()), "the rescue's burst");
        }
        assert!(matches!(l.allow_key_n(k, 1), Err(Denied::Limited { .. })));
    }
    let s = stats(&l);
    assert!(!s.healthy && s.unhealthy_nodes.is_empty(), "{s:?}");
    assert_eq!(
        s.errors, 1,
        "one connect failed, then the policy decided: {s:?}"
    );
    assert_eq!(l.snapshot().policy_decisions, 3 * (u64::from(BURST) + 1));
}
