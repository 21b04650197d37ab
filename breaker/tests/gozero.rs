//! go-zero's breaker scenarios (`core/breaker/*_test.go`), deterministic: a manual clock and
//! seeded randomness. go-zero's `verify(fn)` ("true in at least 75 of 100 trials") becomes
//! 100 trials over 100 seeds, each on a fresh breaker.

use std::time::Duration;

use keel_breaker::{Breaker, BreakerError, Mode, Registry};
use keel_timex::ManualClock;

/// go-zero's test breaker: K = 5, 10 buckets of 10 ms.
fn test_breaker(seed: u64) -> (Breaker<ManualClock>, ManualClock) {
    breaker_with(seed, 5.0, 10)
}

fn breaker_with(seed: u64, k: f64, buckets: u32) -> (Breaker<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .k(k)
        .window(Duration::from_millis(10) * buckets)
        .buckets(buckets)
        .seed(seed)
        .build_with_clock(clock.clone())
        .expect("valid test configuration");
    (b, clock)
}

const INTERVAL: Duration = Duration::from_millis(10);

/// Records outcomes the way go-zero's tests call `markSuccess`/`markFailure`: bypassing the
/// decision (forced closed records without throttling).
fn mark(b: &Breaker<ManualClock>, successes: usize, failures: usize) {
    let mode = b.mode();
    b.set_mode(Mode::ForcedClosed);
    for _ in 0..successes {
        b.allow().unwrap().success();
    }
    for _ in 0..failures {
        b.allow().unwrap().failure();
    }
    b.set_mode(mode);
}

/// go-zero's `verify`: `check` must hold in at least 75 of 100 seeded trials.
fn verify(mut check: impl FnMut(u64) -> bool) {
    let passed = (0..100).filter(|&seed| check(seed)).count();
    assert!(passed >= 75, "held in {passed} of 100 trials");
}

fn fail(n: i32) -> Result<(), String> {
    Err(format!("failure {n}"))
}

#[test]
fn allow_on_a_fresh_breaker_with_a_generated_name() {
    let b = Breaker::new();
    assert!(b.name().starts_with("breaker-"));
    assert!(b.allow().is_ok());
}

#[test]
fn log_reason_keeps_exactly_five() {
    let (b, _) = test_breaker(1);
    for i in 0..1000 {
        let _ = b.call(|| fail(i));
    }
    assert_eq!(b.recent_failures().len(), 5);
}

#[test]
fn promise_with_reason() {
    let (b, _) = test_breaker(1);
    b.allow().unwrap().success();
    assert!(b.recent_failures().is_empty());
    b.allow().unwrap().failure_with("fail");
    assert_eq!(b.recent_failures()[0].reason, "fail");
}

#[test]
fn close_stays_closed_on_successes() {
    let (b, _) = test_breaker(1);
    mark(&b, 80, 0);
    assert!(b.allow().is_ok());
    mark(&b, 120, 0);
    assert!(b.allow().is_ok());
}

#[test]
fn open_after_failures() {
    verify(|seed| {
        let (b, clock) = test_breaker(seed);
        mark(&b, 10, 0);
        for _ in 0..100_000 {
            if let Ok(p) = b.allow() {
                p.failure();
            }
        }
        clock.advance(INTERVAL * 2);
        b.allow().is_err()
    });
}

#[test]
fn recover_after_successes() {
    verify(|seed| {
        let (b, clock) = breaker_with(seed, 1.5, 20);
        for _ in 0..10 {
            mark(&b, 0, 100);
            clock.advance(INTERVAL);
        }
        for _ in 0..10 {
            mark(&b, 100, 0);
            clock.advance(INTERVAL);
        }
        b.allow().is_ok()
    });
}

#[test]
fn fallback_answers_rejections() {
    verify(|seed| {
        let (b, clock) = test_breaker(seed);
        mark(&b, 1, 10_000);
        clock.advance(INTERVAL);
        let r = b.call_with_fallback(|| fail(0), |_| false, |_rejected| Ok(()));
        r.is_ok()
    });
}

