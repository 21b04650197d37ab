//! go-zero's white-box shedder scenarios (`adaptiveshedder_test.go`), on the manual clock
//! with an injected CPU. The black-box behaviour is in `tests/`.

use std::time::Duration;

use keel_timex::{Clock, ManualClock, Nanos};

use crate::cpu::ManualCpu;
use crate::{CpuFallback, Shedder};

const BUCKET: Duration = Duration::from_millis(100);

/// 10 buckets of 100 ms (go-zero's windowScale of 0.01), threshold 900, every request timed.
pub(crate) fn shedder(cpu: &ManualCpu, clock: &ManualClock) -> Shedder<ManualClock> {
    Shedder::builder()
        .window(Duration::from_secs(1))
        .buckets(10)
        .exact_statistics()
        .cpu_source(cpu.clone())
        .build_with_clock(clock.clone())
        .unwrap()
}

fn pass_at(s: &Shedder<ManualClock>, now: Nanos, rt_ms: Option<u64>) {
    s.inner.stats.pass(now, rt_ms);
}

/// go-zero's rows: bucket i holds (i+1)·100 passes, 10 of them timed at i·10+1 ..= i·10+10
/// ms (mean i·10+5.5). The clock ends inside bucket 9, which is then the current one.
pub(crate) fn fill_rows(s: &Shedder<ManualClock>, clock: &ManualClock) {
    for i in 0..10u64 {
        let now = clock.now();
        for _ in 0..(i + 1) * 100 - 10 {
            pass_at(s, now, None);
        }
        for v in 1..=10 {
            pass_at(s, now, Some(i * 10 + v));
        }
        if i < 9 {
            clock.advance(BUCKET);
        }
    }
}

#[test]
fn max_pass_is_the_busiest_finished_bucket_and_one_when_empty() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    assert_eq!(s.snapshot().max_pass, 1);
    for i in 1..=10u64 {
        for _ in 0..i * 100 {
            pass_at(&s, clock.now(), None);
        }
        clock.advance(BUCKET);
    }
    assert_eq!(s.snapshot().max_pass, 1000);
}

#[test]
fn min_rt_rounds_the_lowest_bucket_mean_and_ignores_the_current_bucket() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    assert_eq!(s.snapshot().min_rt_ms, 1000.0);
    // Only the current bucket holds data: still the default.
    pass_at(&s, clock.now(), Some(3));
    assert_eq!(s.snapshot().min_rt_ms, 1000.0);
    clock.advance(BUCKET);
    for i in 0..10u64 {
        for v in 1..=10 {
            pass_at(&s, clock.now(), Some(i * 10 + v));
        }
        if i < 9 {
            clock.advance(BUCKET);
        }
    }
    // The 3 ms bucket is ten buckets back: out of the window. Of the 9 finished buckets
    // (means 5.5, 15.5, ...) the lowest rounds to 6; bucket 9 is current and ignored.
    assert_eq!(s.snapshot().min_rt_ms, 6.0);
}

#[test]
fn max_flight_is_54_for_go_zeros_rows() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    fill_rows(&s, &clock);
    let snap = s.snapshot();
    assert_eq!(snap.max_pass, 900, "the current bucket's 1000 is ignored");
    assert_eq!(snap.min_rt_ms, 6.0);
    assert_eq!(snap.max_flight, 54.0);
    assert_eq!(s.inner.stats.max_flight_at(clock.now()), 54.0);
}

/// Holds `n` admitted requests open (admitted while the CPU is low).
pub(crate) fn hold<'a>(
    s: &'a Shedder<ManualClock>,
    cpu: &ManualCpu,
    n: usize,
) -> Vec<crate::Guard<'a, ManualClock>> {
    let before = cpu.usage_for_test();
    cpu.set(0);
    let guards = (0..n).map(|_| s.allow().expect("CPU is low")).collect();
    cpu.set(before);
    guards
}

impl ManualCpu {
    pub(crate) fn usage_for_test(&self) -> u32 {
        crate::cpu::CpuSource::usage(self).unwrap_or(0)
    }
}

#[test]
fn should_drop_needs_both_the_average_and_the_current_count_over_the_limit() {
    let (cpu, clock) = (ManualCpu::new(950), ManualClock::new());
    let s = shedder(&cpu, &clock);
    fill_rows(&s, &clock);
    let now = clock.now();
    // cpu 950 with threshold 900: factor 0.5, limit 27.
    let limit = 54.0 * 0.5;

    s.set_avg_flying(50.0);
    assert!(s.inner.should_drop(now).is_none(), "nothing in flight");

    s.set_avg_flying(80.0);
    let guards = hold(&s, &cpu, limit as usize - 5);
    assert!(
        s.inner.should_drop(now).is_none(),
        "in flight under the limit"
    );
    drop(guards);

    let guards = hold(&s, &cpu, 80);
    s.set_avg_flying(80.0);
    let refusal = s.inner.should_drop(now).expect("both over the limit");
    assert_eq!(refusal.in_flight(), 80);
    assert_eq!(refusal.limit(), limit);
    assert_eq!(refusal.cpu(), Some(950));

    // Not overloaded and not hot: admitted whatever is in flight.
    cpu.set(100);
    s.inner
        .dropped_recently
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(s.inner.should_drop(now).is_none());

    // Overloaded again: allow refuses.
    cpu.set(950);
    s.set_avg_flying(80.0);
    assert!(s.allow().is_err());
    assert_eq!(s.snapshot().dropped, 1);
    drop(guards);
}

