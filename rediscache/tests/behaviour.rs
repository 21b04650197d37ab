//! Single-key behaviour on the shared Redis: tiers, placeholders, corrupt values, jitter,
//! the lease and its fencing, configuration errors.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_rediscache::{ConfigError, RedisCache, TakeError};
use keel_timex::ManualClock;
use redis::AsyncCommands;

async fn cache(
    client: &redis::Client,
    name: &str,
    clock: &ManualClock,
) -> RedisCache<String, ManualClock> {
    RedisCache::builder(name, support::connection(client).await)
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .jitter(0.0)
        .ttl(Duration::from_secs(60))
        .not_found_ttl(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .expect("build")
}

fn counting(
    calls: &Arc<AtomicUsize>,
    value: Option<&str>,
) -> impl FnOnce() -> std::future::Ready<Result<Option<String>, Infallible>> {
    let calls = Arc::clone(calls);
    let value = value.map(str::to_owned);
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_and_placeholders() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("tiers");
    let clock = ManualClock::new();
    let a = cache(&client, &name, &clock).await;
    let b = cache(&client, &name, &clock).await;
    let calls = Arc::new(AtomicUsize::new(0));

    // Loaded once, then served by A's local tier, and by Redis for B.
    assert_eq!(
        a.take_optional("1", counting(&calls, Some("ada")))
            .await
            .unwrap()
            .as_deref(),
        Some("ada")
    );
    assert_eq!(
        a.take_optional("1", counting(&calls, Some("x")))
            .await
            .unwrap()
            .as_deref(),
        Some("ada")
    );
    assert_eq!(
        b.take_optional("1", counting(&calls, Some("x")))
            .await
            .unwrap()
            .as_deref(),
        Some("ada")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_eq!((sa.loads, sa.l1_hits, sa.misses), (1, 1, 1));
    assert_eq!((sb.loads, sb.l2_hits), (0, 1));

    // Not found: a placeholder in both tiers, with its own (shorter) expiry.
    assert_eq!(
        a.take_optional("404", counting(&calls, None))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.take_optional("404", counting(&calls, Some("x")))
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        b.take("404", || async { Ok::<_, Infallible>("x".to_string()) })
            .await,
        Err(TakeError::NotFound)
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(a.snapshot().placeholders, 1);
    assert_eq!(a.local_entry("404"), Some(None));
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let pttl: i64 = c.pttl(a.redis_key("404")).await.unwrap();
    assert!(pttl > 0 && pttl <= 5_000, "placeholder PX {pttl} ms");
    // Past the placeholder's logical expiry (5 s), the key is loaded again.
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        b.take_optional("404", counting(&calls, Some("now")))
            .await
            .unwrap()
            .as_deref(),
        Some("now")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_value_is_deleted_and_reloaded() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("corrupt");
    let clock = ManualClock::new();
    let a = cache(&client, &name, &clock).await;
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for (i, garbage) in [
        &b"not an envelope"[..],
        &[0xE1, 1, 255, 255, 255, 255, 255, 255, 255, 255, 0xff, 0xff][..],
        &[0xE1][..],
    ]
    .iter()
    .enumerate()
    {
        let key = format!("k{i}");
        let _: () = c.set(a.redis_key(&key), *garbage).await.unwrap();
        let got = a
            .take_optional(&key, counting(&calls, Some("fresh")))
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("fresh"), "garbage {i} was returned");
        let stored: Vec<u8> = c.get(a.redis_key(&key)).await.unwrap();
        assert_ne!(&stored[..], *garbage, "garbage {i} was left in Redis");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(a.snapshot().corrupt, 3);
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_stays_within_bounds() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("jitter");
    let a: RedisCache<u32> = RedisCache::builder(&name, support::connection(&client).await)
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .ttl(Duration::from_secs(1_000))
        .jitter(0.2)
        .build()
        .unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut seen = Vec::new();
    for i in 0..300u32 {
        a.set(&i.to_string(), i).await.unwrap();
        let pttl: i64 = c.pttl(a.redis_key(&i.to_string())).await.unwrap();
        seen.push(pttl);
    }
    let (min, max) = (*seen.iter().min().unwrap(), *seen.iter().max().unwrap());
    assert!(
        min >= 790_000 && max <= 1_200_000,
        "PX outside ±20%: {min}..{max}"
    );
    assert!(
        min < 850_000 && max > 1_150_000,
        "PX not spread: {min}..{max}"
    );
    // Jitter 0: exact.
    let exact: RedisCache<u32> = RedisCache::builder(&name, support::connection(&client).await)
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .ttl(Duration::from_secs(1_000))
        .jitter(0.0)
        .build()
        .unwrap();
    exact.set("exact", 1).await.unwrap();
    let pttl: i64 = c.pttl(exact.redis_key("exact")).await.unwrap();
    assert!((995_000..=1_000_000).contains(&pttl), "PX {pttl}");
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lease_holder_is_replaced_after_the_lease() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("lease");
    let clock = ManualClock::new();
    let b: RedisCache<String, ManualClock> =
        RedisCache::builder(&name, support::connection(&client).await)
            .timeout(support::BUSY_MACHINE_TIMEOUT)
            .lease(Duration::from_millis(300))
            .lease_wait(Duration::from_secs(10))
            .clock(clock.clone())
            .build()
            .unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    // A holder that died: its lease stays until PX.
    let lease = format!("{}:lease", b.redis_key("k"));
    let _: () = redis::cmd("SET")
        .arg(&lease)
        .arg("dead-holder")
        .arg("PX")
        .arg(300)
        .query_async(&mut c)
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let got = b
        .take_optional("k", counting(&calls, Some("rebuilt")))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(got.as_deref(), Some("rebuilt"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = b.snapshot();
    assert_eq!((s.lease_waits, s.loads, s.lease_timeouts), (1, 1, 0));
    println!("rebuilt after a dead holder's 300 ms lease in {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_was_taken_over_cannot_write() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("fence");
    let clock = ManualClock::new();
    let a = cache(&client, &name, &clock).await;
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let lease = format!("{}:lease", a.redis_key("k"));
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let a2 = a.clone();
    let holder = tokio::spawn(async move {
        a2.take_optional("k", move || async move {
            entered_tx.send(()).unwrap();
            go_rx.await.unwrap();
            Ok::<_, Infallible>(Some("old".to_string()))
        })
        .await
    });
    entered_rx.await.unwrap();
    // The lease expired and another instance holds it now.
    let _: () = redis::cmd("SET")
        .arg(&lease)
        .arg("someone-else")
        .query_async(&mut c)
        .await
        .unwrap();
    go_tx.send(()).unwrap();
    let got = holder.await.unwrap().unwrap();
    assert_eq!(got.as_deref(), Some("old")); // its caller still gets what it loaded
    let stored: Option<Vec<u8>> = c.get(a.redis_key("k")).await.unwrap();
    assert_eq!(stored, None, "a fenced-out holder wrote its value");
    assert_eq!(a.snapshot().lease_lost, 1);
    let other: String = c.get(&lease).await.unwrap();
    assert_eq!(other, "someone-else");
    support::cleanup(&client, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_releases_the_lease() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("release");
    let clock = ManualClock::new();
    let a = cache(&client, &name, &clock).await;
    let err = a
        .take("k", || async { Err::<String, _>("db down") })
        .await
        .unwrap_err();
    assert_eq!(err.loader_error(), Some(&"db down"));
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let lease: Option<String> = c.get(format!("{}:lease", a.redis_key("k"))).await.unwrap();
    assert_eq!(lease, None);
    assert_eq!(
        a.take("k", || async { Ok::<_, Infallible>("ok".to_string()) })
            .await
            .unwrap(),
        "ok"
    );
    support::cleanup(&client, &name).await;
}

/// The local tier keeps an entry no longer than its logical expiry, however long its own
/// time to live: a value loaded, a value set and a "not found" placeholder each leave it
/// exactly when they expire (so a local hit needs no expiry check of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_entries_end_at_their_logical_expiry() {
    let Some(client) = support::shared().await else {
        return;
    };
    let name = support::unique("local-cap");
    let clock = ManualClock::new();
    let a = RedisCache::builder(&name, support::connection(&client).await)
        .timeout(support::BUSY_MACHINE_TIMEOUT)
        .jitter(0.0)
        .ttl(Duration::from_secs(10))
        .not_found_ttl(Duration::from_secs(4))
        .local(Duration::from_secs(3_600), 100)
        .clock(clock.clone())
        .build()
        .expect("build");
    let calls = Arc::new(AtomicUsize::new(0));
    a.take_optional("loaded", counting(&calls, Some("v1")))
        .await
        .unwrap();
    a.take_optional("absent", counting(&calls, None))
        .await
        .unwrap();
    a.set("set", "v2".to_string()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    clock.advance(Duration::from_millis(3_999));
    assert_eq!(a.local_entry("absent"), Some(None));
    clock.advance(Duration::from_millis(1));
    assert_eq!(a.local_entry("absent"), None, "the placeholder's 4 s");

    clock.advance(Duration::from_millis(5_999));
    assert_eq!(a.local_entry("loaded"), Some(Some("v1".to_string())));
    assert_eq!(a.local_entry("set"), Some(Some("v2".to_string())));
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        a.local_entry("loaded"),
        None,
        "the value's 10 s, not the local 3,600 s"
    );
    assert_eq!(a.local_entry("set"), None);

    // Past its expiry the key is loaded again (Redis holds only the expired envelope).
    a.take_optional("loaded", counting(&calls, Some("v3")))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(a.local_entry("loaded"), Some(Some("v3".to_string())));
    support::cleanup(&client, &name).await;
}

#[tokio::test]
async fn invalid_configuration_is_refused() {
    let Some(client) = support::shared().await else {
        return;
    };
    let conn = support::connection(&client).await;
    let b = || RedisCache::<u64>::builder("cfg", conn.clone());
    assert!(matches!(
        b().jitter(1.5).build(),
        Err(ConfigError::Jitter(_))
    ));
    assert!(matches!(
        b().jitter(f64::NAN).build(),
        Err(ConfigError::Jitter(_))
    ));
    assert!(matches!(
        b().ttl(Duration::ZERO).build(),
        Err(ConfigError::Duration("ttl", _))
    ));
    assert!(matches!(
        b().lease(Duration::from_secs(7200)).build(),
        Err(ConfigError::Duration("lease", _))
    ));
    assert!(matches!(
        b().timeout(Duration::ZERO).build(),
        Err(ConfigError::Duration("timeout", _))
    ));
    assert!(matches!(
        b().local(Duration::from_secs(1), 0).build(),
        Err(ConfigError::ZeroCapacity)
    ));
    assert!(matches!(
        b().delete_retries(65, Duration::from_millis(1)).build(),
        Err(ConfigError::DeleteAttempts(65))
    ));
    assert!(matches!(
        RedisCache::<u64>::builder("a{b", conn.clone()).build(),
        Err(ConfigError::Name(_))
    ));
    assert!(matches!(
        RedisCache::<u64>::builder("", conn.clone()).build(),
        Err(ConfigError::Name(_))
    ));
    assert!(b().jitter(0.0).build().is_ok());
    assert!(b().jitter(1.0).lease_wait(Duration::ZERO).build().is_ok());
    // Outside a runtime.
    let built =
        std::thread::spawn(move || RedisCache::<u64>::builder("cfg", conn).build().map(drop))
            .join()
            .unwrap();
    assert!(matches!(built, Err(ConfigError::NoRuntime)));
}
