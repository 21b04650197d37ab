//! (e) Cancellations are not failures. Clients ask for profiles, whose posts read is slow,
//! and hang up once their reads are running; then profiles whose settings are missing
//! answer 404 while their slow posts read is still running, which `try_join!` drops.
//! Afterwards the breaker has counted those reads as cancelled, none as a failure, and a
//! burst of healthy requests is served in full, none refused.

use std::time::Duration;

use super::client::{self, get};
use super::env::{Env, eventually};
use super::load::{count, statuses};

/// Long enough that the posts read is still running when its request goes away; a bound,
/// never waited for (each read ends when its request does).
const POSTS: Duration = Duration::from_secs(3);
const QUERY: Duration = Duration::from_millis(10);
/// Profiles whose clients hang up; each runs three reads at once.
const HANG_UPS: usize = 5;
/// Profiles stopped by a missing part.
const INCOMPLETE: usize = 5;
const HEALTHY: usize = 20;
const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnects_and_dropped_siblings_do_not_trip_the_breaker() {
    let Some(env) = Env::start("storm").await else {
        return;
    };
    let mut config = env.config.clone();
    (config.query_delay, config.posts_delay) = (QUERY, POSTS);
    config.breaker_timeout = 2 * POSTS; // a posts read is slow, not stalled
    // Room for every read of a burst at once, and for slots still on their way back: a
    // read waiting for a slot has no permit yet, so its drop would not be counted.
    config.pool_size = 4 * HANG_UPS.max(INCOMPLETE);
    let server = env.serve(&config).await;
    let (app, addr) = (&server.app, server.addr);

    // Hang-ups: even ids (complete profiles), each read started before the client goes.
    let mut hanging = Vec::new();
    for i in 0..HANG_UPS {
        let path = format!("/profile/{}", 2 * (i + 1));
        hanging.push(
            client::send(addr, &path, Some("impatient"))
                .await
                .expect("sent"),
        );
    }
    let reads = 3 * HANG_UPS as u64;
    assert!(
        eventually(LIMIT, || app.db.started() >= reads).await,
        "the reads started"
    );
    drop(hanging);
    let cancelled = HANG_UPS as u64; // at least the slow posts reads
    assert!(
        eventually(LIMIT, || app.breaker.snapshot().cancelled >= cancelled).await,
        "hang-ups seen as cancellations: {:?}",
        app.breaker.snapshot()
    );

    // Incomplete profiles: odd ids have no settings; the 404 comes after a quick read, long
    // before the posts read would end, so that read was dropped.
    let incomplete = (0..INCOMPLETE).map(|i| {
        tokio::spawn(
            async move { get(addr, &format!("/profile/{}", 2 * i + 1), Some("curious")).await },
        )
    });
    for reply in incomplete {
        let reply = reply.await.expect("a client panicked");
        assert_eq!(reply.status, 404, "{reply:?}");
        assert!(
            reply.elapsed < POSTS,
            "answered before the slow read ended: {reply:?}"
        );
    }
    let cancelled = cancelled + INCOMPLETE as u64;
    assert!(
        eventually(LIMIT, || app.breaker.snapshot().cancelled >= cancelled).await,
        "dropped siblings seen as cancellations: {:?}",
        app.breaker.snapshot()
    );

    // The breaker saw successes only: nothing failed, nothing was refused.
    let after = app.breaker.snapshot();
    assert_eq!(after.history.total, after.history.accepts, "{after:?}");
    assert_eq!(after.drop_ratio, 0.0);
    assert!(
        app.breaker.recent_failures().is_empty(),
        "{:?}",
        app.breaker.recent_failures()
    );

    // And the service is fully available.
    let healthy = (1..=HEALTHY).map(|id| {
        tokio::spawn(async move { get(addr, &format!("/users/{id}"), Some("regular")).await })
    });
    let mut replies = Vec::new();
    for reply in healthy {
        replies.push(reply.await.expect("a client panicked"));
    }
    assert_eq!(count(&replies, 200), HEALTHY, "{:?}", statuses(&replies));
    let end = app.breaker.snapshot();
    assert_eq!(end.history.total, end.history.accepts, "{end:?}");
    println!(
        "storm: {HANG_UPS} hang-ups and {INCOMPLETE} incomplete profiles: {} cancelled, \
         history {:?}; then {HEALTHY} requests: {:?}",
        end.cancelled,
        end.history,
        statuses(&replies)
    );
}
