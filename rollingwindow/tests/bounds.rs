//! The documented bounds of a window's configuration, and time at the far end of the clock:
//! `size` up to `MAX_SIZE` is accepted and works, beyond it is `TooManyBuckets`; a 1 ns
//! window whose clock reaches `Nanos::MAX` keeps counting instead of overflowing its stamps.

use std::time::Duration;

use keel_rollingwindow::{ConfigError, MAX_SIZE, RollingWindow, SumCount};
use keel_timex::{Clock, ManualClock, Nanos};

type Window = RollingWindow<SumCount<i64>, ManualClock>;

fn build(size: usize, interval: Duration) -> Result<(ManualClock, Window), ConfigError> {
    let clock = ManualClock::new();
    let w = RollingWindow::builder(size, interval).build_with_clock(clock.clone())?;
    Ok((clock, w))
}

#[test]
fn sizes_above_the_maximum_are_refused_with_the_bound() {
    for size in [MAX_SIZE + 1, MAX_SIZE * 2, usize::MAX - 1, usize::MAX] {
        let err = build(size, Duration::from_millis(1)).unwrap_err();
        assert_eq!(
            err,
            ConfigError::TooManyBuckets {
                size,
                max: MAX_SIZE
            }
        );
        assert!(err.to_string().contains("65536"), "{err}");
    }
    // The size is checked before the span, so a huge size is not reported as an overflow.
    assert!(matches!(
        build(usize::MAX, Duration::MAX),
        Err(ConfigError::TooManyBuckets { .. })
    ));
    assert_eq!(MAX_SIZE, 65_536);
}

#[test]
fn the_largest_window_is_built_and_counts() {
    let (clock, w) = build(MAX_SIZE, Duration::from_nanos(1)).unwrap();
    w.add(2);
    clock.advance(Duration::from_nanos(MAX_SIZE as u64 - 1));
    w.add(3);
    assert_eq!(w.fold(0, |s, b| s + b.sum), 5);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(
        w.fold(0, |s, b| s + b.sum),
        3,
        "the first slice left the window"
    );
}

#[test]
fn a_span_of_exactly_u64_max_nanoseconds_is_accepted_and_one_more_is_not() {
    // 3 × 6148914691236517205 = u64::MAX.
    let interval = Duration::from_nanos(u64::MAX / 3);
    let (clock, w) = build(3, interval).unwrap();
    assert_eq!(w.span(), Duration::from_nanos(u64::MAX));
    w.add(1);
    clock.advance(Duration::MAX);
    w.add(1);
    assert_eq!(w.fold(0, |s, b| s + b.sum), 1);
    let over = Duration::from_nanos(u64::MAX / 3 + 1);
    assert!(matches!(
        build(3, over),
        Err(ConfigError::SpanOverflow { size: 3, .. })
    ));
}

#[test]
fn a_one_nanosecond_window_keeps_counting_at_the_end_of_the_clock() {
    for size in [1, 2, 40] {
        let (clock, w) = build(size, Duration::from_nanos(1)).unwrap();
        w.add(1);
        clock.advance_to(Nanos::from_nanos(u64::MAX - 3));
        w.add(10);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Nanos::MAX);
        // The window's time stops at its last slice: these adds land in one bucket.
        w.add(100);
        w.add(1000);
        let slice = w.slice_at(clock.now());
        assert_eq!(slice, u64::MAX - 2);
        // The slice before it (10) is still in a window of 2 or more buckets.
        let before = if size == 1 { 0 } else { 10 };
        assert_eq!(w.current_at(clock.now()).sum, 1100, "size {size}");
        assert_eq!(w.fold(0, |s, b| s + b.sum), 1100 + before, "size {size}");
        assert_eq!(w.slice_bucket(u64::MAX).sum, 0);
        assert_eq!(w.slice_bucket(u64::MAX - 1).sum, 0);
        assert_eq!(w.slice_bucket(u64::MAX - 2).sum, 1100);
        let folded = w.fold_before_slice(u64::MAX, 0, |s, b| s + b.sum);
        assert_eq!(folded, before, "size {size}");
        w.clear();
        assert_eq!(w.fold(0, |s, b| s + b.sum), 0);
        // Time no longer moves, so the cleared last slice stays cleared.
        w.add(1);
        assert_eq!(w.fold(0, |s, b| s + b.sum), 0);
    }
}

#[test]
fn bucket_intervals_from_the_whole_range_build_or_fail_typed() {
    for nanos in [1u64, 2, 3, 1 << 32, 1 << 62, u64::MAX / 40, u64::MAX] {
        let interval = Duration::from_nanos(nanos);
        match build(40, interval) {
            Ok((clock, w)) => {
                w.add(1);
                clock.advance(Duration::MAX);
                w.add(1);
                let seen = w.fold(0, |s, b| s + b.sum);
                assert!((1..=2).contains(&seen), "{nanos}: {seen}");
            }
            Err(e) => assert!(
                matches!(e, ConfigError::SpanOverflow { size: 40, .. }),
                "{nanos}: {e:?}"
            ),
        }
    }
}