#[test]
fn reject_returns_the_rejection() {
    verify(|seed| {
        let (b, clock) = test_breaker(seed);
        mark(&b, 100, 10_000);
        clock.advance(INTERVAL);
        matches!(
            b.call(|| Ok::<_, String>(())),
            Err(BreakerError::Rejected(_))
        )
    });
}

#[test]
fn more_falling_buckets_reject_almost_everything() {
    // go-zero asserts "more than 90 of 100" on one random run; the expected count is about
    // 93 (the drop probability climbs from 55/61 toward 155/161 as drops add to the total),
    // so one seeded run can land below 90. The deterministic form: the mean over 100 seeds.
    let mut rejected_total = 0;
    for seed in 0..100 {
        let (b, clock) = test_breaker(seed);
        // 6 intervals of a failing call every 1 ms: every call returns an error (the failure
        // or the fallback echoing the rejection).
        for i in 0..60 {
            let r = b.call_with_fallback(|| fail(i), |_| false, |r| Err(r.to_string()));
            assert!(r.is_err());
            clock.advance(Duration::from_millis(1));
        }
        rejected_total += (0..100)
            .filter(|_| matches!(b.call(|| fail(0)), Err(BreakerError::Rejected(_))))
            .count();
    }
    let mean = rejected_total as f64 / 100.0;
    assert!(mean > 90.0, "{mean} of 100 rejected on average");
}

#[test]
fn acceptable_errors_are_returned_unchanged_and_count_as_success() {
    let (b, _) = test_breaker(1);
    let r = b.call_with(|| fail(1), |e| e == "failure 1");
    assert_eq!(r, Err(BreakerError::Inner("failure 1".to_string())));
    let r = b.call_with(|| fail(2), |_| false);
    assert_eq!(r, Err(BreakerError::Inner("failure 2".to_string())));
    let h = b.snapshot().history;
    assert_eq!((h.accepts, h.total), (1, 2));
}

#[test]
fn a_panic_propagates_and_counts_as_a_failure() {
    let (b, _) = test_breaker(1);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = b.call(|| -> Result<(), String> { panic!("boom") });
    }));
    assert!(caught.is_err());
    let h = b.snapshot().history;
    assert_eq!((h.accepts, h.total), (0, 1));
}

#[test]
fn half_open_recovers_after_a_window() {
    let (b, _) = test_breaker(1);
    assert!(b.allow().is_ok());
    verify(|seed| {
        let (b, clock) = test_breaker(seed);
        mark(&b, 0, 10_000);
        clock.advance(INTERVAL);
        b.allow().is_err()
    });
    let (b, clock) = test_breaker(3);
    mark(&b, 0, 10_000);
    clock.advance(INTERVAL * 10); // a full window later the failures are gone
    assert!(b.allow().is_ok());
    mark(&b, 10_000, 0);
    verify(|seed| {
        let (b, clock) = test_breaker(seed);
        mark(&b, 0, 10_000);
        clock.advance(INTERVAL * 10);
        mark(&b, 10_000, 0);
        b.allow().is_ok()
    });
}

#[test]
fn self_protection_lets_the_first_few_failures_through() {
    let (b, _) = test_breaker(1);
    mark(&b, 0, 4);
    assert!(b.allow().is_ok());
    let (b, _) = test_breaker(1);
    for n in 0..100 {
        mark(&b, n + 1, 0);
        assert!(b.allow().is_ok());
    }
}

#[test]
fn history_counts_accepts_and_total_over_the_window() {
    let (b, clock) = test_breaker(1);
    for _ in 0..5 {
        mark(&b, 2, 0);
        clock.advance(INTERVAL);
    }
    let h = b.snapshot().history;
    assert_eq!((h.accepts, h.total), (10, 10));

    let (b, _) = test_breaker(1);
    mark(&b, 0, 10);
    let h = b.snapshot().history;
    assert_eq!((h.accepts, h.total), (0, 10));

    let (b, clock) = test_breaker(1);
    mark(&b, 0, 5);
    mark(&b, 5, 0);
    let h = b.snapshot().history;
    assert_eq!((h.accepts, h.total), (5, 10));
    clock.advance(INTERVAL * 10);
    let h = b.snapshot().history;
    assert_eq!((h.accepts, h.total), (0, 0));
}

