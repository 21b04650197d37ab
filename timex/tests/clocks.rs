//! Public behaviour of the clocks.

use std::time::Duration;

use keel_timex::{Clock, CoarseClock, ManualClock, MonotonicClock, Nanos};

#[test]
fn manual_clock_clones_share_time_across_threads() {
    let clock = ManualClock::new();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = clock.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    c.advance(Duration::from_nanos(1));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(clock.now(), Nanos::from_nanos(4000));
}

#[test]
fn manual_clock_never_goes_back_and_saturates() {
    let clock = ManualClock::starting_at(Nanos::from_nanos(100));
    assert_eq!(
        clock.advance_to(Nanos::from_nanos(50)),
        Nanos::from_nanos(100)
    );
    assert_eq!(
        clock.advance_to(Nanos::from_nanos(150)),
        Nanos::from_nanos(150)
    );
    assert_eq!(clock.advance(Duration::MAX), Nanos::MAX);
    assert_eq!(clock.advance(Duration::from_secs(1)), Nanos::MAX);
    assert_eq!(clock.now(), Nanos::MAX);
}

/// Whether `cond` holds within 10 s, checked every millisecond.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    (0..10_000).any(|_| {
        std::thread::sleep(Duration::from_millis(1));
        cond()
    })
}

#[test]
fn real_clocks_share_an_origin_and_move_forward() {
    let precise = MonotonicClock::new();
    let coarse = CoarseClock::new();
    let p0 = precise.now();
    let c0 = coarse.now();
    // Same origin: the coarse reading (taken after) is never ahead of the precise one.
    // How far it lags is scheduling, so it is shown by the `clocks` example, not asserted.
    assert!(c0 <= precise.now(), "p0={p0:?} c0={c0:?}");
    // Poll rather than sleep a fixed time: the upkeep may be delayed on a busy machine.
    assert!(eventually(|| precise.now() > p0 && coarse.now() > c0));
}

#[test]
fn coarse_clock_is_monotonic_under_concurrent_readers() {
    let clock = CoarseClock::new();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let c = clock.clone();
            std::thread::spawn(move || {
                let mut last = c.now();
                for _ in 0..200_000 {
                    let now = c.now();
                    assert!(now >= last);
                    last = now;
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn tokio_clock_follows_paused_time() {
    use keel_timex::TokioClock;
    let clock = TokioClock::new();
    let start = clock.now();
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(clock.now() - start, Duration::from_millis(1500));
    // Paused and not advanced: stands still.
    let t = clock.now();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(clock.now(), t);
}
