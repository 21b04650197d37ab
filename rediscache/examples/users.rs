//! Two instances of one cache on the local Redis (127.0.0.1:6379): a cold key loaded once
//! for both, a delete reaching the other instance, the counters.
//!
//! cargo run -p keel-rediscache --example users

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_rediscache::{Connection, RedisCache};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    let name = format!("example-users-{}", std::process::id());
    let mut instances = Vec::new();
    for _ in 0..2 {
        let cache: RedisCache<String> =
            RedisCache::builder(&name, Connection::single(client.clone()).await?)
                .ttl(Duration::from_secs(60))
                .subscriber(client.clone())
                .build()?;
        cache.wait_subscribed(Duration::from_secs(5)).await;
        instances.push(cache);
    }
    let queries = Arc::new(AtomicUsize::new(0));
    let load = |queries: Arc<AtomicUsize>| {
        move || async move {
            queries.fetch_add(1, Ordering::SeqCst); // SELECT name FROM users WHERE id = 7
            Ok::<_, Infallible>("ada".to_string())
        }
    };
    for cache in &instances {
        let name = cache.take("7", load(Arc::clone(&queries))).await?;
        println!("user 7 = {name}");
    }
    println!("database queries: {}", queries.load(Ordering::SeqCst));

    instances[0].del("7").await?;
    // The other instance's local copy goes within the pub/sub delivery latency.
    for _ in 0..500 {
        if instances[1].local_entry("7").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "after del: instance 1 holds {:?}",
        instances[1].local_entry("7")
    );
    for (i, cache) in instances.iter().enumerate() {
        println!("instance {i}: {:?}", cache.snapshot());
    }
    Ok(())
}
