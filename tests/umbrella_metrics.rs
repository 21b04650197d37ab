//! The umbrella's `metrics` feature reaches every crate with runtime state: each primitive
//! built through `keel` registers its series (named after it) with the recorder installed
//! when it is built, and counts a decision.
#![cfg(all(feature = "full", feature = "metrics", feature = "tokio"))]

use std::collections::BTreeSet;
use std::time::Duration;

use keel::breaker::Breaker;
use keel::collection::Cache;
use keel::limiter::{Rate, TokenLimiter};
use keel::shedder::Shedder;
use keel::syncx::limit::Limit;
use keel::timingwheel::Builder as WheelBuilder;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn every_crate_records_through_the_umbrella_feature() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (breaker, shedder, limiter, cache, limit, wheel) =
        metrics::with_local_recorder(&recorder, || {
            (
                Breaker::builder().name("u-breaker").build().unwrap(),
                Shedder::builder().name("u-shedder").build().unwrap(),
                TokenLimiter::builder(Rate::per_second(10), 1)
                    .name("u-limiter")
                    .build()
                    .unwrap(),
                Cache::<u64, u64>::builder(Duration::from_secs(60))
                    .name("u-cache")
                    .build()
                    .unwrap(),
                Limit::with_name(1, "u-limit").unwrap(),
                WheelBuilder::new(Duration::from_millis(10))
                    .name("u-wheel")
                    .build::<u64, u64>()
                    .unwrap(),
            )
        });
    breaker.allow().unwrap().success();
    shedder.allow().unwrap().pass();
    assert!(limiter.allow());
    assert!(!limiter.allow());
    assert_eq!(cache.get(&1), None);
    drop(limit.try_acquire().unwrap());
    wheel.set(1, 1, Duration::from_secs(1)).unwrap();
    // The busiest counters are batched: hand them to the recorder now (METRICS.md).
    breaker.publish_metrics();
    shedder.publish_metrics();
    limiter.publish_metrics();
    cache.publish_metrics();

    let mut counted = BTreeSet::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key
            .key()
            .labels()
            .find(|l| l.key() == "name")
            .map(|l| l.value().to_owned());
        if let (Some(name), DebugValue::Counter(n)) = (name, value)
            && n > 0
        {
            counted.insert(format!("{} {name}", key.key().name()));
        }
    }
    for expected in [
        "keel_breaker_calls_total u-breaker",
        "keel_shedder_requests_total u-shedder",
        "keel_limiter_decisions_total u-limiter",
        "keel_cache_requests_total u-cache",
        "keel_limit_acquires_total u-limit",
        "keel_timingwheel_operations_total u-wheel",
    ] {
        assert!(counted.contains(expected), "{expected} not in {counted:?}");
    }
}
