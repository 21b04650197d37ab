//! Feature `metrics`: every `keel_rediscache_*` counter equals the `Stats` counter of the
//! same events, and the expected count, on the shared Redis (a cache name of its own, its
//! keys deleted at the end; never flushed). Each instance is built inside
//! `metrics::with_local_recorder` with a `DebuggingRecorder` of its own: its handles,
//! registered at `build`, keep recording there after the closure returns.
//!
//! Without the shared Redis the test is skipped, unless `KEEL_REQUIRE_SERVICES=1`: then it
//! fails.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use keel_rediscache::{DelError, FailurePolicy, RedisCache, RedisErrorKind, Stats, TakeError};
use keel_syncx::limit::Limit;
use keel_timex::ManualClock;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use redis::AsyncCommands;

/// A series: the metric's name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// A recorder and the totals it saw (the debugging recorder's snapshot swaps counters to
/// zero, so they are summed here); a histogram's total is its number of samples.
struct Recorded {
    recorder: DebuggingRecorder,
    snapshotter: Snapshotter,
    totals: Mutex<BTreeMap<Series, u64>>,
}

impl Recorded {
    fn new() -> Recorded {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        Recorded {
            recorder,
            snapshotter,
            totals: Mutex::new(BTreeMap::new()),
        }
    }

    fn build<T>(&self, build: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, build)
    }

    fn all(&self) -> BTreeMap<Series, u64> {
        let mut totals = self.totals.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let n = match value {
                DebugValue::Counter(delta) => delta,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            *totals.entry((key.name().to_owned(), labels)).or_default() += n;
        }
        totals.clone()
    }

    /// The total of the one series of `metric` with the cache's name and `label`, if any;
    /// panics if that series was never registered.
    #[track_caller]
    fn get(&self, name: &str, metric: &str, label: Option<(&str, &str)>) -> u64 {
        let mut wanted = vec![("name".to_owned(), name.to_owned())];
        if let Some((k, v)) = label {
            wanted.push((k.to_owned(), v.to_owned()));
        }
        wanted.sort();
        let all = self.all();
        *all.get(&(metric.to_owned(), wanted.clone()))
            .unwrap_or_else(|| panic!("no series {metric}{wanted:?}; registered: {all:#?}"))
    }

    /// The sum over the series of `metric` labelled `key` = each of `values`.
    #[track_caller]
    fn sum(&self, name: &str, metric: &str, key: &str, values: &[&str]) -> u64 {
        values
            .iter()
            .map(|v| self.get(name, metric, Some((key, v))))
            .sum()
    }
}

const REQUESTS: &str = "keel_rediscache_requests_total";
const LOOKUPS: &str = "keel_rediscache_lookups_total";
const LOADS: &str = "keel_rediscache_loads_total";
const ERRORS: &str = "keel_rediscache_redis_errors_total";
const DELETES: &str = "keel_rediscache_deletes_total";
const QUEUED: &str = "keel_rediscache_queued_deletes_total";
const RECEIVED: &str = "keel_rediscache_invalidations_received_total";

