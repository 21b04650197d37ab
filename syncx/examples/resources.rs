//! Shared resources in a service: a config fetched once (its failures retried at most once per
//! interval), and one client per downstream address, created once by concurrent requests and
//! closed together at shutdown.
//!
//! Run with `cargo run -p keel-syncx --example resources`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use keel_syncx::resource::{Close, ImmutableResource, ResourceManager};
use keel_timex::ManualClock;

/// A client to one downstream address.
#[derive(Debug)]
struct Client {
    addr: String,
    open: AtomicBool,
}

impl Close for Client {
    type Error = String;

    fn close(&self) -> Result<(), String> {
        self.open.store(false, Ordering::Release);
        if self.addr.starts_with("flaky") {
            Err("connection reset while closing".to_string())
        } else {
            Ok(())
        }
    }
}

fn main() {
    // --- ImmutableResource: the first fetch fails, the error is served for 5 s, then a
    // retry succeeds and the value is kept for good. A ManualClock makes the 5 s instant.
    let clock = ManualClock::new();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let config = ImmutableResource::new(move || match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Err("config server unreachable"),
        _ => Ok("pool_size=8".to_string()),
    })
    .retry_interval(Duration::from_secs(5))
    .clock(clock.clone());

    println!("config: {:?}", config.get()); // fetch 1 fails
    println!("config: {:?}", config.get()); // cached error, no fetch
    clock.advance(Duration::from_secs(5));
    println!("config: {:?}", config.get()); // fetch 2 succeeds
    println!("config: {:?}", config.get()); // served from memory
    println!("fetches: {}", fetches.load(Ordering::SeqCst));

    // --- ResourceManager: 8 concurrent requests per address, one client each.
    let clients: ResourceManager<String, Client> = ResourceManager::new();
    let created = AtomicUsize::new(0);
    thread::scope(|s| {
        for i in 0..16 {
            let (clients, created) = (&clients, &created);
            s.spawn(move || {
                let addr = if i % 2 == 0 {
                    "orders:8080"
                } else {
                    "flaky:9090"
                };
                let client = clients
                    .get_or_create(addr.to_string(), || {
                        created.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(10)); // dialling
                        Ok::<_, std::io::Error>(Client {
                            addr: addr.to_string(),
                            open: AtomicBool::new(true),
                        })
                    })
                    .expect("dial");
                assert!(client.open.load(Ordering::Acquire));
            });
        }
    });
    println!(
        "clients: {} held, {} created for 16 requests",
        clients.len(),
        created.load(Ordering::SeqCst)
    );

    // --- Shutdown: every client is closed, failures are reported with their keys, and
    // later requests get `Closed` instead of a panic.
    if let Err(errors) = clients.close() {
        for (addr, error) in errors.errors() {
            println!("close {addr}: {error}");
        }
    }
    let late = clients.get_or_create("orders:8080".to_string(), || {
        Ok::<_, std::io::Error>(Client {
            addr: "orders:8080".into(),
            open: AtomicBool::new(true),
        })
    });
    println!("after close: {}", late.unwrap_err());
}
