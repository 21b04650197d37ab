//! Feature `metrics`: decisions are counted in the limiter's own atomics and reach the
//! recorder in batches. Nothing counted is lost or published twice: at a drop, from the
//! periodic thread with no call at all, and while publishes race with decisions.

mod recorded;

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_limiter::{PeriodLimiter, Rate, TokenLimiter};
use keel_timex::ManualClock;
use recorded::Recorded;

/// Dropping the limiter publishes what it counted since the last publish.
#[test]
fn a_dropped_limiter_publishes_its_last_decisions() {
    let rec = Recorded::new();
    let (token, period) = rec.build(|| {
        (
            TokenLimiter::builder(Rate::per_second(1), 3)
                .name("t")
                .build_with_clock(ManualClock::new())
                .unwrap(),
            PeriodLimiter::builder(1, Duration::from_secs(60))
                .name("p")
                .build_with_clock(ManualClock::new())
                .unwrap(),
        )
    });
    for _ in 0..5 {
        token.allow();
        let _ = period.take("k");
    }
    drop(token);
    drop(period);
    assert_eq!(rec.decisions("t", "memory", "allowed"), 3);
    assert_eq!(rec.decisions("t", "memory", "limited"), 2);
    assert_eq!(rec.decisions("p", "memory", "allowed"), 1);
    assert_eq!(rec.decisions("p", "memory", "limited"), 4);
}

/// With no publish, snapshot or drop, keel-timex's periodic thread (once a second) brings
/// the counts to the recorder. Waits for the condition, with a deadline far beyond the
/// period for a loaded machine.
#[test]
fn the_periodic_thread_publishes_without_any_call() {
    let rec = Recorded::new();
    let token = rec.build(|| {
        TokenLimiter::builder(Rate::per_second(1), 7)
            .name("idle")
            .build_with_clock(ManualClock::new())
            .unwrap()
    });
    for _ in 0..10 {
        token.allow();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rec.decisions("idle", "memory", "allowed") < 7 {
        assert!(Instant::now() < deadline, "not published within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // All at once or in parts, never more than counted.
    while rec.decisions("idle", "memory", "limited") < 3 {
        assert!(Instant::now() < deadline, "not published within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    token.publish_metrics();
    assert_eq!(rec.decisions("idle", "memory", "allowed"), 7);
    assert_eq!(rec.decisions("idle", "memory", "limited"), 3);
}

/// Two threads decide while a third publishes in a loop: the published totals never
/// exceed what was decided, never go down (the debugging recorder hands out increments:
/// a negative one cannot exist, a double publish would overshoot), and end exact.
#[test]
fn publishes_racing_with_decisions_count_each_once() {
    const PER_THREAD: u64 = 20_000;
    let rec = Recorded::new();
    let clock = ManualClock::new();
    let token = rec.build(|| {
        TokenLimiter::builder(Rate::per_second(1), 1_000)
            .name("race")
            .build_with_clock(clock.clone())
            .unwrap()
    });
    let start = Barrier::new(3);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let deciders: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..PER_THREAD {
                        token.allow();
                    }
                })
            })
            .collect();
        s.spawn(|| {
            start.wait();
            let mut last = 0;
            while !done.load(Ordering::Acquire) {
                token.publish_metrics();
                let seen = rec.decisions("race", "memory", "allowed")
                    + rec.decisions("race", "memory", "limited");
                assert!(seen >= last && seen <= 2 * PER_THREAD, "{last} then {seen}");
                last = seen;
            }
        });
        for d in deciders {
            d.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    token.publish_metrics();
    assert_eq!(rec.decisions("race", "memory", "allowed"), 1_000);
    assert_eq!(
        rec.decisions("race", "memory", "limited"),
        2 * PER_THREAD - 1_000
    );
}
