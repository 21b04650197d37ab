//! Server-wide faults still switch the whole limiter, as before the key/server
//! classification: a read-only replica (`REPLICAOF` a port nobody listens on), a server
//! out of memory (`maxmemory 1`), a server busy in a script (`BUSY`), a server killed.
//! The first error switches every key to the failure policy (no further request reaches
//! Redis), it is counted as a server error of its kind, and the probe switches back once
//! the server answers `PING`. Sync and async, on a private redis-server.
#![cfg(feature = "redis")]

mod faults;
mod support;

use std::time::Duration;

use faults::{Mode, allow, period_stats, take, token_stats, until};
use keel_limiter::redis::{Blame, RedisErrorKind, RedisStats, RedisStore};
use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use support::RedisServer;

/// How long a switch (back) or a server may take to happen (polled, not slept).
const WITHIN: Duration = Duration::from_secs(10);
/// Requests for other keys while switched.
const OTHERS: u64 = 20;

fn limiters(store: &RedisStore, prefix: &str) -> (TokenLimiter, PeriodLimiter) {
    let token = TokenLimiter::builder(Rate::new(1, Duration::from_secs(3600)), 50)
        .redis(store.clone(), prefix)
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    let period = PeriodLimiter::builder(50, Duration::from_secs(3600))
        .redis(store.clone(), format!("{prefix}-p"))
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .unwrap();
    (token, period)
}

fn query<T: redis::FromRedisValue>(server: &RedisServer, cmd: &mut redis::Cmd) -> T {
    cmd.query(&mut server.connection()).unwrap()
}

/// One server error of `kind` switched the limiter: unhealthy, one switch, no key error.
#[track_caller]
fn assert_switched(s: &RedisStats, kind: RedisErrorKind, text: &str) {
    let what = format!("{s:?}");
    assert!(!s.healthy, "{what}");
    assert_eq!(s.switches_to_fallback, 1, "{what}");
    assert_eq!(
        (s.errors, s.server_errors, s.key_errors),
        (1, 1, 0),
        "{what}"
    );
    assert_eq!(s.errors_by_kind.of(kind), 1, "{what}");
    assert_eq!(s.errors_by_kind.blamed(Blame::Server), 1, "{what}");
    assert_eq!(s.last_error_kind, Some(kind), "{what}");
    assert!(
        s.last_error.as_deref().is_some_and(|e| e.contains(text)),
        "{text}: {what}"
    );
}

/// A baseline decision on Redis for each limiter.
async fn on_redis(token: &TokenLimiter, period: &PeriodLimiter, mode: Mode) {
    assert_eq!(allow(token, mode, "a", 1).await, Ok(()));
    assert!(take(period, mode, "a").await.unwrap().is_allowed());
}

/// The first request after the fault meets it and switches each limiter; the requests
/// for other keys then never reach Redis (the error count stays 1) and all get the
/// policy's answer.
async fn switched_by(
    token: &TokenLimiter,
    period: &PeriodLimiter,
    mode: Mode,
    kind: RedisErrorKind,
    text: &str,
) {
    assert_eq!(allow(token, mode, "a", 1).await, Err(Denied::Unavailable));
    assert_eq!(take(period, mode, "a").await, Err(Denied::Unavailable));
    assert_switched(&token_stats(token), kind, text);
    assert_switched(&period_stats(period), kind, text);
    for i in 0..OTHERS {
        let key = format!("other{i}");
        assert_eq!(allow(token, mode, &key, 1).await, Err(Denied::Unavailable));
        assert_eq!(take(period, mode, &key).await, Err(Denied::Unavailable));
    }
    for (s, policy) in [
        (token_stats(token), token.snapshot().policy_decisions),
        (period_stats(period), period.snapshot().policy_decisions),
    ] {
        assert_eq!(
            (s.errors, s.decisions),
            (1, 1),
            "nothing reached Redis: {s:?}"
        );
        assert_eq!(policy, OTHERS + 1, "{s:?}");
    }
}

/// A read-only replica and a server out of memory answer `PING`, so a probe would switch
/// back at once (and the next write switch again): the probe is kept out of the way (one
/// an hour) to see that no request reaches the server once switched. The busy server
/// below shows the probe's round trip.
async fn answers_ping_but_refuses_writes(mode: Mode) {
    let server = redis_or_skip!();
    let store = support::store(&server.url()).probe_interval(Duration::from_secs(3600));

    let (token, period) = limiters(&store, "readonly");
    on_redis(&token, &period, mode).await;
    let dead = support::free_port();
    let _: () = query(&server, redis::cmd("REPLICAOF").arg("127.0.0.1").arg(dead));
    switched_by(
        &token,
        &period,
        mode,
        RedisErrorKind::Script,
        "read only replica",
    )
    .await;
    let _: () = query(&server, redis::cmd("REPLICAOF").arg("NO").arg("ONE"));

    let (token, period) = limiters(&store, "oom");
    on_redis(&token, &period, mode).await;
    let _: () = query(
        &server,
        redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1"),
    );
    switched_by(&token, &period, mode, RedisErrorKind::Script, "OOM").await;
    let _: () = query(
        &server,
        redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("0"),
    );

    // Nothing was written for the other keys while switched.
    let others: u64 = query(
        &server,
        redis::cmd("EVAL")
            .arg("return #redis.call('KEYS', '*other*')")
            .arg(0),
    );
    assert_eq!(others, 0);
}

#[tokio::test]
async fn read_only_and_out_of_memory_switch_the_limiter_sync() {
    answers_ping_but_refuses_writes(Mode::Sync).await;
}

