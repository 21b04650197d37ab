//! The documented bounds of the shedder's configuration: at and below each bound the
//! shedder builds and decides under overload, above it `build` returns the `ConfigError`
//! naming the bound.

use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::{Builder, ConfigError, Shedder};
use keel_timex::ManualClock;

/// Builds on a manual clock with the CPU above the threshold, runs requests across a few
/// buckets and a jump to the end of the clock.
fn exercise(builder: Builder) -> Result<(), ConfigError> {
    let clock = ManualClock::new();
    let shedder = builder
        .cpu_source(ManualCpu::new(1000))
        .build_with_clock(clock.clone())?;
    for _ in 0..3 {
        let guards: Vec<_> = (0..20).filter_map(|_| shedder.allow().ok()).collect();
        clock.advance(Duration::from_millis(150));
        for g in guards {
            g.pass();
        }
    }
    clock.advance(Duration::MAX);
    if let Ok(g) = shedder.allow() {
        g.fail();
    }
    let _ = shedder.snapshot();
    Ok(())
}

#[test]
fn bucket_counts_above_the_maximum_are_refused_with_the_bound() {
    assert_eq!(Builder::MAX_BUCKETS, 4096);
    for buckets in [Builder::MAX_BUCKETS + 1, 1 << 20, u32::MAX - 1, u32::MAX] {
        let err = Shedder::builder()
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
    let tiny = Shedder::builder()
        .buckets(Builder::MAX_BUCKETS)
        .window(Duration::from_nanos(u64::from(Builder::MAX_BUCKETS)));
    exercise(tiny).unwrap();
    exercise(Shedder::builder().buckets(Builder::MAX_BUCKETS)).unwrap();
}

#[test]
fn windows_up_to_584_years_build_and_longer_ones_are_refused() {
    assert_eq!(Builder::MAX_WINDOW, Duration::from_nanos(u64::MAX));
    exercise(Shedder::builder().window(Builder::MAX_WINDOW)).unwrap();
    exercise(Shedder::builder().window(Builder::MAX_WINDOW).buckets(1)).unwrap();
    for window in [
        Builder::MAX_WINDOW + Duration::from_nanos(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let err = Shedder::builder().window(window).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::WindowTooLong {
                window,
                max: Builder::MAX_WINDOW
            }
        );
        assert!(err.to_string().contains("584"), "{err}");
    }
}

#[test]
fn other_knobs_from_the_whole_range_work_or_fail_typed() {
    for d in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_nanos(u64::MAX),
        Duration::MAX,
    ] {
        exercise(Shedder::builder().cool_off(d)).unwrap();
        exercise(Shedder::builder().in_flight_average_interval(d)).unwrap();
    }
    for period in [1, 2, 8, u32::MAX - 1, u32::MAX] {
        exercise(Shedder::builder().latency_sample_period(period)).unwrap();
    }
    assert_eq!(
        exercise(Shedder::builder().latency_sample_period(0)),
        Err(ConfigError::ZeroSamplePeriod)
    );
    for threshold in [1, 999] {
        exercise(Shedder::builder().cpu_threshold(threshold)).unwrap();
    }
    for threshold in [0, 1000, u32::MAX] {
        assert_eq!(
            exercise(Shedder::builder().cpu_threshold(threshold)),
            Err(ConfigError::ThresholdOutOfRange { threshold })
        );
    }
}