/// Every counter of the cache `name` in `rec` agrees with `s`.
#[track_caller]
fn assert_agrees(rec: &Recorded, name: &str, s: &Stats) {
    let what = format!("{s:?}");
    let get = |metric: &str, label: Option<(&str, &str)>| rec.get(name, metric, label);
    let request = |r: &str| get(REQUESTS, Some(("result", r)));
    let lookup = |r: &str| get(LOOKUPS, Some(("result", r)));
    let load = |r: &str| get(LOADS, Some(("result", r)));
    let received = |o: &str| get(RECEIVED, Some(("origin", o)));

    assert_eq!(request("hit") + request("not_found"), s.l1_hits, "{what}");
    assert_eq!(request("miss"), s.misses, "{what}");
    assert_eq!(lookup("hit") + lookup("not_found"), s.l2_hits, "{what}");
    assert_eq!(
        request("not_found") + lookup("not_found"),
        s.placeholder_hits,
        "{what}"
    );
    assert_eq!(lookup("stale"), s.stale_served, "{what}");
    assert_eq!(lookup("load") + lookup("degraded_load"), s.loads, "{what}");
    assert_eq!(lookup("busy"), s.lease_timeouts, "{what}");
    assert_eq!(lookup("overloaded"), s.overloaded, "{what}");
    // No load in flight: every one has ended.
    let ends = ["success", "not_found", "error", "panic", "cancelled"];
    assert_eq!(rec.sum(name, LOADS, "result", &ends), s.loads, "{what}");
    assert_eq!(load("error"), s.load_errors, "{what}");
    assert_eq!(
        get("keel_rediscache_load_duration_seconds", None),
        s.loads,
        "one duration per load: {what}"
    );
    assert_eq!(
        get("keel_rediscache_lease_waits_total", None),
        s.lease_waits,
        "{what}"
    );
    assert_eq!(
        get("keel_rediscache_lease_lost_total", None),
        s.lease_lost,
        "{what}"
    );
    assert_eq!(
        get("keel_rediscache_placeholders_total", None),
        s.placeholders,
        "{what}"
    );
    assert_eq!(
        get("keel_rediscache_corrupt_total", None),
        s.corrupt,
        "{what}"
    );
    let kinds = ["timeout", "connection", "server", "unexpected_reply"];
    assert_eq!(
        rec.sum(name, ERRORS, "kind", &kinds),
        s.redis_errors,
        "{what}"
    );
    assert_eq!(get("keel_rediscache_sets_total", None), s.sets, "{what}");
    assert_eq!(
        rec.sum(name, DELETES, "result", &["ok", "queued", "failed"]),
        s.deletes,
        "{what}"
    );
    assert_eq!(
        get(DELETES, Some(("result", "queued"))),
        s.deletes_queued,
        "{what}"
    );
    assert_eq!(
        get(QUEUED, Some(("result", "retried_ok"))),
        s.deletes_retried_ok,
        "{what}"
    );
    assert_eq!(
        get(QUEUED, Some(("result", "dropped"))),
        s.deletes_dropped,
        "{what}"
    );
    assert_eq!(
        get("keel_rediscache_retries_total", None),
        s.delete_retries,
        "{what}"
    );
    assert_eq!(
        get("keel_rediscache_invalidations_sent_total", None),
        s.invalidations_sent,
        "{what}"
    );
    assert_eq!(received("other"), s.invalidations_received, "{what}");
    assert_eq!(received("own"), s.invalidations_own, "{what}");
    assert_eq!(
        get("keel_rediscache_subscriptions_total", None),
        s.subscriptions,
        "{what}"
    );
    assert_eq!(
        get("keel_rediscache_local_clears_total", None),
        s.l1_clears,
        "{what}"
    );
}

/// Keys never become labels; the local tier's own series (if keel-collection's metrics are
/// on in this build) are named `rediscache:<name>`, the retry wheel's
/// `rediscache-retry:<name>`, the Load policy's limit keeps its default name.
#[track_caller]
fn assert_labels(rec: &Recorded, name: &str) {
    let allowed = ["name", "result", "kind", "origin", "reason", "op"];
    for (metric, labels) in rec.all().keys() {
        for (k, v) in labels {
            assert!(allowed.contains(&k.as_str()), "{metric} {labels:?}");
            if k == "name" {
                let expected = if metric.starts_with("keel_rediscache_") {
                    name.to_owned()
                } else if metric.starts_with("keel_cache_") {
                    format!("rediscache:{name}")
                } else if metric.starts_with("keel_timingwheel_") {
                    format!("rediscache-retry:{name}")
                } else if metric.starts_with("keel_limit_") {
                    // The test's own `Limit` for the Load policy, when keel-syncx's metrics
                    // are on in this build (a workspace `--all-features` build).
                    "limit".to_owned()
                } else {
                    panic!("unexpected series {metric} {labels:?}");
                };
                assert_eq!(v, &expected, "{metric}");
            }
        }
    }
}

