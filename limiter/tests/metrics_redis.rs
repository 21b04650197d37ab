//! Feature `metrics`, on Redis: decisions counted by who made them (`backend="redis"`: a
//! round trip, equal to `RedisStats::decisions`; `rescue`: the failure policy, equal to
//! `policy_decisions`; `memory`: in process, a request over the burst or a lease's local
//! spend), and the backend's events: switches to the policy and back, errors by blame and
//! kind, script reloads, each equal to the `RedisStats` counter of the same events.
//!
//! Faults on a private redis-server (never the shared one): killed (one switch, rescue
//! decisions, server errors) and restarted (a switch back, Redis decides again); a bad key
//! (a counter at `i64::MAX`, a key of another type: key errors, no switch); `SCRIPT FLUSH`
//! (a script reload). Sync and async calls. Without `redis-server` the tests are skipped,
//! unless `KEEL_REQUIRE_SERVICES=1`: then they fail.

mod faults;
mod recorded;
mod support;

use std::time::Duration;

use faults::{Mode, allow, period_stats, take, token_stats, until};
use keel_limiter::redis::{RedisErrorKind, RedisStats, RedisStore};
use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, PeriodState, Rate, TokenLimiter};
use recorded::Recorded;

const DECISIONS: &str = "keel_limiter_decisions_total";
const SWITCHES: &str = "keel_limiter_backend_switches_total";
const ERRORS: &str = "keel_limiter_redis_errors_total";
const RELOADS: &str = "keel_limiter_script_reloads_total";

/// How long a restarted server may take to be seen by a probe (polled, not slept).
const WITHIN: Duration = Duration::from_secs(10);

/// Every error kind with its `error` and `blame` labels (the contract, spelled out).
const KINDS: [(RedisErrorKind, &str, &str); 7] = [
    (RedisErrorKind::Connection, "connection", "server"),
    (RedisErrorKind::Timeout, "timeout", "server"),
    (RedisErrorKind::Script, "script", "server"),
    (RedisErrorKind::WrongType, "wrong_type", "key"),
    (RedisErrorKind::Overflow, "overflow", "key"),
    (RedisErrorKind::UnexpectedReply, "unexpected_reply", "key"),
    (RedisErrorKind::Misrouted, "misrouted", "key"),
];

/// A store on `server` whose prober pings every 20 ms.
fn store(server: &support::RedisServer) -> RedisStore {
    support::store(&server.url()).probe_interval(Duration::from_millis(20))
}

/// A token limiter on Redis: 1 token an hour (nothing refills during a test), burst 3.
fn token(rec: &Recorded, store: &RedisStore, name: &str, policy: FailurePolicy) -> TokenLimiter {
    rec.build(|| {
        TokenLimiter::builder(Rate::new(1, Duration::from_secs(3600)), 3)
            .name(name)
            .redis(store.clone(), name)
            .failure_policy(policy)
            .build()
            .unwrap()
    })
}

/// A period limiter on Redis: 2 an hour per key.
fn period(rec: &Recorded, store: &RedisStore, name: &str, policy: FailurePolicy) -> PeriodLimiter {
    rec.build(|| {
        PeriodLimiter::builder(2, Duration::from_secs(3600))
            .name(name)
            .redis(store.clone(), name)
            .failure_policy(policy)
            .build()
            .unwrap()
    })
}

/// Every counter of limiter `name` agrees with its `RedisStats` and `policy_decisions`.
#[track_caller]
fn assert_agrees(rec: &Recorded, name: &str, s: &RedisStats, policy_decisions: u64) {
    let what = format!("{name}: {s:?}");
    let n = ("name", name);
    assert_eq!(
        rec.sum(DECISIONS, &[n, ("backend", "redis")]),
        s.decisions,
        "{what}"
    );
    assert_eq!(
        rec.sum(DECISIONS, &[n, ("backend", "rescue")]),
        policy_decisions,
        "{what}"
    );
    assert_eq!(
        rec.sum(SWITCHES, &[n, ("to", "fallback")]),
        s.switches_to_fallback,
        "{what}"
    );
    assert_eq!(
        rec.sum(SWITCHES, &[n, ("to", "redis")]),
        s.switches_back,
        "{what}"
    );
    for (kind, error, blame) in KINDS {
        assert_eq!(
            rec.sum(ERRORS, &[n, ("error", error), ("blame", blame)]),
            s.errors_by_kind.of(kind),
            "{error}: {what}"
        );
        assert_eq!(
            rec.matching(ERRORS, &[n, ("error", error)]).len(),
            1,
            "one series of {error}, blamed on the {blame}: {what}"
        );
    }
    assert_eq!(
        rec.sum(ERRORS, &[n, ("blame", "key")]),
        s.key_errors,
        "{what}"
    );
    assert_eq!(
        rec.sum(ERRORS, &[n, ("blame", "server")]),
        s.server_errors,
        "{what}"
    );
    assert_eq!(rec.sum(RELOADS, &[n]), s.script_reloads, "{what}");
}

