//! (c) Overload: far more concurrent clients than the service can serve. The capacity is
//! explicit: [`POOL`] connections, each query held [`QUERY`] in PostgreSQL, so at most
//! `POOL` reads run at once and more only queue. The CPU signal is set by hand to the
//! shedder's threshold, so the decision is the in-flight rule alone (in flight vs max
//! passes × min latency, learnt in a warm-up), not this machine's real CPU.
//!
//! Expected: refusals are 503 with `Retry-After`, answered in a fraction of the query
//! time; once the shedder is refusing, the admitted requests' p99 stays within 10× the
//! query time (unprotected, `CLIENTS / POOL` queries queue ahead of each request: 12×).

use std::time::Duration;

use super::client::{Reply, quantile};
use super::env::Env;
use super::load::{Load, count, statuses};

const POOL: usize = 4;
const QUERY: Duration = Duration::from_millis(50);
const CLIENTS: usize = 48;
/// Sequential requests per warm-up client: about 1.3 s of traffic at capacity, enough
/// buckets of the shedder's window to learn passes and latency.
const WARM_UP: usize = 25;
const SHED_WANTED: usize = 200;
const ADMITTED_WANTED: usize = 60;
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
    assert!(warm.until(LIMIT, |r| r.len() >= POOL * WARM_UP).await, "warm-up answered");
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
    let mut load = Load::start(server.addr, CLIENTS, "crowd", |n| format!("/users/{}", 10_000 + n));
    let enough = |r: &[Reply]| {
        let Some(first) = r.iter().position(|r| r.status == 503) else {
            return false;
        };
        let shed_at = r[first].sent + r[first].elapsed;
        let admitted_after = r.iter().filter(|r| r.status != 503 && r.sent >= shed_at).count();
        count(r, 503) >= SHED_WANTED && admitted_after >= ADMITTED_WANTED
    };
    let reached = load.until(LIMIT, enough).await;
    let replies = load.stop().await;
    assert!(reached, "overload reached its counts: {:?}", statuses(&replies));

    let shed: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    let admitted: Vec<_> = replies.iter().filter(|r| r.status != 503).collect();
    assert_eq!(count(&replies, 404) + count(&replies, 503), replies.len(), "{:?}", statuses(&replies));
    assert!(shed.iter().all(|r| r.retry_after.as_deref() == Some("1")), "Retry-After: 1");
    // Every 503 is the shedder's: the breaker refused nothing.
    assert_eq!(shedder.snapshot().dropped as usize, shed.len());
    let breaker = server.app.breaker.snapshot();
    assert_eq!(breaker.history.total, breaker.history.accepts, "{breaker:?}");

    let shed_latency: Vec<_> = shed.iter().map(|r| r.elapsed).collect();
    let (shed_p50, shed_p99) = (quantile(&shed_latency, 0.5), quantile(&shed_latency, 0.99));
    assert!(shed_p50 < QUERY, "a refusal is answered well under a query: p50 {shed_p50:?}");

    // Steady state: requests sent once the shedder had refused one.
    let first_shed = shed.iter().map(|r| r.sent + r.elapsed).min().expect("some were shed");
    let steady: Vec<_> = admitted.iter().filter(|r| r.sent >= first_shed).map(|r| r.elapsed).collect();
    let before: Vec<_> = admitted.iter().filter(|r| r.sent < first_shed).map(|r| r.elapsed).collect();
    let steady_p99 = quantile(&steady, 0.99);
    println!(
        "overload: {} answers: {} shed (p50 {shed_p50:?}, p99 {shed_p99:?}), {} admitted: \
         {} before shedding began (p99 {:?}), {} after (p50 {:?}, p99 {steady_p99:?}); \
         query {QUERY:?}, pool {POOL}, {CLIENTS} clients",
        replies.len(),
        shed.len(),
        admitted.len(),
        before.len(),
        quantile(&before, 0.99),
        steady.len(),
        quantile(&steady, 0.5),
    );
    assert!(steady_p99 <= 10 * QUERY, "admitted p99 {steady_p99:?} > 10 × {QUERY:?}");
    env.finish().await;
}
