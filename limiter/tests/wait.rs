//! `until_ready` (feature `tokio`): waits exactly as long as the refusals say, on tokio's
//! paused clock (`TokioClock` follows it, so the limiter and the sleeps share one time).
#![cfg(feature = "tokio")]

use std::time::Duration;

use keel_limiter::{Denied, Rate, TokenLimiter};
use keel_timex::TokioClock;

#[tokio::test(start_paused = true)]
async fn waits_for_each_token_and_no_longer() {
    let limiter = TokenLimiter::builder(Rate::per_second(10), 1)
        .build_with_clock(TokioClock::new())
        .unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..5 {
        limiter.until_ready(1).await.unwrap();
    }
    // The first token is there at once, each next one 100 ms later.
    assert_eq!(start.elapsed(), Duration::from_millis(400));
    limiter.until_key_ready("k", 1).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(400),
        "a new key starts full"
    );
}

#[tokio::test(start_paused = true)]
async fn never_waits_for_what_cannot_fit() {
    let limiter = TokenLimiter::builder(Rate::per_second(10), 2)
        .build_with_clock(TokioClock::new())
        .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        limiter.until_ready(3).await,
        Err(Denied::NeverFits { n: 3, burst: 2 })
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_share_the_rate() {
    let limiter = TokenLimiter::builder(Rate::per_second(100), 1)
        .build_with_clock(TokioClock::new())
        .unwrap();
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let l = limiter.clone();
            tokio::spawn(async move { l.until_ready(1).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // 10 tokens at 100/s with one at once: at least 90 ms, and no waiter oversleeps by
    // more than a refill interval.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(took <= Duration::from_millis(110), "{took:?}");
}