#[track_caller]
fn assert_token_agrees(rec: &Recorded, l: &TokenLimiter) {
    assert_agrees(
        rec,
        l.name(),
        &token_stats(l),
        l.snapshot().policy_decisions,
    );
}

#[track_caller]
fn assert_period_agrees(rec: &Recorded, l: &PeriodLimiter) {
    assert_agrees(
        rec,
        l.name(),
        &period_stats(l),
        l.snapshot().policy_decisions,
    );
}

/// Decisions on Redis, by outcome; a request over the burst is refused in process. Every
/// series of a Redis limiter is registered at build time.
async fn decisions_on_redis(mode: Mode) {
    let server = redis_or_skip!();
    let store = store(&server);
    let rec = Recorded::new();
    let t = token(&rec, &store, "on-redis-t", FailurePolicy::FailClosed);
    let p = period(&rec, &store, "on-redis-p", FailurePolicy::FailClosed);

    // 3 backends x 3 outcomes, 2 switches, 7 error kinds, 1 reload counter; all zero.
    for name in [t.name(), p.name()] {
        for (metric, count) in [(DECISIONS, 9), (SWITCHES, 2), (ERRORS, 7), (RELOADS, 1)] {
            let of = rec.matching(metric, &[("name", name)]);
            assert_eq!(of.len(), count, "{metric} of {name}: {of:#?}");
            assert!(of.values().all(|&v| v == 0), "{of:#?}");
        }
    }

    for _ in 0..3 {
        assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    }
    assert!(matches!(
        allow(&t, mode, "k", 1).await,
        Err(Denied::Limited { .. })
    ));
    assert_eq!(
        allow(&t, mode, "k", 4).await,
        Err(Denied::NeverFits { n: 4, burst: 3 })
    );
    t.publish_metrics(); // decisions reach the recorder in batches
    assert_eq!(rec.decisions(t.name(), "redis", "allowed"), 3);
    assert_eq!(rec.decisions(t.name(), "redis", "limited"), 1);
    assert_eq!(rec.decisions(t.name(), "memory", "limited"), 1);
    assert_eq!(rec.sum(DECISIONS, &[("name", t.name())]), 5);

    let states = [
        PeriodState::Allowed,
        PeriodState::HitQuota,
        PeriodState::OverQuota,
    ];
    for state in states {
        assert_eq!(take(&p, mode, "k").await.unwrap().state, state);
    }
    p.publish_metrics();
    assert_eq!(rec.decisions(p.name(), "redis", "allowed"), 2);
    assert_eq!(rec.decisions(p.name(), "redis", "limited"), 1);
    assert_eq!(rec.sum(DECISIONS, &[("name", p.name())]), 3);

    assert_token_agrees(&rec, &t);
    assert_period_agrees(&rec, &p);
    assert_eq!(token_stats(&t).decisions, 4);
    assert_eq!(period_stats(&p).decisions, 3);
}

#[tokio::test]
async fn decisions_on_redis_sync() {
    decisions_on_redis(Mode::Sync).await;
}

#[tokio::test]
async fn decisions_on_redis_async() {
    decisions_on_redis(Mode::Async).await;
}