#[tokio::test]
async fn read_only_and_out_of_memory_switch_the_limiter_async() {
    answers_ping_but_refuses_writes(Mode::Async).await;
}

/// A server busy in someone's endless script answers `BUSY` to everything, `PING`
/// included: the limiter switches, its probes fail until `SCRIPT KILL`, then it switches
/// back and decides on Redis again.
async fn busy_until_killed(mode: Mode) {
    let server = redis_or_skip!();
    let store = RedisStore::open(&server.url())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .probe_interval(Duration::from_millis(20));
    let (token, period) = limiters(&store, "busy");
    on_redis(&token, &period, mode).await;

    // Scripts running over 10 ms are answered BUSY to other clients.
    let _: () = query(
        &server,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("lua-time-limit")
            .arg("10"),
    );
    let mut looping = server.connection();
    looping
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let busy = std::thread::spawn(move || {
        redis::cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query::<()>(&mut looping)
    });
    let mut c = server.connection();
    until(WITHIN, "the server answers BUSY", || {
        redis::cmd("PING")
            .query::<String>(&mut c)
            .is_err_and(|e| e.code() == Some("BUSY"))
    })
    .await;

    switched_by(&token, &period, mode, RedisErrorKind::Script, "BUSY").await;
    // The probes' PINGs are answered BUSY too: still switched.
    until(WITHIN, "three probes each", || {
        token_stats(&token).probes >= 3 && period_stats(&period).probes >= 3
    })
    .await;
    for s in [token_stats(&token), period_stats(&period)] {
        assert!(!s.healthy && s.switches_back == 0, "{s:?}");
    }

    let killed: String = redis::cmd("SCRIPT").arg("KILL").query(&mut c).unwrap();
    assert_eq!(killed, "OK");
    let ended = tokio::task::spawn_blocking(move || busy.join().unwrap())
        .await
        .unwrap();
    assert!(ended.is_err(), "the script was killed: {ended:?}");

    until(WITHIN, "switched back", || {
        token_stats(&token).healthy && period_stats(&period).healthy
    })
    .await;
    assert_eq!(allow(&token, mode, "b", 1).await, Ok(()));
    let d = take(&period, mode, "b").await.unwrap();
    assert_eq!(d.state, PeriodState::Allowed);
    assert!(d.resets_in > Duration::from_secs(3000), "{d:?}");
    for s in [token_stats(&token), period_stats(&period)] {
        assert_eq!(
            (s.decisions, s.errors, s.switches_back),
            (2, 1, 1),
            "decided on Redis again: {s:?}"
        );
    }
    let tokens: f64 = query(&server, redis::cmd("HGET").arg("{busy:b}").arg("tokens"));
    assert!((49.0..49.5).contains(&tokens), "{tokens}");
    let count: u32 = query(&server, redis::cmd("GET").arg("{busy-p:b}"));
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_server_switches_until_it_answers_sync() {
    busy_until_killed(Mode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_server_switches_until_it_answers_async() {
    busy_until_killed(Mode::Async).await;
}

/// Key errors before a server fault do not stop it from switching: a key of the wrong
/// type is a key error (no switch), then the server is killed (a switch), then it comes
/// back.
async fn key_error_then_killed(mode: Mode) {
    let mut server = redis_or_skip!();
    let store = support::store(&server.url()).probe_interval(Duration::from_millis(20));
    let (token, period) = limiters(&store, "kill");
    on_redis(&token, &period, mode).await;
    let _: () = query(&server, redis::cmd("SET").arg("{kill:bad}").arg("x"));
    let _: () = query(
        &server,
        redis::cmd("HSET").arg("{kill-p:bad}").arg("f").arg("v"),
    );
    assert_eq!(
        allow(&token, mode, "bad", 1).await,
        Err(Denied::Unavailable)
    );
    assert_eq!(take(&period, mode, "bad").await, Err(Denied::Unavailable));
    for s in [token_stats(&token), period_stats(&period)] {
        assert!(s.healthy, "{s:?}");
        assert_eq!((s.key_errors, s.server_errors), (1, 0), "{s:?}");
    }

    let mut server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    assert_eq!(allow(&token, mode, "a", 1).await, Err(Denied::Unavailable));
    assert_eq!(take(&period, mode, "a").await, Err(Denied::Unavailable));
    for s in [token_stats(&token), period_stats(&period)] {
        let what = format!("{s:?}");
        assert!(!s.healthy, "{what}");
        assert_eq!(s.switches_to_fallback, 1, "{what}");
        assert_eq!(
            (s.errors, s.key_errors, s.server_errors),
            (2, 1, 1),
            "{what}"
        );
        assert_eq!(s.errors_by_kind.wrong_type, 1, "{what}");
        assert_eq!(s.errors_by_kind.blamed(Blame::Server), 1, "{what}");
        assert!(
            matches!(
                s.last_error_kind,
                Some(RedisErrorKind::Connection | RedisErrorKind::Timeout)
            ),
            "{what}"
        );
    }

    server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    until(WITHIN, "switched back", || {
        token_stats(&token).healthy && period_stats(&period).healthy
    })
    .await;
    // A new, empty server decides again.
    assert_eq!(allow(&token, mode, "a", 1).await, Ok(()));
    assert!(take(&period, mode, "a").await.unwrap().is_allowed());
    for s in [token_stats(&token), period_stats(&period)] {
        assert_eq!((s.decisions, s.errors, s.switches_back), (2, 2, 1), "{s:?}");
    }
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_error_then_a_killed_server_sync() {
    key_error_then_killed(Mode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_error_then_a_killed_server_async() {
    key_error_then_killed(Mode::Async).await;
}
