//! `take_with_ttl` / `take_async_with_ttl`: a loader that says how long its value stays
//! fresh. The value is kept for that time, not the cache's; zero keeps nothing; the
//! request and the load are counted as any take's; followers of the load share the value.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use keel_collection::cache::TakeError;
use support::{manual, secs};

fn counted(
    loads: &AtomicUsize,
    value: u32,
    ttl: Duration,
) -> impl FnOnce() -> Result<(u32, Duration), std::io::Error> + '_ {
    move || {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok((value, ttl))
    }
}

#[test]
fn the_loaders_ttl_replaces_the_caches() {
    let (builder, clock) = manual::<&str, u32>(secs(60));
    let cache = builder.build().unwrap();
    let loads = AtomicUsize::new(0);

    assert_eq!(
        cache
            .take_with_ttl("a", counted(&loads, 1, secs(5)))
            .unwrap(),
        1
    );
    clock.advance(secs(4));
    assert_eq!(
        cache
            .take_with_ttl("a", counted(&loads, 2, secs(5)))
            .unwrap(),
        1
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1, "fresh for 5 s: a hit");
    clock.advance(secs(1));
    assert_eq!(
        cache.get("a"),
        None,
        "gone at its own 5 s, not the cache's 60 s"
    );
    assert_eq!(
        cache
            .take_with_ttl("a", counted(&loads, 3, secs(120)))
            .unwrap(),
        3
    );
    clock.advance(secs(100));
    assert_eq!(
        cache.get("a"),
        Some(3),
        "a longer time to live than the cache's is kept too"
    );

    // The plain take still keeps a value for the cache's time to live.
    cache.take("b", || Ok::<_, std::io::Error>(9)).unwrap();
    clock.advance(secs(59));
    assert_eq!(cache.get("b"), Some(9));
    clock.advance(secs(1));
    assert_eq!(cache.get("b"), None);

    let stats = cache.snapshot();
    // Requests: take a (miss), take a (hit), get a (miss), take a (miss), get a (hit),
    // take b (miss), get b (hit), get b (miss).
    assert_eq!((stats.hits, stats.misses), (3, 5));
}

#[test]
fn a_zero_ttl_returns_the_value_and_keeps_nothing() {
    let (builder, _clock) = manual::<&str, u32>(secs(60));
    let cache = builder.build().unwrap();
    let loads = AtomicUsize::new(0);
    for round in 1..=3 {
        assert_eq!(
            cache
                .take_with_ttl("a", counted(&loads, 7, Duration::ZERO))
                .unwrap(),
            7
        );
        assert_eq!(
            loads.load(Ordering::SeqCst),
            round,
            "nothing kept: loads again"
        );
    }
    assert!(cache.is_empty());
}

#[test]
fn errors_and_placeholders_as_any_take() {
    let (builder, _clock) = manual::<&str, u32>(secs(60));
    let cache = builder.negative_ttl(secs(10)).build().unwrap();
    let failed = cache.take_with_ttl("a", || Err::<(u32, Duration), _>("down"));
    assert!(matches!(failed, Err(TakeError::Failed(e)) if *e == "down"));
    assert!(cache.is_empty(), "a failed load keeps nothing");

    // A "not found" remembered by take_optional answers NotFound.
    cache.take_optional("gone", || Ok::<_, &str>(None)).unwrap();
    let found = cache.take_with_ttl("gone", || Ok::<_, &str>((1, secs(5))));
    assert!(matches!(found, Err(TakeError::NotFound)));
}

#[test]
fn followers_share_the_leaders_value() {
    let (builder, clock) = manual::<&str, u32>(secs(60));
    let cache = Arc::new(builder.build().unwrap());
    let loads = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));

    let leader = {
        let (cache, loads, entered, release) = (
            Arc::clone(&cache),
            Arc::clone(&loads),
            Arc::clone(&entered),
            Arc::clone(&release),
        );
        std::thread::spawn(move || {
            cache.take_with_ttl("a", || {
                loads.fetch_add(1, Ordering::SeqCst);
                entered.wait();
                release.wait();
                Ok::<_, std::io::Error>((5, secs(3)))
            })
        })
    };
    entered.wait(); // the leader's load runs
    let follower = {
        let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
        std::thread::spawn(move || {
            cache.take_with_ttl("a", || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>((6, secs(3)))
            })
        })
    };
    // Hand-off: release the load only once the follower waits on it.
    while cache.waiting(&"a") == 0 {
        std::thread::yield_now();
    }
    release.wait();
    assert_eq!(leader.join().unwrap().unwrap(), 5);
    assert_eq!(follower.join().unwrap().unwrap(), 5);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    clock.advance(secs(3));
    assert_eq!(cache.get("a"), None, "kept for the leader's 3 s");
}

#[test]
fn the_async_twin_keeps_the_loaders_ttl() {
    let (builder, clock) = manual::<&str, u32>(secs(60));
    let cache = builder.build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let got = cache
            .take_async_with_ttl("a", || async { Ok::<_, std::io::Error>((1, secs(2))) })
            .await
            .unwrap();
        assert_eq!(got, 1);
        let again = cache
            .take_async_with_ttl("a", || async { Ok::<_, std::io::Error>((2, secs(2))) })
            .await
            .unwrap();
        assert_eq!(again, 1, "fresh: a hit");
    });
    clock.advance(secs(2));
    assert_eq!(cache.get("a"), None);
}
