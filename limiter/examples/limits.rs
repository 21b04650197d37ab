//! Both limiters on a manual clock, so it runs at once: a per-client token bucket through
//! a burst and its refill, and a daily quota.
//!
//! ```sh
//! cargo run -p keel-limiter --example limits
//! ```

use std::time::Duration;

use keel_limiter::{Denied, PeriodLimiter, Rate, TokenLimiter};
use keel_timex::ManualClock;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new();

    // 10 requests per second per client, bursts of 5.
    let api = TokenLimiter::builder(Rate::per_second(10), 5).build_with_clock(clock.clone())?;
    println!("token bucket: 10/s, burst 5");
    for round in 0..3 {
        let mut line = String::new();
        for _ in 0..8 {
            match api.allow_key_n("203.0.113.7", 1) {
                Ok(()) => line.push_str(" ok"),
                Err(Denied::Limited { retry_after }) => {
                    line.push_str(&format!(" 429(retry in {retry_after:?})"));
                }
                Err(other) => line.push_str(&format!(" {other}")),
            }
        }
        println!("  t = {:>4} ms:{line}", round * 300);
        clock.advance(Duration::from_millis(300));
    }
    println!("  asking for 6 at once: {}", api.allow_n(6).unwrap_err());

    // 3 messages per user per day (window from the first message).
    let sms =
        PeriodLimiter::builder(3, Duration::from_secs(86_400)).build_with_clock(clock.clone())?;
    println!("period limiter: 3 per day");
    for i in 1..=4 {
        let d = sms.take("alice")?;
        println!("  message {i}: {:?}, resets in {:?}", d.state, d.resets_in);
    }
    Ok(())
}