#[test]
fn still_hot_needs_a_recent_drop_and_a_recent_overload() {
    let (cpu, clock) = (
        ManualCpu::new(0),
        ManualClock::starting_at(Duration::from_secs(10).into()),
    );
    let s = shedder(&cpu, &clock);
    let inner = &s.inner;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let now = clock.now();

    inner.dropped_recently.store(true, relaxed);
    assert!(!inner.still_hot(now), "never overloaded");

    inner.overload_time.store(
        (now - Duration::from_secs(2)).as_nanos(),
        crate::sync::Ordering::Relaxed,
    );
    assert!(!inner.still_hot(now), "overloaded 2 s ago");
    assert!(
        !inner.dropped_recently.load(relaxed),
        "cooled off: flag cleared"
    );

    inner.dropped_recently.store(true, relaxed);
    inner
        .overload_time
        .store(now.as_nanos(), crate::sync::Ordering::Relaxed);
    assert!(inner.still_hot(now));
    assert!(inner.still_hot(now + Duration::from_millis(999)));
    assert!(!inner.still_hot(now + Duration::from_secs(1)));
}

#[test]
fn overload_time_starting_at_clock_zero_is_not_never() {
    // go-zero uses 0 for "never"; a manual clock starts at 0, which must still count.
    let (cpu, clock) = (ManualCpu::new(1000), ManualClock::new());
    let s = shedder(&cpu, &clock);
    assert!(s.inner.should_drop(clock.now()).is_none());
    s.inner
        .dropped_recently
        .store(true, std::sync::atomic::Ordering::Relaxed);
    cpu.set(0);
    assert!(s.inner.still_hot(clock.now()));
}

#[test]
fn without_a_cpu_signal_the_fallback_decides() {
    let clock = ManualClock::new();
    let cpu = ManualCpu::new(0);
    for (fallback, drops) in [
        (CpuFallback::NeverShed, false),
        (CpuFallback::InFlightOnly, true),
    ] {
        let s = Shedder::builder()
            .window(Duration::from_secs(1))
            .buckets(10)
            .exact_statistics()
            .cpu_source(cpu.clone())
            .cpu_fallback(fallback)
            .build_with_clock(clock.clone())
            .unwrap();
        fill_rows(&s, &clock);
        cpu.set(0);
        let guards = hold(&s, &cpu, 80);
        cpu.clear();
        s.set_avg_flying(80.0);
        assert_eq!(s.allow().is_err(), drops, "{fallback:?}");
        assert_eq!(s.snapshot().limit, 54.0, "factor 1 without a signal");
        drop(guards);
        clock.advance(Duration::from_secs(2));
    }
}

#[test]
fn timed_completions_move_the_in_flight_average() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    let guards: Vec<_> = (0..10).map(|_| s.allow().unwrap()).collect();
    let mut expected = 0.0;
    for (i, g) in guards.into_iter().enumerate() {
        g.fail();
        expected = expected * 0.9 + (9 - i) as f64 * 0.1;
    }
    let avg = s.snapshot().avg_in_flight;
    assert!((avg - expected).abs() < 1e-9, "{avg} vs {expected}");
}

#[test]
fn the_cached_max_flight_follows_slice_boundaries() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    fill_rows(&s, &clock);
    let stats = &s.inner.stats;
    let end_of_9 = Nanos::from_nanos(1_000_000_000 - 1);
    let start_of_10 = Nanos::from_nanos(1_000_000_000);
    assert_eq!(stats.max_flight_at(clock.now()), 54.0);
    assert_eq!(stats.max_flight_at(end_of_9), 54.0);
    // Bucket 9 (1000 passes) is finished from here; bucket 0 has left the window, so min
    // RT is bucket 1's round(15.5) = 16.
    assert_eq!(stats.max_flight_at(start_of_10), 1000.0 * 16.0 * 0.01);
    for ms in [0u64, 99, 100, 950, 1000, 1001, 1099, 1100, 2500, 30_000] {
        for t in [ms * 1_000_000, ms * 1_000_000 + 999_999] {
            let t = Nanos::from_nanos(t);
            assert_eq!(
                stats.max_flight_at(t),
                stats.capacity_at(t).max_flight,
                "at {t:?}"
            );
        }
    }
}
