//! Limiters shared through Redis, surviving Redis failing.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run -p keel-limiter --features redis,tracing --example redis_limiter
//! ```
//!
//! Point `REDIS_URL` at a port nobody listens on to watch the rescue decide instead.

#[cfg(not(feature = "redis"))]
fn main() {
    eprintln!("this example needs the `redis` feature: --features redis");
}

#[cfg(feature = "redis")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;

    use keel_limiter::redis::RedisStore;
    use keel_limiter::{Denied, FailurePolicy, PeriodLimiter, Rate, TokenLimiter};

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    // One store per server: its connections are shared by every limiter built on it.
    let store = RedisStore::open(&url)?.timeout(Duration::from_millis(200));

    // 5 requests per second per client, bursts of 10, shared by every instance.
    let api = TokenLimiter::builder(Rate::per_second(5), 10)
        .name("api")
        .redis(store.clone(), "example:api")
        .failure_policy(FailurePolicy::Rescue)
        .build()?;
    let mut allowed = 0;
    for _ in 0..15 {
        match api.allow_key_n("203.0.113.7", 1) {
            Ok(()) => allowed += 1,
            Err(Denied::Limited { retry_after }) => {
                println!("limited: retry after {retry_after:?}");
                break;
            }
            Err(other) => println!("refused: {other} (HTTP {})", other.http_status()),
        }
    }
    println!("api: {allowed} allowed; {:#?}", api.snapshot());

    // 3 password resets per user per day, days starting at midnight UTC.
    let resets = PeriodLimiter::builder(3, Duration::from_secs(86_400))
        .name("password-reset")
        .align(Duration::ZERO)
        .redis(store, "example:reset")
        .build()?;
    for _ in 0..4 {
        let d = resets.take("alice")?;
        println!("reset: {:?}, window resets in {:?}", d.state, d.resets_in);
    }
    println!("{:#?}", resets.snapshot().redis);
    Ok(())
}