/// The server killed: one switch to the policy (its first error, counted by kind), the
/// policy's decisions as `rescue` (the rescue bucket's grants and refusals, fail-closed's
/// `unavailable`), and no more errors while switched. Restarted: one switch back, and
/// Redis decides again (its script reloaded: the new server has none).
async fn killed_and_restarted(mode: Mode) {
    let mut server = redis_or_skip!();
    let store = store(&server);
    let rec = Recorded::new();
    let t = token(&rec, &store, "killed-t", FailurePolicy::Rescue);
    let p = period(&rec, &store, "killed-p", FailurePolicy::FailClosed);
    assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    assert!(take(&p, mode, "k").await.unwrap().is_allowed());

    server.stop();
    // The rescue's own bucket of 3, then refusals; the period limiter fails closed.
    for _ in 0..3 {
        assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    }
    assert!(matches!(
        allow(&t, mode, "k", 1).await,
        Err(Denied::Limited { .. })
    ));
    for i in 0..5 {
        assert_eq!(
            take(&p, mode, &format!("k{i}")).await,
            Err(Denied::Unavailable)
        );
    }
    for (l, s) in [(t.name(), token_stats(&t)), (p.name(), period_stats(&p))] {
        let what = format!("{l}: {s:?}");
        assert!(!s.healthy, "{what}");
        assert_eq!(
            rec.get(
                SWITCHES,
                &[("name", l), ("kind", kind_of(l)), ("to", "fallback")]
            ),
            1
        );
        assert_eq!(rec.sum(SWITCHES, &[("name", l), ("to", "redis")]), 0);
        // The first error switched: no request reached the server after it.
        assert_eq!(
            rec.sum(ERRORS, &[("name", l), ("blame", "server")]),
            1,
            "{what}"
        );
        assert_eq!(
            rec.sum(ERRORS, &[("name", l), ("blame", "key")]),
            0,
            "{what}"
        );
        let kinds = rec.sum(ERRORS, &[("name", l), ("error", "connection")])
            + rec.sum(ERRORS, &[("name", l), ("error", "timeout")]);
        assert_eq!(kinds, 1, "a lost connection: {what}");
        if mode == Mode::Sync {
            // A pooled connection to a killed server reads its end.
            assert_eq!(
                rec.sum(ERRORS, &[("name", l), ("error", "connection")]),
                1,
                "{what}"
            );
        }
    }
    t.publish_metrics();
    p.publish_metrics();
    assert_eq!(rec.decisions(t.name(), "rescue", "allowed"), 3);
    assert_eq!(rec.decisions(t.name(), "rescue", "limited"), 1);
    assert_eq!(rec.decisions(t.name(), "redis", "allowed"), 1);
    assert_eq!(rec.decisions(p.name(), "rescue", "unavailable"), 5);
    assert_eq!(rec.decisions(p.name(), "redis", "allowed"), 1);
    assert_token_agrees(&rec, &t);
    assert_period_agrees(&rec, &p);

    server.restart();
    until(WITHIN, "a probe sees the restarted server", || {
        token_stats(&t).healthy && period_stats(&p).healthy
    })
    .await;
    for l in [t.name(), p.name()] {
        assert_eq!(rec.sum(SWITCHES, &[("name", l), ("to", "redis")]), 1);
        assert_eq!(rec.sum(SWITCHES, &[("name", l), ("to", "fallback")]), 1);
    }
    // The restarted server is empty: a fresh bucket and counter, decided on Redis, after
    // sending the script again.
    assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    assert_eq!(
        take(&p, mode, "k").await.unwrap().state,
        PeriodState::Allowed
    );
    t.publish_metrics();
    p.publish_metrics();
    assert_eq!(rec.decisions(t.name(), "redis", "allowed"), 2);
    assert_eq!(rec.decisions(p.name(), "redis", "allowed"), 2);
    for l in [t.name(), p.name()] {
        // Once on each server: a new server has no script cached.
        assert_eq!(rec.sum(RELOADS, &[("name", l)]), 2, "{l}");
    }
    assert_token_agrees(&rec, &t);
    assert_period_agrees(&rec, &p);
}

/// The `kind` label of the limiters of these tests, by their names.
fn kind_of(name: &str) -> &'static str {
    if name.ends_with("-t") {
        "token"
    } else {
        "period"
    }
}

#[tokio::test]
async fn killed_and_restarted_sync() {
    killed_and_restarted(Mode::Sync).await;
}

#[tokio::test]
async fn killed_and_restarted_async() {
    killed_and_restarted(Mode::Async).await;
}

