//! Two threads on one breaker: no outcome is lost, and concurrent decisions stay sane.

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use keel_breaker::{Breaker, Mode};
use keel_timex::ManualClock;

#[test]
fn no_outcome_is_lost_across_two_threads() {
    const PER_THREAD: u64 = 100_000;
    let clock = ManualClock::new();
    let breaker = Breaker::builder()
        .seed(1)
        .build_with_clock(clock.clone())
        .unwrap();
    // Forced closed: every call is admitted, so every outcome must be recorded.
    breaker.set_mode(Mode::ForcedClosed);
    let start = Barrier::new(2);
    thread::scope(|s| {
        for t in 0..2 {
            let (b, start) = (breaker.clone(), &start);
            s.spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    let p = b.allow().unwrap();
                    if (i + t) % 4 == 0 {
                        p.failure()
                    } else {
                        p.success()
                    }
                }
            });
        }
    });
    let h = breaker.snapshot().history;
    assert_eq!(h.total, 2 * PER_THREAD);
    assert_eq!(h.accepts, 2 * PER_THREAD * 3 / 4);
}

#[test]
fn concurrent_calls_across_bucket_boundaries_keep_every_admitted_outcome() {
    // Adaptive mode, healthy traffic, the clock moving through buckets while two threads
    // call: nothing is rejected and the window holds every outcome (all within 10 s).
    // In lock-step rounds: in each, both threads make CALLS calls while this thread moves
    // the clock 100 ms (the calls race with the move), and no thread starts the next round
    // before all are done with this one. So the calls cover all 30 steps (3 s, 12 buckets)
    // however the threads are scheduled, not only those that passed before they ran.
    const ROUNDS: usize = 30;
    const CALLS: u64 = 1000;
    let clock = ManualClock::new();
    let breaker = Breaker::builder()
        .seed(2)
        .build_with_clock(clock.clone())
        .unwrap();
    let round = Barrier::new(3);
    let admitted: u64 = thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (b, round) = (breaker.clone(), &round);
                s.spawn(move || {
                    let mut n = 0;
                    for _ in 0..ROUNDS {
                        for _ in 0..CALLS {
                            b.allow()
                                .expect("healthy traffic is never rejected")
                                .success();
                            n += 1;
                        }
                        round.wait();
                    }
                    n
                })
            })
            .collect();
        for _ in 0..ROUNDS {
            clock.advance(Duration::from_millis(100));
            round.wait();
        }
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(admitted, 2 * ROUNDS as u64 * CALLS);
    let h = breaker.snapshot().history;
    assert_eq!((h.accepts, h.total), (admitted, admitted));
}

/// With several writing threads a decision may reuse a reading of the live bucket for
/// `live_refresh`; with `Duration::ZERO` it never does.
#[test]
fn live_bucket_readings_are_reused_for_live_refresh_only() {
    for refresh in [Duration::from_millis(1), Duration::ZERO] {
        let clock = ManualClock::new();
        let breaker = Breaker::builder()
            .seed(3)
            .live_refresh(refresh)
            .build_with_clock(clock.clone())
            .unwrap();
        // Two writing threads (this one, alive, and another), so the breaker is no longer
        // single-writer.
        breaker.allow().unwrap().success();
        thread::scope(|s| {
            let b = breaker.clone();
            s.spawn(move || b.allow().unwrap().success());
        });
        // A decision now takes (and, with a refresh interval, keeps) a live reading.
        assert!(breaker.allow().map(|p| p.success()).is_ok());
        // A burst of failures in the same instant, bypassing the decision.
        breaker.set_mode(Mode::ForcedClosed);
        for _ in 0..10_000 {
            breaker.allow().unwrap().failure();
        }
        breaker.set_mode(Mode::Adaptive);
        let rejected_now = (0..100).filter(|_| breaker.allow().is_err()).count();
        if refresh.is_zero() {
            assert!(
                rejected_now > 90,
                "exact reading: {rejected_now} of 100 rejected"
            );
        } else {
            assert_eq!(
                rejected_now, 0,
                "the reading is reused within the millisecond"
            );
            clock.advance(refresh);
            let rejected_later = (0..100).filter(|_| breaker.allow().is_err()).count();
            assert!(
                rejected_later > 90,
                "after refresh: {rejected_later} of 100 rejected"
            );
        }
    }
}
