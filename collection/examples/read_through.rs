//! A cache in front of a slow, sometimes failing "database": four threads, each with its own
//! clone of the cache, read user names through `take`; hot keys are loaded once, missing
//! users are remembered as missing, and failed loads are not cached but reach the reader as
//! the database's own `io::Error`. Run: `cargo run -p keel-collection --example read_through`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use keel_collection::cache::{Cache, TakeError};

/// The pretend database: 1 ms per query, users 0..800 exist, every 50th query fails.
struct Database {
    queries: AtomicU64,
}

impl Database {
    fn find_user(&self, id: u64) -> io::Result<Option<String>> {
        let n = self.queries.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(1));
        if n % 50 == 49 {
            return Err(io::Error::other("connection reset"));
        }
        Ok((id < 800).then(|| format!("user-{id}")))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Database {
        queries: AtomicU64::new(0),
    };
    let cache: Cache<u64, String> = Cache::builder(Duration::from_secs(30))
        .capacity(300)
        .negative_ttl(Duration::from_secs(5))
        .name("users")
        .build()?;

    let (found, missing, failed) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    thread::scope(|s| {
        for worker in 0..4u64 {
            // A clone is a handle on the same cache, not a copy.
            let (db, cache) = (&db, cache.clone());
            let (found, missing, failed) = (&found, &missing, &failed);
            s.spawn(move || {
                let mut seed = worker + 1;
                for _ in 0..2_000 {
                    // Skewed: 70% of reads go to 150 hot ids, the rest to 300 cold ones (a third missing).
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (seed >> 33) % 1_000;
                    let id = if r < 700 { r % 150 } else { r };
                    match cache.take_optional(id, || db.find_user(id)) {
                        Ok(Some(_name)) => found.fetch_add(1, Ordering::Relaxed),
                        Ok(None) => missing.fetch_add(1, Ordering::Relaxed),
                        // The loader's error, typed: an `Arc<io::Error>`.
                        Err(TakeError::Failed(error)) => {
                            assert_eq!(error.kind(), io::ErrorKind::Other, "{error}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(other) => panic!("unexpected: {other}"),
                    };
                }
            });
        }
    });

    let stats = cache.snapshot();
    println!(
        "8000 reads: {} found, {} missing, {} failed",
        found.into_inner(),
        missing.into_inner(),
        failed.into_inner()
    );
    println!(
        "database queries: {} (the rest were served by the cache)",
        db.queries.into_inner()
    );
    println!(
        "cache: {} entries, hit ratio {:.1}%, {} hits, {} misses, {} evictions",
        stats.len,
        100.0 * stats.hit_ratio(),
        stats.hits,
        stats.misses,
        stats.evictions
    );
    Ok(())
}
