//! `SCRIPT FLUSH` storms: another client empties the server's script cache again and
//! again while requests run. Every request is still decided on Redis (the script is run
//! again with `EVAL` on `NOSCRIPT`), none reaches the failure policy and the limiter never
//! switches. Sync threads and async tasks.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_limiter::redis::RedisStats;
use keel_limiter::{FailurePolicy, PeriodLimiter, Rate, TokenLimiter};
use support::RedisServer;

/// Workers (threads or tasks), rounds per worker, decisions per round.
const WORKERS: usize = 4;
const ROUNDS: usize = 10;
const PER_ROUND: usize = 20;
/// The longest a worker waits for the flusher's next flush.
const FLUSH_WAIT: Duration = Duration::from_secs(20);
const BURST: u32 = 100_000;

fn limiters(server: &RedisServer) -> (TokenLimiter, PeriodLimiter) {
    let store = support::store(&server.url());
    // FailClosed: a request that went to the policy would be refused, so every `Ok`
    // below was decided on Redis.
    let token = TokenLimiter::builder(Rate::new(1, Duration::from_secs(3600)), BURST)
        .redis(store.clone(), "flush")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    let period = PeriodLimiter::builder(BURST, Duration::from_secs(3600))
        .redis(store, "flush-p")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    (token, period)
}

/// Flushes the script cache until `done`, counting flushes (a bounded loop: it stops on
/// its own after a minute).
fn flusher(server: &RedisServer, flushes: &AtomicU64, done: &AtomicBool) {
    let mut c = server.connection();
    let end = Instant::now() + Duration::from_secs(60);
    while !done.load(Ordering::Acquire) && Instant::now() < end {
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut c).unwrap();
        flushes.fetch_add(1, Ordering::AcqRel);
    }
}

/// Waits (bounded) for a flush after `seen`; returns the new count.
fn next_flush(flushes: &AtomicU64, seen: u64) -> u64 {
    let end = Instant::now() + FLUSH_WAIT;
    loop {
        let now = flushes.load(Ordering::Acquire);
        if now > seen {
            return now;
        }
        assert!(Instant::now() < end, "the flusher made no progress");
        std::thread::yield_now();
    }
}

/// Every decision went to Redis: no error, no switch, and Redis holds exactly what was
/// taken.
fn assert_all_on_redis(server: &RedisServer, token: &TokenLimiter, period: &PeriodLimiter) {
    let total = (WORKERS * ROUNDS * PER_ROUND) as u64;
    for (what, s, policy) in [
        (
            "token",
            token.snapshot().redis.unwrap(),
            token.snapshot().policy_decisions,
        ),
        (
            "period",
            period.snapshot().redis.unwrap(),
            period.snapshot().policy_decisions,
        ),
    ] {
        check(what, &s, total, policy);
    }
    let mut c = server.connection();
    for w in 0..WORKERS {
        let count: u64 = redis::cmd("GET")
            .arg(format!("{{flush-p:w{w}}}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(count, (ROUNDS * PER_ROUND) as u64, "period key w{w}");
        let tokens: f64 = redis::cmd("HGET")
            .arg(format!("{{flush:w{w}}}"))
            .arg("tokens")
            .query(&mut c)
            .unwrap();
        let expected = f64::from(BURST) - (ROUNDS * PER_ROUND) as f64;
        // The hour-long refill adds well under one token during the test.
        assert!(
            (expected..expected + 1.0).contains(&tokens),
            "token key w{w}: {tokens}"
        );
    }
}

fn check(what: &str, s: &RedisStats, total: u64, policy_decisions: u64) {
    assert_eq!(
        (
            s.decisions,
            s.errors,
            s.switches_to_fallback,
            policy_decisions
        ),
        (total, 0, 0, 0),
        "{what}: {s:?}"
    );
    assert!(s.healthy, "{what}: {s:?}");
    assert!(
        s.script_reloads >= 1,
        "{what}: a flushed script was run again: {s:?}"
    );
}

#[test]
fn sync_threads_under_a_flush_storm() {
    let server = redis_or_skip!();
    let (token, period) = limiters(&server);
    let flushes = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| flusher(&server, &flushes, &done));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (token, period, flushes) = (&token, &period, &flushes);
                s.spawn(move || {
                    let key = format!("w{w}");
                    let mut seen = 0;
                    for _ in 0..ROUNDS {
                        // A flush happened since the last round: this round's first
                        // calls may meet NOSCRIPT.
                        seen = next_flush(flushes, seen);
                        for _ in 0..PER_ROUND {
                            assert_eq!(token.allow_key_n(&key, 1), Ok(()));
                            assert!(period.take(&key).unwrap().is_allowed());
                        }
                    }
                })
            })
            .collect();
        // The flusher runs until every worker is done (each one waits for its flushes).
        let joined: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::Release);
        for j in joined {
            if let Err(panic) = j {
                std::panic::resume_unwind(panic);
            }
        }
    });
    assert!(flushes.load(Ordering::Acquire) >= ROUNDS as u64);
    assert_all_on_redis(&server, &token, &period);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_tasks_under_a_flush_storm() {
    let server = Arc::new(redis_or_skip!());
    let (token, period) = limiters(&server);
    let flushes = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let flushing = {
        let (server, flushes, done) = (server.clone(), flushes.clone(), done.clone());
        std::thread::spawn(move || flusher(&server, &flushes, &done))
    };
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (token, period, flushes) = (token.clone(), period.clone(), flushes.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("w{w}");
            let mut seen = 0;
            for _ in 0..ROUNDS {
                let end = Instant::now() + FLUSH_WAIT;
                while flushes.load(Ordering::Acquire) <= seen {
                    assert!(Instant::now() < end, "the flusher made no progress");
                    tokio::task::yield_now().await;
                }
                seen = flushes.load(Ordering::Acquire);
                for _ in 0..PER_ROUND {
                    assert_eq!(token.allow_key_n_async(&key, 1).await, Ok(()));
                    assert!(period.take_async(&key).await.unwrap().is_allowed());
                }
            }
        }));
    }
    let mut failed = None;
    for t in tasks {
        if let Err(e) = t.await {
            failed.get_or_insert(e);
        }
    }
    done.store(true, Ordering::Release);
    flushing.join().unwrap();
    if let Some(e) = failed {
        std::panic::resume_unwind(e.into_panic());
    }
    assert_all_on_redis(&server, &token, &period);
}
