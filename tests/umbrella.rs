//! The umbrella passes integration features through: with `breaker`, `shedder`, `limiter`
//! and `tower`/`tokio`, their layers and the breaker's deadline are reachable through `keel`
//! alone.
#![cfg(all(
    feature = "breaker",
    feature = "shedder",
    feature = "limiter",
    feature = "tower",
    feature = "tokio"
))]

use std::time::Duration;

use keel::breaker::tower::BreakerLayer;
use keel::breaker::{Breaker, BreakerError};
use keel::limiter::tower::RateLimitLayer;
use keel::limiter::{Rate, TokenLimiter};
use keel::shedder::Shedder;
use keel::shedder::tower::ShedderLayer;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn integration_features_reach_the_crates() {
    let breaker = Breaker::builder()
        .timeout(Duration::from_millis(10))
        .build()
        .unwrap();
    let stalled = breaker.call_async(std::future::pending::<Result<(), String>>());
    assert!(matches!(stalled.await, Err(BreakerError::TimedOut(_))));
    let limiter = TokenLimiter::builder(Rate::per_second(10), 1)
        .build()
        .unwrap();
    let _layers = (
        BreakerLayer::new(breaker),
        ShedderLayer::new(Shedder::new()),
        RateLimitLayer::unkeyed(limiter),
    );
}
