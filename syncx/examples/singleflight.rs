//! Cache-stampede protection: 50 threads miss the cache for one hot key at the same moment;
//! the singleflight lets one of them load it while the others wait for that load.
//!
//! `cargo run -p keel-syncx --example singleflight`

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, RwLock};
use std::time::Duration;

use keel_syncx::singleflight::SingleFlight;

/// The expensive source behind the cache (a database, a remote service).
fn load_from_database(key: &str, loads: &AtomicUsize) -> Result<Arc<str>, std::io::Error> {
    loads.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    Ok(Arc::from(format!("profile of {key}")))
}

fn main() {
    let cache: RwLock<HashMap<String, Arc<str>>> = RwLock::default();
    let flights: SingleFlight<String, Arc<str>, std::io::Error> = SingleFlight::new();
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(50);

    let get = |key: &str| -> Arc<str> {
        if let Some(hit) = cache.read().unwrap().get(key) {
            return Arc::clone(hit);
        }
        // A miss: one caller per key loads; concurrent callers share its result.
        flights
            .run(key.to_string(), || {
                let value = load_from_database(key, &loads)?;
                cache
                    .write()
                    .unwrap()
                    .insert(key.to_string(), Arc::clone(&value));
                Ok(value)
            })
            .expect("the load failed")
    };

    std::thread::scope(|s| {
        for _ in 0..50 {
            s.spawn(|| {
                barrier.wait(); // every thread misses at once
                assert_eq!(&*get("user:42"), "profile of user:42");
            });
        }
    });

    println!(
        "50 concurrent misses, {} database load(s)",
        loads.load(Ordering::SeqCst)
    );
    println!("keys in flight afterwards: {}", flights.in_flight());
}
