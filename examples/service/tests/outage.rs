//! (d) A database outage, through the proxy: first refused connections, then a stall.
//! Each time the breaker opens and the service answers 503 with `Retry-After` without
//! reaching the database (the stall is detected by the breaker's own deadline: 504s,
//! counted as failures), and once the proxy passes again the service recovers.
//!
//! Profiles are read (posts and settings are not cached, so every request reaches the
//! database); the breaker's window is short (2 s) so that each phase takes seconds.

use std::time::Duration;

use super::client::Reply;
use super::env::{Env, eventually};
use super::load::{Load, count, statuses};
use super::proxy::Fault;

const CLIENTS: usize = 4;
const WINDOW: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_millis(250);
/// The drop ratio that counts as open.
const OPEN: f64 = 0.9;
/// Rejections to count connection attempts over, and successes in a row to call it
/// recovered.
const REJECTIONS: usize = 100;
const HEALTHY_RUN: usize = 40;
/// Generous bounds on each phase (the breaker needs about a window to open, one or two
/// to close again).
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_sheds_a_failing_database_and_recovers() {
    let Some(env) = Env::start("outage").await else {
        return;
    };
    let mut config = env.config.clone();
    (config.breaker_window, config.breaker_timeout) = (WINDOW, DEADLINE);
    let server = env.serve(&config).await;
    let breaker = &server.app.breaker;
    let mut load = Load::start(server.addr, CLIENTS, "app", |n| {
        format!("/profile/{}", 2 * (n % 500 + 1))
    });
    assert!(
        load.until(LIMIT, |r| healthy_run(r) >= HEALTHY_RUN).await,
        "healthy at first"
    );

    for fault in [Fault::Refuse, Fault::Stall] {
        let mark = load.len();
        env.proxy.set(fault);
        // Open: the failures have outweighed the healthy history (about a window).
        let opened = eventually(LIMIT, || breaker.snapshot().drop_ratio >= OPEN).await;
        assert!(
            opened,
            "{fault:?}: the breaker opened: {:?}",
            statuses(&load.since(mark))
        );
        // Open, it keeps the load off the database: over the next rejections, fewer
        // connection attempts than a quarter of the reads (two per request; without the
        // breaker each would try to connect; open, it lets through under a tenth, and
        // their probes).
        let (open, connects) = (load.len(), env.proxy.accepted());
        let shed = load
            .until(LIMIT, |r| rejections(&r[open..]) >= REJECTIONS)
            .await;
        let (tried, requests) = (env.proxy.accepted() - connects, load.len() - open);
        let during = load.since(mark);
        assert!(
            shed,
            "{fault:?}: the breaker stayed open: {:?}",
            statuses(&during)
        );
        let snapshot = breaker.snapshot();
        let reasons: Vec<_> = breaker
            .recent_failures()
            .into_iter()
            .map(|f| f.reason)
            .collect();
        println!(
            "outage: {fault:?}: {:?}; once open, {tried} connection attempts for {requests} \
             requests; drop ratio {:.2}; failures {reasons:?}",
            statuses(&during),
            snapshot.drop_ratio
        );
        assert!(
            4 * (tried as usize) < 2 * requests,
            "{tried} attempts for {requests} requests"
        );
        if fault == Fault::Stall {
            // Stalled reads end at the breaker's deadline: 504, and failures it counted.
            assert!(count(&during, 504) > 0, "{:?}", statuses(&during));
            assert!(
                reasons.iter().any(|r| r.contains("timed out")),
                "{reasons:?}"
            );
        }

        let mark = load.len();
        env.proxy.set(Fault::Pass);
        let recovered = load
            .until(LIMIT, |r| healthy_run(&r[mark..]) >= HEALTHY_RUN)
            .await;
        let after = load.since(mark);
        assert!(
            recovered,
            "{fault:?}: recovered: {:?}, {:?}",
            statuses(&after),
            breaker.snapshot()
        );
        // The drop ratio falls to 0 as the failures leave the window.
        assert!(
            eventually(LIMIT, || breaker.snapshot().drop_ratio == 0.0).await,
            "closed"
        );
        println!(
            "outage: {fault:?} healed: {:?} until {HEALTHY_RUN} in a row",
            statuses(&after)
        );
    }
    load.stop().await;
}

/// Breaker rejections: 503 with `Retry-After: 1`.
fn rejections(replies: &[Reply]) -> usize {
    replies
        .iter()
        .filter(|r| r.status == 503 && r.retry_after.as_deref() == Some("1"))
        .count()
}

/// Successes in a row at the end of `replies`.
fn healthy_run(replies: &[Reply]) -> usize {
    replies.iter().rev().take_while(|r| r.status == 200).count()
}
