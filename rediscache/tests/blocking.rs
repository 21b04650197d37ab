//! The synchronous twin: `take_blocking` / `take_optional_blocking` from plain threads run
//! the same read path (one load across callers, placeholders), and refuse to block inside
//! an async context.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use keel_rediscache::{RedisCache, TakeError};

#[test]
fn blocking_reads_share_one_load_and_remember_not_found() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let name = support::unique("blocking");
    let Some((client, cache)) = runtime.block_on(async {
        let client = support::shared().await?;
        let cache: RedisCache<String> =
            RedisCache::builder(name.as_str(), support::connection(&client).await)
                .timeout(support::BUSY_MACHINE_TIMEOUT)
                .ttl(Duration::from_secs(60))
                .build()
                .expect("build");
        Some((client, cache))
    }) else {
        return;
    };

    // Eight threads, released together, read one cold key: one load between them (the
    // others join it in process or wait on the lease).
    const THREADS: usize = 8;
    let loads = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let readers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, loads, start) = (cache.clone(), Arc::clone(&loads), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                cache.take_blocking("7", || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>("user 7".to_owned())
                })
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.join().unwrap().unwrap(), "user 7");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    // A key the loader does not find: remembered, so the next blocking read answers
    // NotFound without loading.
    let missing = cache.take_optional_blocking("404", || Ok::<_, Infallible>(None));
    assert_eq!(missing.unwrap(), None);
    let again = cache.take_blocking("404", || -> Result<String, Infallible> {
        panic!("a remembered not-found must not load")
    });
    assert!(matches!(again, Err(TakeError::NotFound)), "{again:?}");

    // Inside the runtime, blocking would stall it: refused, nothing loaded.
    let inside = runtime.block_on(async {
        cache.take_blocking("8", || -> Result<String, Infallible> {
            panic!("not called inside an async context")
        })
    });
    assert!(
        matches!(inside, Err(TakeError::InAsyncContext)),
        "{inside:?}"
    );

    runtime.block_on(support::cleanup(&client, &name));
}