/// A bad key's errors are the key's: counted with `blame="key"` and their kind, the
/// policy's answers as `rescue`, and no switch; the other keys stay on Redis.
async fn bad_keys(mode: Mode) {
    let server = redis_or_skip!();
    let store = store(&server);
    let rec = Recorded::new();
    let t = token(&rec, &store, "bad-t", FailurePolicy::FailOpen);
    let p = period(&rec, &store, "bad-p", FailurePolicy::Rescue);
    let mut c = server.connection();
    // A string where the token bucket's hash belongs; a counter at i64::MAX.
    let _: () = redis::cmd("SET")
        .arg("{bad-t:bad}")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("{bad-p:bad}")
        .arg(i64::MAX)
        .query(&mut c)
        .unwrap();

    for round in 0..3 {
        // Fail-open: allowed by the policy.
        assert_eq!(allow(&t, mode, "bad", 1).await, Ok(()));
        assert_eq!(allow(&t, mode, &format!("good{round}"), 1).await, Ok(()));
        // The rescue's own window: 2 a window, then over.
        let d = take(&p, mode, "bad").await.unwrap();
        assert_eq!(d.is_allowed(), round < 2, "{d:?}");
        assert!(
            take(&p, mode, &format!("good{round}"))
                .await
                .unwrap()
                .is_allowed()
        );
    }
    let (tn, pn) = (t.name(), p.name());
    t.publish_metrics();
    p.publish_metrics();
    assert_eq!(
        rec.get(
            ERRORS,
            &[
                ("name", tn),
                ("kind", "token"),
                ("blame", "key"),
                ("error", "wrong_type")
            ]
        ),
        3
    );
    assert_eq!(
        rec.get(
            ERRORS,
            &[
                ("name", pn),
                ("kind", "period"),
                ("blame", "key"),
                ("error", "overflow")
            ]
        ),
        3
    );
    for l in [tn, pn] {
        assert_eq!(rec.sum(ERRORS, &[("name", l)]), 3, "only the bad key's");
        assert_eq!(rec.sum(SWITCHES, &[("name", l)]), 0, "no switch");
        assert_eq!(rec.decisions(l, "redis", "allowed"), 3, "the good keys");
    }
    assert_eq!(rec.decisions(tn, "rescue", "allowed"), 3);
    assert_eq!(rec.decisions(pn, "rescue", "allowed"), 2);
    assert_eq!(rec.decisions(pn, "rescue", "limited"), 1);
    assert!(token_stats(&t).healthy && period_stats(&p).healthy);
    assert_token_agrees(&rec, &t);
    assert_period_agrees(&rec, &p);
}

#[tokio::test]
async fn bad_keys_sync() {
    bad_keys(Mode::Sync).await;
}

#[tokio::test]
async fn bad_keys_async() {
    bad_keys(Mode::Async).await;
}

/// A new server has no script, and `SCRIPT FLUSH` empties the cache: the next decision is
/// sent again with `EVAL` (one reload each time), still decided on Redis; in between the
/// script stays cached (no reload).
async fn script_flush(mode: Mode) {
    let server = redis_or_skip!();
    let store = store(&server);
    let rec = Recorded::new();
    let t = token(&rec, &store, "flush-t", FailurePolicy::FailClosed);
    let p = period(&rec, &store, "flush-p", FailurePolicy::FailClosed);
    assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    assert!(take(&p, mode, "k").await.unwrap().is_allowed());
    for l in [t.name(), p.name()] {
        // The new server had no script cached.
        assert_eq!(rec.sum(RELOADS, &[("name", l)]), 1);
    }
    assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    assert!(take(&p, mode, "k2").await.unwrap().is_allowed());
    for l in [t.name(), p.name()] {
        assert_eq!(rec.sum(RELOADS, &[("name", l)]), 1, "cached since");
    }

    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    assert!(take(&p, mode, "k3").await.unwrap().is_allowed());
    t.publish_metrics();
    p.publish_metrics();
    for l in [t.name(), p.name()] {
        assert_eq!(
            rec.get(RELOADS, &[("name", l), ("kind", kind_of(l))]),
            2,
            "{l}"
        );
        assert_eq!(rec.decisions(l, "redis", "allowed"), 3, "{l}");
        assert_eq!(rec.sum(ERRORS, &[("name", l)]), 0, "{l}");
    }
    assert_token_agrees(&rec, &t);
    assert_period_agrees(&rec, &p);
}

#[tokio::test]
async fn script_flush_sync() {
    script_flush(Mode::Sync).await;
}

#[tokio::test]
async fn script_flush_async() {
    script_flush(Mode::Async).await;
}

/// Lease mode: a decision spent from the local lease is `backend="memory"`, a round trip
/// `redis` (equal to `RedisStats::decisions`).
async fn lease(mode: Mode) {
    let server = redis_or_skip!();
    let store = store(&server);
    let rec = Recorded::new();
    let t = rec.build(|| {
        TokenLimiter::builder(Rate::new(1, Duration::from_secs(3600)), 20)
            .name("lease-t")
            .redis(store.clone(), "lease-t")
            .lease(5, Duration::from_secs(3600))
            .failure_policy(FailurePolicy::FailClosed)
            .build()
            .unwrap()
    });
    for _ in 0..10 {
        assert_eq!(allow(&t, mode, "k", 1).await, Ok(()));
    }
    let trips = token_stats(&t).decisions;
    assert!(
        (2..10).contains(&trips),
        "batches of 5: {trips} round trips"
    );
    assert_eq!(rec.decisions(t.name(), "redis", "allowed"), trips);
    assert_eq!(rec.decisions(t.name(), "memory", "allowed"), 10 - trips);
    assert_token_agrees(&rec, &t);
}

#[tokio::test]
async fn lease_sync() {
    lease(Mode::Sync).await;
}

#[tokio::test]
async fn lease_async() {
    lease(Mode::Async).await;
}
