//! The virtual-time run is deterministic, and keel does what the demo claims. Run by
//! `cargo test --workspace --all-features` (the example has `test = true`).

use std::sync::Arc;
use std::time::Duration;

use crate::scenario::Scenario;
use crate::sim;

/// A short scenario (4 s phases at 100 req/s): fast in a debug build.
fn short() -> Arc<Scenario> {
    Arc::new(Scenario::new(Duration::from_secs(20), 100.0, 11))
}

#[test]
fn virtual_time_gives_the_same_numbers_every_run() {
    let first = sim::run(short()).unwrap();
    let second = sim::run(short()).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.render(&short()), second.render(&short()));
}

#[test]
fn every_primitive_does_its_part() {
    let scenario = short();
    let report = sim::run(Arc::clone(&scenario)).unwrap();
    let (p, u) = (&report.protected, &report.unprotected);
    println!("{}", report.render(&scenario));
    assert_eq!(
        p.total.offered, u.total.offered,
        "both runs get the same traffic"
    );
    assert_eq!(p.unfinished + u.unfinished, 0);

    let outage = scenario
        .phases
        .iter()
        .position(|ph| ph.name == "outage")
        .unwrap();
    assert!(
        p.phases[outage].p99 < u.phases[outage].p99,
        "outage p99: protected {:?}, unprotected {:?}",
        p.phases[outage].p99,
        u.phases[outage].p99
    );
    let spike = scenario
        .phases
        .iter()
        .position(|ph| ph.name == "spike")
        .unwrap();
    assert!(p.phases[spike].shed > 0, "the shedder shed in the spike");
    assert!(
        p.phases[outage].rejected > 0,
        "the breaker rejected in the outage"
    );
    // The abusive client is the one over its limit.
    let scraper = p.limited_clients.get("scraper").copied().unwrap_or(0);
    assert!(
        scraper > 0 && scraper * 100 >= p.total.limited * 95,
        "{:?}",
        p.limited_clients
    );
    let cache = p.cache.expect("the protected run has a cache");
    assert!(cache.hit_ratio > 0.5, "hit ratio {}", cache.hit_ratio);
    assert!(
        p.db_queries * 3 < u.db_queries,
        "the cache spares the database"
    );
    // The unprotected run has none of it, and suffers.
    assert_eq!(u.total.limited + u.total.shed + u.total.rejected, 0);
    assert!(u.total.errors() > p.total.errors());
}
