//! The documented bounds of the breaker's configuration: at and below each bound the breaker
//! builds and decides (quickly: a decision folds at most `MAX_BUCKETS` buckets), above it
//! `build` returns the `ConfigError` naming the bound.

use std::time::Duration;

use keel_breaker::{Breaker, Builder, ConfigError};
use keel_timex::ManualClock;

fn exercise(builder: Builder) -> Result<(), ConfigError> {
    let clock = ManualClock::new();
    let breaker = builder.seed(7).build_with_clock(clock.clone())?;
    for round in 0..3u32 {
        for i in 0..20 {
            if let Ok(permit) = breaker.allow() {
                if i % 3 == 0 {
                    permit.success();
                } else {
                    permit.failure();
                }
            }
        }
        clock.advance(Duration::from_nanos(1) * round);
        clock.advance(Duration::from_millis(300));
    }
    clock.advance(Duration::MAX);
    let _ = breaker.allow();
    let _ = breaker.snapshot();
    Ok(())
}

#[test]
fn bucket_counts_above_the_maximum_are_refused_with_the_bound() {
    assert_eq!(Builder::MAX_BUCKETS, 4096);
    for buckets in [Builder::MAX_BUCKETS + 1, 1 << 20, u32::MAX - 1, u32::MAX] {
        let err = Breaker::builder()
            .window(Duration::MAX)
            .buckets(buckets)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::TooManyBuckets {
                buckets,
                max: Builder::MAX_BUCKETS
            }
        );
        assert!(err.to_string().contains("4096"), "{err}");
    }
}

#[test]
fn the_most_buckets_build_and_decide() {
    // 1 ns buckets: every decision starts a new bucket and folds all the others.
    let builder = Breaker::builder()
        .buckets(Builder::MAX_BUCKETS)
        .window(Duration::from_nanos(u64::from(Builder::MAX_BUCKETS)));
    exercise(builder).unwrap();
    exercise(Breaker::builder().buckets(Builder::MAX_BUCKETS)).unwrap();
}

#[test]
fn windows_up_to_584_years_build_and_longer_ones_are_refused() {
    assert_eq!(Builder::MAX_WINDOW, Duration::from_nanos(u64::MAX));
    exercise(Breaker::builder().window(Builder::MAX_WINDOW)).unwrap();
    exercise(Breaker::builder().window(Builder::MAX_WINDOW).buckets(1)).unwrap();
    for window in [
        Builder::MAX_WINDOW + Duration::from_nanos(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let err = Breaker::builder().window(window).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::WindowTooLong {
                window,
                max: Builder::MAX_WINDOW
            }
        );
        assert!(err.to_string().contains("584"), "{err}");
    }
    // Too short for its buckets is still its own error.
    assert!(matches!(
        Breaker::builder()
            .window(Duration::from_nanos(39))
            .buckets(40)
            .build(),
        Err(ConfigError::WindowTooShort { .. })
    ));
}

#[test]
fn k_must_be_finite_and_at_least_1_1() {
    for k in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0999,
        0.0,
        -1.0,
    ] {
        let err = Breaker::builder().k(k).build().unwrap_err();
        assert!(
            matches!(err, ConfigError::KOutOfRange { .. }),
            "{k}: {err:?}"
        );
    }
    for k in [1.1, 1.5, 1e300, f64::MAX] {
        exercise(Breaker::builder().k(k)).unwrap();
    }
}

#[test]
fn durations_from_the_whole_range_work() {
    for d in [
        Duration::from_nanos(1),
        Duration::from_secs(1),
        Duration::from_nanos(u64::MAX),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        exercise(Breaker::builder().force_pass_interval(d)).unwrap();
        exercise(Breaker::builder().live_refresh(d)).unwrap();
        exercise(Breaker::builder().slow_call(d)).unwrap();
        exercise(Breaker::builder().protection(u32::MAX)).unwrap();
    }
    exercise(Breaker::builder().live_refresh(Duration::ZERO)).unwrap();
    assert_eq!(
        Breaker::builder()
            .force_pass_interval(Duration::ZERO)
            .build()
            .unwrap_err(),
        ConfigError::ZeroForcePass
    );
}

/// A forced pass once the interval has passed: with an interval of 584 years or more it
/// never comes, and the breaker keeps dropping. The interval is compared in nanoseconds, so
/// 2^64 ns + 1 ms must not wrap to 1 ms (which would force every request through here).
#[test]
fn a_force_pass_interval_beyond_584_years_never_forces_a_pass() {
    let wraps_to_1ms = Duration::from_nanos(u64::MAX) + Duration::from_nanos(1_000_001);
    for interval in [wraps_to_1ms, Duration::MAX] {
        let clock = ManualClock::new();
        let breaker = Breaker::builder()
            .seed(3)
            .force_pass_interval(interval)
            .build_with_clock(clock.clone())
            .unwrap();
        for _ in 0..200 {
            if let Ok(p) = breaker.allow() {
                p.failure();
            }
        }
        let rejected = (0..200)
            .filter(|_| {
                clock.advance(Duration::from_millis(10));
                breaker.allow().is_err()
            })
            .count();
        assert!(
            rejected > 100,
            "{interval:?}: only {rejected} of 200 rejected"
        );
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_timeout_of_any_length_ends_or_lets_the_call_finish() {
    for timeout in [
        Duration::from_nanos(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let breaker = Breaker::builder().timeout(timeout).build().unwrap();
        let done = breaker
            .call_async(async { Ok::<_, std::io::Error>(1) })
            .await;
        assert_eq!(done.unwrap(), 1, "{timeout:?}");
    }
}