#[test]
fn registry_hands_out_one_breaker_per_name() {
    let clock = ManualClock::new();
    let template = Breaker::builder()
        .k(5.0)
        .window(INTERVAL * 10)
        .buckets(10)
        .seed(1);
    let registry = Registry::with_clock(template, clock.clone()).unwrap();
    assert_eq!(registry.get("a").call(|| Ok::<_, String>(1)), Ok(1));
    assert_eq!(
        registry.get("a").call(|| fail(1)),
        Err(BreakerError::Inner("failure 1".into()))
    );

    // 10 000 acceptable errors keep "acceptable" healthy.
    let ok = registry.get("acceptable");
    for i in 0..10_000 {
        let _ = ok.call_with(|| fail(i), |_| true);
    }
    assert!(ok.call(|| Ok::<_, String>(())).is_ok());

    // 10 000 unacceptable errors open "broken"; every call said either the error or no.
    let broken = registry.get("broken");
    for i in 0..10_000 {
        let r = broken.call(|| fail(i));
        assert!(matches!(
            r,
            Err(BreakerError::Inner(_) | BreakerError::Rejected(_))
        ));
    }
    assert!(
        registry
            .get("broken")
            .call(|| fail(0))
            .unwrap_err()
            .is_rejected()
    );
    let mut names = registry.names();
    names.sort();
    assert_eq!(names, ["a", "acceptable", "broken"]);
}

#[test]
fn disabled_breakers_let_every_error_through() {
    let registry = Registry::with_clock(Breaker::builder().seed(1), ManualClock::new()).unwrap();
    registry.disable("nop");
    let nop = registry.get("nop");
    for i in 0..10_000 {
        assert_eq!(
            nop.call(|| fail(i)),
            Err(BreakerError::Inner(format!("failure {i}")))
        );
    }
    assert_eq!(
        nop.snapshot().history.total,
        0,
        "a disabled breaker records nothing"
    );

    let nop = Breaker::nop();
    let r = nop.call_with_fallback(|| fail(3), |_| false, |_| panic!("fallback must not run"));
    assert_eq!(r, Err("failure 3".to_string()));
}

#[test]
fn forced_modes_and_reset() {
    let (b, clock) = test_breaker(1);
    b.set_mode(Mode::ForcedOpen);
    assert!(b.allow().is_err());
    assert_eq!(
        b.snapshot().history.total,
        0,
        "forced rejections are not recorded"
    );
    b.set_mode(Mode::ForcedClosed);
    mark(&b, 0, 10_000);
    assert!(
        b.allow().is_ok(),
        "forced closed admits whatever the history"
    );
    b.set_mode(Mode::Adaptive);
    clock.advance(INTERVAL);
    assert!(b.snapshot().drop_ratio > 0.9);
    b.reset();
    assert_eq!(b.snapshot().history.total, 0);
    assert!(b.allow().is_ok());
}

#[test]
fn shadow_mode_counts_but_never_rejects() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .k(5.0)
        .window(INTERVAL * 10)
        .buckets(10)
        .seed(1)
        .shadow(true)
        .build_with_clock(clock.clone())
        .unwrap();
    mark(&b, 0, 10_000);
    clock.advance(INTERVAL);
    for _ in 0..100 {
        b.allow().unwrap().failure();
    }
    let s = b.snapshot();
    assert_eq!(s.mode, Mode::Shadow);
    assert!(s.shadow_rejections > 80, "{}", s.shadow_rejections);
}

/// A timeout *around* the call cancels it: keel records nothing (go-zero's sqlx counts a
/// cancelled context as acceptable; keel neither counts it for nor against the dependency).
/// The breaker's own deadline is in tests/cancellation.rs.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_cancelled_async_call_records_nothing() {
    let (b, _) = test_breaker(1);
    let pending = std::future::pending::<Result<(), String>>();
    let timed_out = tokio::time::timeout(Duration::from_millis(1), b.call_async(pending)).await;
    assert!(timed_out.is_err());
    let s = b.snapshot();
    assert_eq!((s.history.accepts, s.history.total, s.cancelled), (0, 0, 1));
    assert_eq!(b.call_async(async { Ok::<_, String>(5) }).await, Ok(5));
}