fn found(
    value: Option<&str>,
) -> impl FnOnce() -> std::future::Ready<Result<Option<String>, Infallible>> + use<> {
    let value = value.map(str::to_owned);
    move || std::future::ready(Ok(value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_agree_with_stats() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("metrics");
    let clock = ManualClock::new();
    let (rec_a, rec_b) = (Recorded::new(), Recorded::new());
    let (conn_a, conn_b) = (
        support::connection(&client).await,
        support::connection(&client).await,
    );
    // Built inside the closures (sync: `build` needs only the current runtime); the
    // handles keep recording into each recorder afterwards.
    let builder = |conn| {
        RedisCache::<String>::builder(name.as_str(), conn)
            .timeout(support::BUSY_MACHINE_TIMEOUT)
            .jitter(0.0)
            .ttl(Duration::from_secs(60))
            .not_found_ttl(Duration::from_secs(5))
            .clock(clock.clone())
            .subscriber(client.clone())
    };
    let a = rec_a.build(|| builder(conn_a).build().expect("build"));
    let b = rec_b.build(|| builder(conn_b).build().expect("build"));
    assert!(a.wait_subscribed(Duration::from_secs(10)).await);
    assert!(b.wait_subscribed(Duration::from_secs(10)).await);

    // A loads "1"; then its local tier answers; B finds it in Redis.
    let take = |c: &RedisCache<String, ManualClock>, key: &'static str, v: Option<&str>| {
        let c = c.clone();
        let loader = found(v);
        async move { c.take_optional(key, loader).await }
    };
    assert_eq!(
        take(&a, "1", Some("ada")).await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(
        take(&a, "1", Some("x")).await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(
        take(&b, "1", Some("x")).await.unwrap().as_deref(),
        Some("ada")
    );
    // "2" does not exist: a placeholder, answered by A's local tier and by Redis for B.
    assert_eq!(take(&a, "2", None).await.unwrap(), None);
    assert_eq!(take(&a, "2", Some("x")).await.unwrap(), None);
    assert_eq!(take(&b, "2", Some("x")).await.unwrap(), None);
    // A loader error, a loader panic.
    let failed = a
        .take("3", || async {
            Err::<String, _>(std::io::Error::other("db down"))
        })
        .await;
    assert!(matches!(failed, Err(TakeError::Loader(_))), "{failed:?}");
    let panicked = a
        .take("4", || async {
            if true {
                panic!("the loader panics (expected by the test)");
            }
            Ok::<String, Infallible>(String::new())
        })
        .await;
    assert!(
        matches!(panicked, Err(TakeError::LoaderPanicked)),
        "{panicked:?}"
    );
    // A corrupt entry: counted, deleted, loaded again.
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = raw.set(a.redis_key("5"), b"\x00garbage").await.unwrap();
    assert_eq!(
        take(&a, "5", Some("eve")).await.unwrap().as_deref(),
        Some("eve")
    );
    // A key of the wrong type: GET fails (a server error) and FailFast refuses.
    let _: () = raw.hset(a.redis_key("7"), "f", "v").await.unwrap();
    match take(&a, "7", Some("x")).await {
        Err(TakeError::Redis(e)) => assert_eq!(e.kind(), RedisErrorKind::Server, "{e}"),
        other => panic!("expected a Redis error, got {other:?}"),
    }
    // set and del: published, received by B (and by A itself, skipped).
    a.set("6", "zoe".to_owned()).await.unwrap();
    let deleted: Result<(), DelError> = a.del("1").await;
    deleted.unwrap();
    assert!(
        support::eventually(Duration::from_secs(10), || {
            b.snapshot().invalidations_received == 2 && a.snapshot().invalidations_own == 2
        })
        .await,
        "invalidations: {:?} {:?}",
        a.snapshot(),
        b.snapshot()
    );

    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_agrees(&rec_a, &name, &sa);
    assert_agrees(&rec_b, &name, &sb);
    assert_labels(&rec_a, &name);
    assert_labels(&rec_b, &name);

    // And the expected counts.
    let count =
        |rec: &Recorded, metric: &str, label: Option<(&str, &str)>| rec.get(&name, metric, label);
    let requests = |rec: &Recorded, r| count(rec, REQUESTS, Some(("result", r)));
    let lookups = |rec: &Recorded, r| count(rec, LOOKUPS, Some(("result", r)));
    let loads = |r| count(&rec_a, LOADS, Some(("result", r)));
    assert_eq!(
        (
            requests(&rec_a, "hit"),
            requests(&rec_a, "not_found"),
            requests(&rec_a, "miss")
        ),
        (1, 1, 6)
    );
    assert_eq!(
        (lookups(&rec_a, "load"), lookups(&rec_a, "unavailable")),
        (5, 1)
    );
    assert_eq!(
        (lookups(&rec_a, "hit"), lookups(&rec_a, "not_found")),
        (0, 0)
    );
    assert_eq!(
        (
            loads("success"),
            loads("not_found"),
            loads("error"),
            loads("panic"),
            loads("cancelled")
        ),
        (2, 1, 1, 1, 0)
    );
    assert_eq!(count(&rec_a, "keel_rediscache_placeholders_total", None), 1);
    assert_eq!(count(&rec_a, "keel_rediscache_corrupt_total", None), 1);
    assert_eq!(count(&rec_a, ERRORS, Some(("kind", "server"))), 1);
    assert_eq!(count(&rec_a, "keel_rediscache_sets_total", None), 1);
    assert_eq!(count(&rec_a, DELETES, Some(("result", "ok"))), 1);
    assert_eq!(
        count(&rec_a, "keel_rediscache_invalidations_sent_total", None),
        2
    );
    assert_eq!(count(&rec_a, RECEIVED, Some(("origin", "own"))), 2);
    assert_eq!(
        count(&rec_a, "keel_rediscache_subscriptions_total", None),
        1
    );
    assert_eq!(count(&rec_a, "keel_rediscache_local_clears_total", None), 1);
    assert_eq!(
        (
            requests(&rec_b, "miss"),
            lookups(&rec_b, "hit"),
            lookups(&rec_b, "not_found")
        ),
        (2, 1, 1)
    );
    assert_eq!(count(&rec_b, RECEIVED, Some(("origin", "other"))), 2);
    assert_eq!(count(&rec_b, LOOKUPS, Some(("result", "load"))), 0);
    assert_eq!(
        count(
            &rec_b,
            "keel_rediscache_redis_errors_total",
            Some(("kind", "server"))
        ),
        0
    );

    support::cleanup(&client, &name).await;
}

/// Redis failing, on a private `redis-server`: a timed-out delete queued and retried, loads
/// under `FailurePolicy::Load` and its limit's refusals, errors by kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_agree_with_stats() {
    let Some(mut server) = support::RedisServer::start() else {
        return;
    };
    let client = server.client();
    let name = support::unique("metrics-faults");
    let rec = Recorded::new();
    let conn = support::connection(&client).await;
    let cache = rec.build(|| {
        RedisCache::<String>::builder(name.as_str(), conn)
            .timeout(Duration::from_millis(100))
            .delete_retries(10, Duration::from_millis(50))
            .failure_policy(FailurePolicy::Load(Limit::new(1).unwrap()))
            .build()
            .expect("build")
    });
    cache.set("k", "old".to_owned()).await.unwrap();

    // Writes stall for 600 ms: the delete times out, is queued, and a retry completes it.
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(600)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    let r = cache.del("k").await;
    assert!(matches!(r, Err(DelError::Queued(_))), "{r:?}");
    assert!(
        support::eventually(Duration::from_secs(10), || cache
            .snapshot()
            .deletes_retried_ok
            == 1)
        .await,
        "{:?}",
        cache.snapshot()
    );

    // Redis gone: a load under the policy's limit of 1, and a take refused while it runs.
    server.stop();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .take("a", || async move {
                    let _ = started_tx.send(());
                    let _ = released.await;
                    Ok::<_, Infallible>("a".to_owned())
                })
                .await
        })
    };
    started.await.unwrap();
    let refused = cache
        .take("b", || async { Ok::<_, Infallible>("b".to_owned()) })
        .await;
    assert!(
        matches!(refused, Err(TakeError::Overloaded(_))),
        "{refused:?}"
    );
    release.send(()).unwrap();
    assert_eq!(holder.await.unwrap().unwrap(), "a");

    let s = cache.snapshot();
    assert_agrees(&rec, &name, &s);
    assert_labels(&rec, &name);
    let count = |metric: &str, label: Option<(&str, &str)>| rec.get(&name, metric, label);
    assert_eq!(count(DELETES, Some(("result", "queued"))), 1);
    assert_eq!(count(QUEUED, Some(("result", "retried_ok"))), 1);
    assert!(count("keel_rediscache_retries_total", None) >= 1);
    assert_eq!(count(LOOKUPS, Some(("result", "degraded_load"))), 1);
    assert_eq!(count(LOOKUPS, Some(("result", "overloaded"))), 1);
    assert_eq!(count(LOADS, Some(("result", "success"))), 1);
    assert!(count(ERRORS, Some(("kind", "timeout"))) >= 1, "{s:?}");
    assert!(
        count(ERRORS, Some(("kind", "connection"))) + count(ERRORS, Some(("kind", "timeout"))) >= 3,
        "the delete, and both lookups with Redis down: {s:?}"
    );
}
