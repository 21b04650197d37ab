//! (c) Overload: far more concurrent clients than the service can serve. The capacity is
//! explicit: [`POOL`] connections, each query held [`QUERY`] in PostgreSQL, so at most
//! `POOL` reads run at once and more only queue. The CPU signal is set by hand to the
//! shedder's threshold, so the decision is the in-flight rule alone (in flight vs max
//! passes × min latency, learnt in a warm-up), not this machine's real CPU.
//!
//! Expected: refusals are 503 with `Retry-After`, answered in a fraction of the query
//! time; once the shedder is refusing, the admitted requests' p99 stays within 10× the
//! query time (unprotected, `CLIENTS / POOL` = 8 queries would queue ahead of each).

use std::collections::HashSet;
use std::time::Duration;

use super::client::{Reply, quantile};
use super::env::Env;
use super::load::{Load, count, statuses};

const POOL: usize = 4;
const QUERY: Duration = Duration::from_millis(100);
const CLIENTS: usize = 32;
/// A refused client's pause before its next request. The crowd still offers four times
/// the capacity (up to `CLIENTS / BACKOFF` = 160 requests a second against 40). Not much
/// more: the shedder refuses only while its in-flight average (stepped at completions,
/// here every 25 ms) is over the limit too, so each dip of the average admits the
/// requests arriving until the next completion, a burst that then queues; and a crowd
/// retrying at once floods this machine's CPU more than the service does.
const BACKOFF: Duration = Duration::from_millis(200);
/// Sequential requests per warm-up client: about 2.5 s of traffic at capacity, enough
/// buckets of the shedder's window to learn passes and latency.
const WARM_UP: usize = 25;
const SHED_WANTED: usize = 200;
const ADMITTED_WANTED: usize = 120;
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_fast_and_admitted_requests_stay_fast() {
    let Some(env) = Env::start("overload").await else {
        return;
    };
    let mut config = env.config.clone();
    (config.pool_size, config.query_delay) = (POOL, QUERY);
    config.breaker_timeout = Duration::from_secs(10); // the breaker stays out of this
    let cpu = config.cpu.clone().expect("the tests set the CPU");
    let server = env.serve(&config).await;
    let shedder = &server.app.shedder;

    // Warm-up at capacity, CPU idle: the shedder learns what the service sustains. Every
    // id is new (no cache hit): each request is one query.
    let mut warm = Load::start(server.addr, POOL, "warm", |n| format!("/users/{}", n + 1));
    assert!(
        warm.until(LIMIT, |r| r.len() >= POOL * WARM_UP).await,
        "warm-up answered"
    );
    let warm = warm.stop().await;
    assert_eq!(count(&warm, 200), warm.len(), "{:?}", statuses(&warm));
    let learnt = shedder.snapshot();
    println!(
        "overload: warm-up {} requests, shedder learnt max_pass {} min_rt {} ms: max_flight {:.1}",
        warm.len(),
        learnt.max_pass,
        learnt.min_rt_ms,
        learnt.max_flight
    );

    // The CPU at the threshold: overloaded, with the full in-flight allowance.
    cpu.set(learnt.cpu_threshold);
    let crowd = |n| format!("/users/{}", 10_000 + n);
    let mut load = Load::with_backoff(server.addr, CLIENTS, "crowd", BACKOFF, crowd);
    // Enough: many refusals, and many admissions in the steady state (see below), which
    // is known once every client has sent a request after the first refusal (a client's
    // earlier requests have then all been answered).
    let enough = |r: &[Reply]| {
        let Some(shed_at) = r
            .iter()
            .find(|r| r.status == 503)
            .map(|r| r.sent + r.elapsed)
        else {
            return false;
        };
        let late: HashSet<_> = r
            .iter()
            .filter(|r| r.sent >= shed_at)
            .map(|r| &r.client)
            .collect();
        let admitted = r.iter().filter(|r| r.status != 503);
        let drained = admitted
            .clone()
            .filter(|r| r.sent < shed_at)
            .map(|r| r.sent + r.elapsed)
            .max();
        let steady = admitted
            .filter(|r| r.sent >= drained.unwrap_or(shed_at))
            .count();
        late.len() == CLIENTS && count(r, 503) >= SHED_WANTED && steady >= ADMITTED_WANTED
    };
    let reached = load.until(LIMIT, enough).await;
    let replies = load.stop().await;
    let end = shedder.snapshot();
    println!(
        "overload: shedder at the end: max_pass {} min_rt {} ms max_flight {:.1} limit {:.1} avg_in_flight {:.1}",
        end.max_pass, end.min_rt_ms, end.max_flight, end.limit, end.avg_in_flight
    );
    assert!(
        reached,
        "overload reached its counts: {:?}",
        statuses(&replies)
    );

    let shed: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    let admitted: Vec<_> = replies.iter().filter(|r| r.status != 503).collect();
    assert_eq!(
        count(&replies, 404) + count(&replies, 503),
        replies.len(),
        "{:?}",
        statuses(&replies)
    );
    assert!(
        shed.iter().all(|r| r.retry_after.as_deref() == Some("1")),
        "Retry-After: 1"
    );
    // Every 503 is the shedder's: the breaker refused nothing.
    assert_eq!(shedder.snapshot().dropped as usize, shed.len());
    let breaker = server.app.breaker.snapshot();
    assert_eq!(
        breaker.history.total, breaker.history.accepts,
        "{breaker:?}"
    );

    let shed_latency: Vec<_> = shed.iter().map(|r| r.elapsed).collect();
    let (shed_p50, shed_p99) = (quantile(&shed_latency, 0.5), quantile(&shed_latency, 0.99));
    // Well under a query: a quarter of one (the refusal itself takes microseconds; the
    // rest is this loaded machine scheduling the client).
    assert!(
        shed_p50 < QUERY / 4,
        "a refusal is answered well under a query: p50 {shed_p50:?}"
    );

    // Steady state: requests sent once the shedder refuses and every request admitted
    // before it began (a first burst: a fresh decision has no in-flight average yet) has
    // been answered, so none waits behind that burst.
    let first_shed = shed
        .iter()
        .map(|r| r.sent + r.elapsed)
        .min()
        .expect("some were shed");
    let (before, after): (Vec<&&Reply>, Vec<_>) =
        admitted.iter().partition(|r| r.sent < first_shed);
    let drained = before
        .iter()
        .map(|r| r.sent + r.elapsed)
        .max()
        .unwrap_or(first_shed);
    let steady: Vec<_> = after
        .iter()
        .filter(|r| r.sent >= drained)
        .map(|r| r.elapsed)
        .collect();
    let before: Vec<_> = before.iter().map(|r| r.elapsed).collect();
    let steady_p99 = quantile(&steady, 0.99);
    println!(
        "overload: {} answers: {} shed (p50 {shed_p50:?}, p99 {shed_p99:?}), {} admitted: \
         {} before shedding began (p99 {:?}), {} in the steady state (p50 {:?}, p99 {steady_p99:?}); \
         query {QUERY:?}, pool {POOL}, {CLIENTS} clients",
        replies.len(),
        shed.len(),
        admitted.len(),
        before.len(),
        quantile(&before, 0.99),
        steady.len(),
        quantile(&steady, 0.5),
    );
    assert!(
        steady_p99 <= 10 * QUERY,
        "admitted p99 {steady_p99:?} > 10 × {QUERY:?}"
    );
}
