//! What a call that does not end normally counts as: a cancellation records nothing (unless
//! slow, or `OnCancel::Failure`), a panic is a failure, the breaker's own deadline ends a
//! stalled call as a failure, a slow call is a failure. Sync permits, async calls and the
//! tower layer alike; time is a `ManualClock` or tokio's paused clock throughout.
#![cfg(all(feature = "tokio", feature = "tower"))]

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keel_breaker::tower::BreakerLayer;
use keel_breaker::{Breaker, BreakerError, ConfigError, OnCancel, TimedOut};
use keel_timex::{ManualClock, TokioClock};
use tower::{Layer, Service, ServiceExt, service_fn};

fn manual(builder: keel_breaker::Builder) -> (Breaker<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let breaker = builder.seed(7).build_with_clock(clock.clone()).unwrap();
    (breaker, clock)
}

fn totals<C: keel_timex::Clock>(b: &Breaker<C>) -> (u64, u64, u64) {
    let s = b.snapshot();
    (s.history.accepts, s.history.total, s.cancelled)
}

async fn panics(what: &'static str) -> Result<(), String> {
    panic!("{what}")
}

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_dropped_permit_is_a_cancellation_not_a_failure() {
    let (b, _) = manual(Breaker::builder());
    drop(b.allow().unwrap());
    drop(b.allow_owned().unwrap());
    assert_eq!(totals(&b), (0, 0, 2));
    assert!(b.recent_failures().is_empty());
    b.allow().unwrap().success();
    assert_eq!(totals(&b), (1, 1, 2));
}

#[test]
fn on_cancel_failure_counts_a_cancellation_as_a_failure() {
    let (b, _) = manual(Breaker::builder().on_cancel(OnCancel::Failure));
    drop(b.allow().unwrap());
    drop(b.allow_owned().unwrap());
    assert_eq!(totals(&b), (0, 2, 2));
    assert_eq!(b.recent_failures()[0].reason, "cancelled by the caller");
}

#[test]
fn on_cancel_success_counts_a_quick_cancellation_as_a_success() {
    let slow = Duration::from_millis(100);
    let (b, clock) = manual(
        Breaker::builder()
            .on_cancel(OnCancel::Success)
            .slow_call(slow),
    );
    drop(b.allow().unwrap());
    assert_eq!(totals(&b), (1, 1, 1));
    let p = b.allow_owned().unwrap();
    clock.advance(slow * 2);
    drop(p); // slow, then cancelled: still a failure
    assert_eq!(totals(&b), (1, 2, 2));
}

#[test]
fn a_panic_while_holding_a_permit_is_a_failure() {
    let (b, _) = manual(Breaker::builder());
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _permit = b.allow().unwrap();
        panic!("query code panicked");
    }));
    assert!(r.is_err());
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.call(|| -> Result<(), String> { panic!("inside call") })
    }));
    assert!(r.is_err());
    assert_eq!(totals(&b), (0, 2, 0));
    assert_eq!(b.recent_failures()[0].reason, "the call panicked");
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_async_call_is_a_failure_on_tokio() {
    let (b, _) = manual(Breaker::builder());
    let b2 = b.clone();
    let joined = tokio::spawn(async move { b2.call_async(panics("in the query")).await }).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(totals(&b), (0, 1, 0));
}

/// An executor may catch a panic and drop the future afterwards, outside the panic: the
/// call still counts as a failure, not as a cancellation.
#[test]
fn a_panicking_async_call_is_a_failure_whatever_the_executor() {
    let (b, _) = manual(Breaker::builder());
    let mut fut = Box::pin(b.call_async(panics("in the query")));
    let r = catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut())));
    assert!(r.is_err());
    drop(fut);

    let mut svc = BreakerLayer::new(b.clone()).layer(service_fn(|()| panics("in the service")));
    let mut fut = Box::pin(svc.call(()));
    let r = catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut())));
    assert!(r.is_err());
    drop(fut);
    assert_eq!(totals(&b), (0, 2, 0));
}

