//! Redis failing: the private server killed mid-run and restarted on the same port, or
//! not there at all. The failure policy decides from the first error, no error reaches
//! the caller, and the probe switches back once the server answers.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_limiter::redis::{RedisErrorKind, RedisStats, RedisStore};
use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use support::eventually;

/// How long a switch back (or the prober's pings, or a switch) may take: polled, not
/// slept, with a deadline far beyond the probe interval (100 ms) for a loaded machine.
const BACK_WITHIN: Duration = Duration::from_secs(30);

fn token(url: &str, prefix: &str, policy: FailurePolicy) -> TokenLimiter {
    TokenLimiter::builder(Rate::per_second(5), 10)
        .redis(support::store(url), prefix)
        .failure_policy(policy)
        .build()
        .unwrap()
}

fn period(url: &str, prefix: &str, policy: FailurePolicy) -> PeriodLimiter {
    PeriodLimiter::builder(5, Duration::from_secs(60))
        .redis(support::store(url), prefix)
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

/// At most one prober: it pings once per interval, so over `elapsed` it sent at most
/// `elapsed / interval` pings (two probers would send twice as many).
fn assert_one_prober(s: &RedisStats, elapsed: Duration) {
    let most = (elapsed.as_millis() / 100) as u64 + 1;
    assert!(
        s.probes <= most,
        "{} probes in {elapsed:?}: {s:?}",
        s.probes
    );
}

#[test]
fn the_rescue_decides_while_the_server_is_down_and_redis_again_after() {
    let mut server = redis_or_skip!();
    let l = token(&server.url(), "fo", FailurePolicy::Rescue);
    for _ in 0..3 {
        assert!(l.allow());
    }
    assert_eq!(stats(&l).decisions, 3);

    server.stop();
    let down = Instant::now();
    // The first call meets the error and is decided by the rescue (a full bucket).
    assert_eq!(l.allow_n(1), Ok(()));
    let s = stats(&l);
    assert!(!s.healthy, "{s:?}");
    assert_eq!(
        (s.errors, s.switches_to_fallback, s.switches_back),
        (1, 1, 0)
    );
    assert_eq!(s.last_error_kind, Some(RedisErrorKind::Connection));
    assert!(s.last_error.is_some());
    assert_eq!(l.snapshot().policy_decisions, 1);

    // While unhealthy, Redis is not asked: no more errors, every call is a decision.
    let mut allowed = 1;
    for _ in 0..100 {
        match l.allow_n(1) {
            Ok(()) => allowed += 1,
            Err(Denied::Limited { .. }) => {}
            Err(other) => panic!("no error reaches the caller: {other:?}"),
        }
    }
    // The rescue bucket (burst 10, 5/s) refills while the calls run: a token per 200 ms
    // that passed (a busy machine may take that long over them).
    let most = 10 + (5.0 * down.elapsed().as_secs_f64()).floor() as u32 + 1;
    assert!(
        (10..=most).contains(&allowed),
        "the rescue bucket (10) allowed {allowed}, at most {most}"
    );
    let s = stats(&l);
    assert_eq!((s.errors, s.decisions), (1, 3));
    assert_eq!(l.snapshot().policy_decisions, 101);

    // The prober keeps pinging (one prober) while the server is down.
    assert!(eventually(BACK_WITHIN, || stats(&l).probes >= 3));
    assert_one_prober(&stats(&l), down.elapsed());
    assert!(!stats(&l).healthy);

    server.restart();
    assert!(
        eventually(BACK_WITHIN, || stats(&l).healthy),
        "switched back: {:?}",
        stats(&l)
    );
    let s = stats(&l);
    assert_eq!((s.switches_to_fallback, s.switches_back), (1, 1));
    // Redis decides again (a new server: a full bucket).
    let before = l.snapshot().policy_decisions;
    assert!(l.allow());
    let s = stats(&l);
    assert_eq!((s.decisions, s.errors), (4, 1), "{s:?}");
    assert_eq!(l.snapshot().policy_decisions, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_under_200_async_tasks() {
    let mut server = redis_or_skip!();
    let l = token(&server.url(), "fo-async", FailurePolicy::Rescue);
    let p = period(&server.url(), "fo-async-p", FailurePolicy::Rescue);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (l, p, stop) = (l.clone(), p.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("k{}", i % 10);
            let mut calls = 0u32;
            while !stop.load(Ordering::Relaxed) || calls < 20 {
                match l.allow_key_n_async(&key, 1).await {
                    Ok(()) | Err(Denied::Limited { .. }) => {}
                    Err(other) => panic!("no error reaches the caller: {other:?}"),
                }
                let d = p.take_async(&key).await.expect("no error under Rescue");
                assert!(matches!(
                    d.state,
                    PeriodState::Allowed | PeriodState::HitQuota | PeriodState::OverQuota
                ));
                calls += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    // Kill the server once Redis has answered a good part of the decisions.
    let running = Instant::now();
    while stats(&l).decisions < 1000 {
        assert!(
            running.elapsed() < Duration::from_secs(30),
            "{:?}",
            stats(&l)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.stop();
    let down = Instant::now();
    while stats(&l).healthy || period_stats(&p).healthy {
        assert!(down.elapsed() < BACK_WITHIN, "{:?}", stats(&l));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    for s in [stats(&l), period_stats(&p)] {
        assert!(!s.healthy);
        assert_eq!(s.switches_to_fallback, 1, "{s:?}");
        assert!(s.errors >= 1);
        assert!(matches!(
            s.last_error_kind,
            Some(RedisErrorKind::Connection | RedisErrorKind::Timeout)
        ));
        assert_one_prober(&s, down.elapsed());
    }
    assert!(l.snapshot().policy_decisions > 0);
    assert!(p.snapshot().policy_decisions > 0);

    let mut server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    let back = Instant::now();
    while !(stats(&l).healthy && period_stats(&p).healthy) {
        assert!(back.elapsed() < BACK_WITHIN, "{:?}", stats(&l));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The async connection was replaced: Redis decides again.
    let (d, e) = (stats(&l).decisions, stats(&l).errors);
    assert_eq!(l.allow_key_n_async("again", 1).await, Ok(()));
    let s = stats(&l);
    assert_eq!(
        (s.decisions, s.errors, s.switches_back),
        (d + 1, e, 1),
        "{s:?}"
    );
    let (d, e) = (period_stats(&p).decisions, period_stats(&p).errors);
    assert_eq!(
        p.take_async("again").await.unwrap().state,
        PeriodState::Allowed
    );
    let s = period_stats(&p);
    assert_eq!(
        (s.decisions, s.errors, s.switches_back),
        (d + 1, e, 1),
        "{s:?}"
    );
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
}

#[test]
fn fail_open_and_fail_closed() {
    let mut server = redis_or_skip!();
    let url = server.url();
    let open = token(&url, "open", FailurePolicy::FailOpen);
    // A token a minute: the refusals on Redis below cannot be undone by a slow machine.
    let closed = TokenLimiter::builder(Rate::per_minute(1), 10)
        .redis(support::store(&url), "closed")
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    let p_open = period(&url, "p-open", FailurePolicy::FailOpen);
    let p_closed = period(&url, "p-closed", FailurePolicy::FailClosed);
    assert_eq!(closed.allow_n(10), Ok(()));
    assert!(matches!(closed.allow_n(1), Err(Denied::Limited { .. })));
    assert!(p_closed.take("k").unwrap().is_allowed());

    server.stop();
    for _ in 0..50 {
        assert_eq!(open.allow_n(10), Ok(()));
        assert_eq!(closed.allow_n(1), Err(Denied::Unavailable));
        let d = p_open.take("k").unwrap();
        assert_eq!(d.state, PeriodState::Allowed);
        assert_eq!(p_closed.take("k"), Err(Denied::Unavailable));
    }
    assert_eq!(Denied::Unavailable.http_status(), 503);
    for s in [
        stats(&open),
        stats(&closed),
        period_stats(&p_open),
        period_stats(&p_closed),
    ] {
        assert!(!s.healthy);
        assert_eq!((s.errors, s.switches_to_fallback), (1, 1), "{s:?}");
    }
    assert_eq!(open.snapshot().policy_decisions, 50);
    assert_eq!(closed.snapshot().policy_decisions, 50);

    server.restart();
    assert!(eventually(BACK_WITHIN, || {
        stats(&open).healthy && stats(&closed).healthy && period_stats(&p_closed).healthy
    }));
    // Redis decides again (a new, empty server).
    assert_eq!(closed.allow_n(10), Ok(()));
    assert!(matches!(closed.allow_n(1), Err(Denied::Limited { .. })));
    assert!(p_closed.take("k").unwrap().is_allowed());
}

/// go-zero `TestPeriodLimit_RedisUnavailable` and `TestTokenLimit_Rescue`: the server is
/// down before the first call; the rescue decides and no error reaches the caller.
#[test]
fn unavailable_from_the_start() {
    let server = redis_or_skip!(stopped);
    let p = period(&server.url(), "p", FailurePolicy::Rescue);
    let mut counts = [0; 3];
    for _ in 0..100 {
        let d = p.take("k").expect("the rescue decides");
        counts[d.state as usize] += 1;
    }
    assert_eq!(counts, [4, 1, 95]);
    assert_eq!(period_stats(&p).errors, 1);

    let l = token(&server.url(), "t", FailurePolicy::Rescue);
    let start = Instant::now();
    let allowed = (0..100).filter(|_| l.allow()).count() as u32;
    let most = 10 + (5.0 * start.elapsed().as_secs_f64()).floor() as u32;
    assert!((10..=most).contains(&allowed), "{allowed}");
}

/// go-zero `TestTokenLimit_Rescue`: the server is down for the first 50 of 100 calls
/// 10 ms apart, then started: at least burst + rate allowed, no more than the rescue's
/// and Redis's buckets could both grant.
#[test]
fn rescue_then_redis() {
    let mut server = redis_or_skip!(stopped);
    let l = token(&server.url(), "rescue", FailurePolicy::Rescue);
    let start = Instant::now();
    let mut allowed = 0;
    for i in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        if i == 50 {
            server.restart();
        }
        if l.allow() {
            allowed += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert!(allowed >= 15, "{allowed}");
    let most = 2 * 10 + (5.0 * elapsed).floor() as u32 + 2;
    assert!(allowed <= most, "{allowed} > {most}");
    // The prober (one ping per 100 ms) switches back once the server answers: usually within
    // the loop's last 500 ms, but a busy machine may delay the prober's thread, so wait for
    // it (polled) instead of asserting it happened by the end of the loop.
    assert!(
        eventually(BACK_WITHIN, || stats(&l).switches_back == 1),
        "switched back: {:?}",
        stats(&l)
    );
    let s = stats(&l);
    assert_eq!(s.switches_to_fallback, 1);
    assert_eq!(s.switches_back, 1, "{s:?}");
    // Redis decides again (whatever its answer).
    let _ = l.allow();
    assert_eq!(stats(&l).decisions, s.decisions + 1);
}

/// A stalled server (SIGSTOP: connections are accepted, nothing is answered) cannot hang
/// callers: the decision times out after the store's timeout and the policy decides. (Not
/// before the timeout; how long after it depends on the machine's load: the upper bound is
/// only a bound against a hang.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_times_out() {
    let server = redis_or_skip!();
    let store = RedisStore::open(&server.url())
        .unwrap()
        .timeout(Duration::from_millis(200));
    let sync = TokenLimiter::builder(Rate::per_second(5), 10)
        .redis(store.clone(), "stall")
        .build()
        .unwrap();
    let asynchronous = TokenLimiter::builder(Rate::per_second(5), 10)
        .redis(store, "stall-async")
        .build()
        .unwrap();
    assert!(sync.allow());
    assert!(asynchronous.allow_n_async(1).await.is_ok());

    server.signal("-STOP");
    let start = Instant::now();
    let l = sync.clone();
    let decided = tokio::task::spawn_blocking(move || l.allow_n(1))
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(decided, Ok(()), "the rescue decides");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(stats(&sync).last_error_kind, Some(RedisErrorKind::Timeout));

    let start = Instant::now();
    assert_eq!(asynchronous.allow_n_async(1).await, Ok(()));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let s = stats(&asynchronous);
    assert_eq!(s.last_error_kind, Some(RedisErrorKind::Timeout), "{s:?}");
    assert!(!s.healthy);

    server.signal("-CONT");
    let back = Instant::now();
    while !(stats(&sync).healthy && stats(&asynchronous).healthy) {
        assert!(back.elapsed() < BACK_WITHIN, "{:?}", stats(&sync));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let l = sync.clone();
    let d = stats(&sync).decisions;
    assert!(
        tokio::task::spawn_blocking(move || l.allow())
            .await
            .unwrap()
    );
    assert_eq!(stats(&sync).decisions, d + 1);
    let d = stats(&asynchronous).decisions;
    assert!(asynchronous.allow_n_async(1).await.is_ok());
    assert_eq!(stats(&asynchronous).decisions, d + 1);
}
