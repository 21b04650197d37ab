//! A breaker in front of a dependency that fails for a while, on virtual time: how fast it
//! starts shedding, how little reaches the dependency during the outage, how it recovers.
//!
//! `cargo run -p keel-breaker --example flaky_dependency`

use std::time::Duration;

use keel_breaker::{Breaker, BreakerError};
use keel_timex::ManualClock;

/// The dependency: down between second 5 and second 15.
fn dependency(t: Duration) -> Result<&'static str, String> {
    if (5..15).contains(&t.as_secs()) {
        Err("connection refused".into())
    } else {
        Ok("row")
    }
}

fn main() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder()
        .name("flaky-db")
        .seed(42)
        .build_with_clock(clock.clone())
        .expect("valid configuration");

    const PER_SECOND: u32 = 200;
    let step = Duration::from_secs(1) / PER_SECOND;
    println!("second  dependency  ok   failed  rejected  reached dep  drop ratio");
    let mut elapsed = Duration::ZERO;
    for second in 0..30 {
        let (mut ok, mut failed, mut rejected) = (0, 0, 0);
        for _ in 0..PER_SECOND {
            match breaker.call(|| dependency(elapsed)) {
                Ok(_) => ok += 1,
                Err(BreakerError::Inner(_)) => failed += 1,
                Err(BreakerError::Rejected(_)) => rejected += 1,
            }
            clock.advance(step);
            elapsed += step;
        }
        let state = if (5..15).contains(&second) {
            "DOWN"
        } else {
            "up"
        };
        println!(
            "{second:>6}  {state:>10}  {ok:>3}  {failed:>6}  {rejected:>8}  {:>11}  {:>10.3}",
            ok + failed,
            breaker.snapshot().drop_ratio
        );
    }
    println!("\nlast failures:");
    for f in breaker.recent_failures() {
        println!("  {f}");
    }
}