#[test]
fn a_call_slower_than_the_threshold_is_a_failure() {
    let slow = Duration::from_millis(100);
    let (b, clock) = manual(Breaker::builder().slow_call(slow));
    assert_eq!(b.slow_call(), Some(slow));
    let step = |permit: keel_breaker::Permit<'_, ManualClock>, took: u64, ok: bool| {
        clock.advance(Duration::from_millis(took));
        if ok {
            permit.success()
        } else {
            permit.failure()
        }
    };
    step(b.allow().unwrap(), 50, true); // fast success
    assert_eq!(totals(&b), (1, 1, 0));
    step(b.allow().unwrap(), 150, true); // slow success: a failure
    assert_eq!(totals(&b), (1, 2, 0));
    assert!(
        b.recent_failures()[0]
            .reason
            .starts_with("slow call: took 150ms")
    );
    step(b.allow().unwrap(), 50, false); // fast failure stays a failure
    assert_eq!(totals(&b), (1, 3, 0));

    // Cancelled quickly: nothing. Cancelled after the threshold: a failure.
    let p = b.allow().unwrap();
    clock.advance(Duration::from_millis(50));
    drop(p);
    assert_eq!(totals(&b), (1, 3, 1));
    let p = b.allow_owned().unwrap();
    clock.advance(Duration::from_millis(101));
    drop(p);
    assert_eq!(totals(&b), (1, 4, 2));
    assert!(
        b.recent_failures()[0]
            .reason
            .starts_with("slow call: cancelled after 101ms")
    );

    // The sync call measures too.
    let took = b.call(|| {
        clock.advance(Duration::from_millis(200));
        Ok::<_, String>(1)
    });
    assert_eq!(took, Ok(1), "a slow call still returns its value");
    assert_eq!(totals(&b), (1, 5, 2));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_breakers_deadline_ends_a_stalled_call_as_a_failure() {
    let timeout = Duration::from_millis(250);
    let b = Breaker::builder()
        .timeout(timeout)
        .build_with_clock(TokioClock::new())
        .unwrap();
    assert_eq!(b.timeout(), Some(timeout));
    let stalled = b.call_async(std::future::pending::<Result<(), String>>());
    assert_eq!(
        stalled.await,
        Err(BreakerError::TimedOut(TimedOut::new(timeout)))
    );
    assert_eq!(totals(&b), (0, 1, 0));
    assert_eq!(b.recent_failures()[0].reason, "timed out after 250ms");

    // A call that answers before the deadline is a success.
    let quick = b.call_async(async {
        tokio::time::sleep(Duration::from_millis(249)).await;
        Ok::<_, String>(3)
    });
    assert_eq!(quick.await, Ok(3));
    assert_eq!(totals(&b), (1, 2, 0));

    // With a fallback, the fallback answers the timeout and is told why.
    let answered = b
        .call_async_with_fallback(
            std::future::pending::<Result<u32, String>>(),
            |_| false,
            |why| Ok(if why.is_timed_out() { 9 } else { 0 }),
        )
        .await;
    assert_eq!(answered, Ok(9));
    assert_eq!(totals(&b), (1, 3, 0));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_tower_layer_uses_the_breakers_deadline() {
    let timeout = Duration::from_secs(2);
    let b = Breaker::builder()
        .timeout(timeout)
        .build_with_clock(TokioClock::new())
        .unwrap();
    let svc = BreakerLayer::new(b.clone()).layer(service_fn(|stall: bool| async move {
        if stall {
            std::future::pending::<()>().await;
        }
        Ok::<_, String>("row")
    }));
    assert_eq!(svc.clone().oneshot(false).await, Ok("row"));
    let err = svc.clone().oneshot(true).await.unwrap_err();
    assert_eq!(err, BreakerError::TimedOut(TimedOut::new(timeout)));
    assert_eq!((err.http_status(), err.grpc_code()), (Some(504), Some(4)));
    assert_eq!(totals(&b), (1, 2, 0));
}

/// The finding behind the cancellation policy: a storm of cancelled calls (clients gone,
/// siblings failed) against a healthy dependency must leave the breaker closed.
#[tokio::test(flavor = "current_thread")]
async fn a_storm_of_cancellations_never_opens_the_breaker() {
    let (b, clock) = manual(Breaker::builder());
    let svc = BreakerLayer::new(b.clone()).layer(service_fn(|()| async {
        tokio::task::yield_now().await;
        Ok::<_, String>(())
    }));
    for round in 0..400 {
        // Per round: one call completes, fifty are cancelled mid-flight in three ways.
        assert_eq!(b.call_async(async { Ok::<_, String>(()) }).await, Ok(()));
        for _ in 0..10 {
            drop(b.allow().unwrap());
            let mut pending = pin!(b.call_async(std::future::pending::<Result<(), String>>()));
            assert!(poll_once(pending.as_mut()).is_pending());
            let mut response = Box::pin(svc.clone().oneshot(()));
            assert!(poll_once(response.as_mut()).is_pending());
            drop(response);
            // A `select!` that another branch wins after the call started.
            tokio::select! {
                biased;
                _ = b.call_async(std::future::pending::<Result<(), String>>()) => unreachable!(),
                () = std::future::ready(()) => {}
            }
            let _ = tokio::time::timeout(
                Duration::ZERO,
                b.call_async(std::future::pending::<Result<(), String>>()),
            )
            .await;
        }
        if round % 40 == 0 {
            clock.advance(Duration::from_millis(250)); // spread over the window's buckets
        }
    }
    let s = b.snapshot();
    assert_eq!(s.cancelled, 400 * 10 * 5);
    assert_eq!((s.history.accepts, s.history.total), (400, 400));
    assert_eq!(s.drop_ratio, 0.0);
    for _ in 0..200 {
        assert!(b.allow().is_ok(), "a healthy dependency is never shed");
    }
}

/// A stalled dependency opens the breaker through its deadline, although every caller
/// also gives up on its own (cancels) sooner than that: those cancellations are ignored,
/// the deadline's expiries are not.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_stalled_dependency_opens_the_breaker_and_it_recovers() {
    let b = Breaker::builder()
        .window(Duration::from_secs(2))
        .buckets(20)
        .timeout(Duration::from_millis(200))
        .seed(3)
        .build_with_clock(TokioClock::new())
        .unwrap();
    let query = |stalled: bool| async move {
        if stalled {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, String>(())
    };
    // Healthy: 10 calls per 100 ms for 2 s.
    for _ in 0..20 {
        for _ in 0..10 {
            assert_eq!(b.call_async(query(false)).await, Ok(()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stalled: every 100 ms, 10 callers; half give up after 50 ms (cancelled), half wait
    // for the breaker's deadline. Count the rounds until most calls are rejected.
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..10 {
            let b = b.clone();
            calls.spawn(async move {
                let call = b.call_async(query(true));
                if i % 2 == 0 {
                    tokio::time::timeout(Duration::from_millis(50), call)
                        .await
                        .ok()
                } else {
                    Some(call.await)
                }
            });
        }
        let results = calls.join_all().await;
        let rejected = results
            .iter()
            .filter(|r| matches!(r, Some(Err(BreakerError::Rejected(_)))))
            .count();
        if rejected >= 8 {
            break;
        }
        assert!(
            rounds < 40,
            "not open after {rounds} rounds of a stalled dependency"
        );
    }
    // The window is 2 s: the healthy history must age out first. Documented: about a
    // window (2.0-2.5 s here, 10 rounds of 200 ms) before most calls are shed.
    println!("open after {rounds} rounds of 200 ms");
    assert!(rounds <= 15, "opened after {rounds} rounds");
    assert!(b.snapshot().cancelled > 0);

    // Recovery: the dependency answers again; within two windows most calls succeed.
    let mut healed_after = None;
    for round in 0..40 {
        let mut ok = 0;
        for _ in 0..10 {
            ok += usize::from(b.call_async(query(false)).await.is_ok());
        }
        if ok >= 9 {
            healed_after = Some(round);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let healed_after = healed_after.expect("recovered within 4 s");
    println!("healed after {healed_after} rounds of 100 ms");
}

#[test]
fn zero_thresholds_are_refused() {
    let e = Breaker::builder()
        .slow_call(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e, ConfigError::ZeroSlowCall);
    let e = Breaker::builder()
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e, ConfigError::ZeroTimeout);
    assert!(
        Breaker::builder()
            .timeout(Duration::MAX)
            .slow_call(Duration::MAX)
            .build()
            .is_ok()
    );
}
