//! go-zero's rolling-window scenarios (`collection/rollingwindow_test.go`), on a manual clock
//! instead of sleeps, plus the edges keel defines itself.

use std::time::Duration;

use keel_rollingwindow::{ConfigError, RollingWindow, SumCount};
use keel_timex::{Clock, ManualClock, Nanos};

type Window = RollingWindow<SumCount<i64>, ManualClock>;

fn window(size: usize, interval_ms: u64, ignore_current: bool) -> (Window, ManualClock) {
    let clock = ManualClock::new();
    let w = RollingWindow::builder(size, Duration::from_millis(interval_ms))
        .ignore_current_bucket(ignore_current)
        .build_with_clock(clock.clone())
        .expect("valid configuration");
    (w, clock)
}

fn sums(w: &Window) -> Vec<i64> {
    w.snapshots().iter().map(|b| b.sum).collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// TestNewRollingWindow: size 0 is refused (go-zero panics; keel returns an error).
#[test]
fn new_window_validates_size() {
    assert!(RollingWindow::<SumCount<i64>>::new(10, ms(100)).is_ok());
    assert_eq!(
        RollingWindow::<SumCount<i64>>::new(0, ms(100)).unwrap_err(),
        ConfigError::ZeroSize
    );
}

#[test]
fn zero_interval_and_overflowing_span_are_refused() {
    let build = |size, interval| {
        RollingWindow::<SumCount<i64>, _>::builder(size, interval)
            .build_with_clock(ManualClock::new())
    };
    assert_eq!(
        build(3, Duration::ZERO).unwrap_err(),
        ConfigError::ZeroInterval
    );
    assert!(matches!(
        build(2, Duration::from_nanos(u64::MAX)).unwrap_err(),
        ConfigError::SpanOverflow { size: 2, .. }
    ));
    assert!(matches!(
        build(1, Duration::MAX).unwrap_err(),
        ConfigError::SpanOverflow { .. }
    ));
    assert!(build(1, Duration::from_nanos(u64::MAX)).is_ok());
    let msg = build(0, ms(1)).unwrap_err().to_string();
    assert!(msg.contains("at least 1 bucket"), "{msg}");
}

/// TestRollingWindowAdd.
#[test]
fn add_fills_buckets_oldest_first() {
    let (w, clock) = window(3, 50, false);
    assert_eq!(sums(&w), [0, 0, 0]);
    w.add(1);
    assert_eq!(sums(&w), [0, 0, 1]);
    clock.advance(ms(50));
    w.add(2);
    w.add(3);
    assert_eq!(sums(&w), [0, 1, 5]);
    clock.advance(ms(50));
    w.add(4);
    w.add(5);
    w.add(6);
    assert_eq!(sums(&w), [1, 5, 15]);
    clock.advance(ms(50));
    w.add(7);
    assert_eq!(sums(&w), [5, 15, 7]);
}

/// TestRollingWindowReset: stale buckets are skipped on read, and a long gap reads empty.
#[test]
fn stale_buckets_are_skipped_on_read() {
    let (w, clock) = window(3, 50, true);
    w.add(1);
    clock.advance(ms(50));
    assert_eq!(sums(&w), [0, 1]);
    clock.advance(ms(50));
    assert_eq!(sums(&w), [1]);
    clock.advance(ms(50));
    assert_eq!(sums(&w), Vec::<i64>::new());

    w.add(1);
    clock.advance(ms(500));
    assert_eq!(sums(&w), Vec::<i64>::new());
}

/// TestRollingWindowReduce, without and with ignore-current.
#[test]
fn reduce_totals_with_and_without_the_current_bucket() {
    for (ignore, want) in [(false, 10), (true, 4)] {
        let (w, clock) = window(4, 50, ignore);
        for x in 0..4 {
            for i in 0..=x {
                w.add(i);
            }
            if x < 3 {
                clock.advance(ms(50));
            }
        }
        let mut total = 0;
        w.reduce(|b| total += b.sum);
        assert_eq!(total, want, "ignore_current_bucket = {ignore}");
    }
}

/// TestRollingWindowBucketTimeBoundary: buckets change at grid lines anchored at creation,
/// not one interval after the previous add.
#[test]
fn buckets_follow_the_grid_anchored_at_creation() {
    let (w, clock) = window(3, 30, false);
    w.add(1);
    assert_eq!(sums(&w), [0, 0, 1]);
    clock.advance(ms(45));
    w.add(2);
    w.add(3);
    assert_eq!(sums(&w), [0, 1, 5]);
    clock.advance(ms(20)); // 65 ms: past the 60 ms grid line although only 20 ms passed
    w.add(4);
    w.add(5);
    w.add(6);
    assert_eq!(sums(&w), [1, 5, 15]);
    clock.advance(ms(100));
    w.add(7);
    w.add(8);
    w.add(9);
    assert_eq!(sums(&w), [0, 0, 24]);
}

#[test]
fn grid_is_anchored_at_the_clock_reading_at_construction() {
    let clock = ManualClock::starting_at(Nanos::from_nanos(1_000_000_007));
    let w = RollingWindow::<SumCount<i64>, _>::builder(2, ms(10))
        .build_with_clock(clock.clone())
        .unwrap();
    w.add(1);
    clock.advance(Duration::from_nanos(9_999_999));
    w.add(2); // still the first slice
    assert_eq!(sums(&w), [0, 3]);
    clock.advance(Duration::from_nanos(1));
    w.add(4);
    assert_eq!(sums(&w), [3, 4]);
}

#[test]
fn counts_and_mean_come_with_the_sums() {
    let (w, clock) = window(2, 100, false);
    w.add(10);
    w.add(20);
    clock.advance(ms(100));
    w.add(5);
    let buckets = w.snapshots();
    assert_eq!(buckets[0].count, 2);
    assert_eq!(buckets[0].mean(), Some(15.0));
    assert_eq!(buckets[1].count, 1);
    let total = w.fold((0, 0), |(s, n), b| (s + b.sum, n + b.count));
    assert_eq!(total, (35, 3));
}

#[test]
fn an_idle_gap_of_any_length_is_handled_in_one_step() {
    let (w, clock) = window(4, 1, false);
    w.add(1);
    // 10^15 intervals later: a read is O(size) and an add recycles one slot.
    clock.advance(Duration::from_secs(1_000_000_000_000));
    assert_eq!(sums(&w), Vec::<i64>::new());
    w.add(2);
    assert_eq!(sums(&w), [0, 0, 0, 2]);
}

#[test]
fn add_at_before_construction_counts_in_the_first_slice() {
    let clock = ManualClock::starting_at(Nanos::from_nanos(500));
    let w = RollingWindow::<SumCount<i64>, _>::builder(2, Duration::from_nanos(100))
        .build_with_clock(clock.clone())
        .unwrap();
    w.add_at(Nanos::from_nanos(3), 7);
    assert_eq!(sums(&w), [0, 7]);
}

#[test]
fn a_read_behind_the_newest_add_reads_as_of_that_add() {
    let (w, clock) = window(3, 10, false);
    let t0 = clock.now();
    clock.advance(ms(25));
    w.add(5); // slice 2
    // A reader whose clock reading is from slice 0 sees the window as of slice 2.
    let mut seen = Vec::new();
    w.reduce_at(t0, |b| seen.push(b.sum));
    assert_eq!(seen, [0, 0, 5]);
}

#[test]
fn an_add_a_whole_window_late_is_dropped_not_misfiled() {
    let (w, clock) = window(2, 10, false);
    let t0 = clock.now();
    clock.advance(ms(20));
    w.add(1); // slice 2, reusing slice 0's slot
    w.add_at(t0, 100); // slice 0 has left the window
    assert_eq!(sums(&w), [0, 1]);
    clock.advance(ms(10));
    assert_eq!(sums(&w), [1]);
}

#[test]
fn nan_poisons_its_bucket_until_it_leaves_the_window() {
    let clock = ManualClock::new();
    let w = RollingWindow::<SumCount<f64>, _>::builder(2, ms(10))
        .build_with_clock(clock.clone())
        .unwrap();
    w.add(1.5);
    w.add(f64::NAN);
    clock.advance(ms(10));
    w.add(2.0);
    let b = w.snapshots();
    assert!(b[0].sum.is_nan());
    assert_eq!(b[0].count, 2);
    assert_eq!(b[1].sum, 2.0);
    clock.advance(ms(10));
    w.add(3.0);
    let sums: Vec<f64> = w.snapshots().iter().map(|b| b.sum).collect();
    assert_eq!(sums, [2.0, 3.0]);
}

#[test]
fn accessors_report_the_configuration() {
    let (w, _clock) = window(40, 250, true);
    assert_eq!(w.size(), 40);
    assert_eq!(w.interval(), ms(250));
    assert_eq!(w.span(), Duration::from_secs(10));
    assert!(w.ignores_current_bucket());
    let debug = format!("{w:?}");
    assert!(debug.contains("size: 40"), "{debug}");
}
