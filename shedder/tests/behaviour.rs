//! go-zero's black-box shedder scenarios (`adaptiveshedder_test.go`, `sheddingstat_test.go`,
//! `nopshedder_test.go`, `sheddergroup_test.go`) and the guarantees keel adds: guards that
//! release on drop, shadow mode, validated configuration, the cool-off, statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use keel_shedder::cpu::ManualCpu;
use keel_shedder::{ConfigError, Overloaded, STATS_PERIOD, Shedder, ShedderGroup};
use keel_timex::ManualClock;

const BUCKET: Duration = Duration::from_millis(100);

fn shedder(cpu: &ManualCpu, clock: &ManualClock) -> Shedder<ManualClock> {
    Shedder::builder()
        .window(Duration::from_secs(1))
        .buckets(10)
        .exact_statistics()
        .cpu_source(cpu.clone())
        .build_with_clock(clock.clone())
        .unwrap()
}

/// Teaches the window a capacity: `per_bucket` passes of `rt` each in every bucket of one
/// window, then moves into a fresh bucket. Max flight = per_bucket × rt_ms × 0.01.
fn learn(s: &Shedder<ManualClock>, clock: &ManualClock, per_bucket: usize, rt: Duration) {
    for _ in 0..10 {
        let guards: Vec<_> = (0..per_bucket).map(|_| s.allow().unwrap()).collect();
        clock.advance(rt);
        guards.into_iter().for_each(|g| g.pass());
        clock.advance(BUCKET - rt);
    }
}

/// Brings the in-flight average up to about `n` by cycling requests with `n` held open.
fn hold_open<'a>(
    s: &'a Shedder<ManualClock>,
    n: usize,
) -> Vec<keel_shedder::Guard<'a, ManualClock>> {
    let mut open: Vec<_> = (0..n).map(|_| s.allow().unwrap()).collect();
    for _ in 0..100 {
        open.pop().unwrap().fail();
        open.push(s.allow().unwrap());
    }
    open
}

#[test]
fn many_threads_with_random_outcomes_balance_out() {
    // go-zero's TestAdaptiveShedder: 100 goroutines × 30 requests, 1% failures; race-free
    // and no panic. Here also: every decision is counted and nothing stays in flight.
    let cpu = ManualCpu::new(0);
    let s = Shedder::builder()
        .window(Duration::from_millis(50))
        .buckets(10)
        .cpu_threshold(100)
        .cpu_source(cpu.clone())
        .build()
        .unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    thread::scope(|scope| {
        for t in 0..16u64 {
            let (s, cpu, refused) = (s.clone(), cpu.clone(), refused.clone());
            scope.spawn(move || {
                for i in 0..300u64 {
                    // The CPU swings across the threshold while requests run.
                    if i % 50 == 0 {
                        cpu.set(((t * 37 + i) % 1001) as u32);
                    }
                    match s.allow() {
                        Ok(g) if (t * 300 + i) % 100 == 0 => g.fail(),
                        Ok(g) if i % 7 == 0 => drop(g),
                        Ok(g) => {
                            std::hint::black_box((0..200).sum::<u64>());
                            g.pass()
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let snap = s.snapshot();
    assert_eq!(snap.in_flight, 0);
    assert_eq!(snap.admitted + snap.dropped, 16 * 300);
    assert_eq!(snap.dropped, refused.load(Ordering::Relaxed));
}

#[test]
fn sheds_only_when_cpu_is_high_and_in_flight_exceeds_the_limit() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    learn(&s, &clock, 100, Duration::from_millis(20)); // max flight 100 × 20 × 0.01 = 20
    assert_eq!(s.snapshot().max_flight, 20.0);

    // 40 in flight, CPU low: admitted.
    let open = hold_open(&s, 40);
    assert!(s.allow().is_ok());
    // CPU at the threshold (factor 1, limit 20): refused.
    cpu.set(900);
    let refusal = s.allow().expect_err("40 in flight > 20");
    assert_eq!(refusal.limit(), 20.0);
    assert_eq!(refusal.to_string(), "service overloaded");
    assert_eq!(Overloaded::HTTP_STATUS, 503);
    // Fewer in flight than the limit: admitted even at full CPU... as long as 1000 leaves
    // a limit above them: at 1000 the factor is 0.1 (limit 2).
    drop(open);
    let few = hold_open(&s, 10);
    cpu.set(900);
    assert!(s.allow().is_ok(), "10 in flight < 20");
    cpu.set(1000);
    assert!(s.allow().is_err(), "10 in flight > 20 × 0.1");
    drop(few);
    assert_eq!(s.snapshot().in_flight, 0);
}

#[test]
fn keeps_shedding_through_the_cool_off_then_recovers() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    learn(&s, &clock, 100, Duration::from_millis(20));
    let open = hold_open(&s, 40);
    cpu.set(950);
    assert!(s.allow().is_err());
    assert!(s.snapshot().dropped_recently);
    // The CPU dips under the threshold: still hot for 1 s after it was last high.
    cpu.set(500);
    clock.advance(Duration::from_millis(999));
    assert!(s.allow().is_err(), "within the cool-off");
    clock.advance(Duration::from_millis(1));
    let g = s.allow().expect("cooled off");
    assert!(!s.snapshot().dropped_recently);
    drop(g);
    drop(open);
}

#[test]
fn nothing_is_shed_before_the_window_has_seen_traffic() {
    // Without latency data min RT is 1000 ms (max flight 1 × 1000 × 0.01 = 10), and the
    // in-flight average only moves as requests finish: a fresh shedder at full CPU admits
    // a burst of 50 although its limit is 10 × 0.1 = 1.
    let (cpu, clock) = (ManualCpu::new(1000), ManualClock::new());
    let s = shedder(&cpu, &clock);
    let open: Vec<_> = (0..50).map(|_| s.allow().unwrap()).collect();
    let snap = s.snapshot();
    assert_eq!((snap.max_flight, snap.limit), (10.0, 1.0));
    // Once some of them finish, the average catches up and the rest is refused.
    let mut open = open;
    for _ in 0..20 {
        open.pop().unwrap().fail();
    }
    assert!(s.allow().is_err());
    drop(open);
}

#[test]
fn a_guard_dropped_without_outcome_releases_its_slot_and_records_nothing() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    let g = s.allow().unwrap();
    assert!(g.is_timed());
    clock.advance(Duration::from_millis(5));
    drop(g); // cancelled
    s.allow().unwrap().fail(); // failed
    clock.advance(Duration::from_secs(1) - Duration::from_millis(5));
    let snap = s.snapshot();
    assert_eq!(snap.in_flight, 0);
    assert_eq!(snap.max_pass, 1, "neither counts as a pass");
    assert_eq!(snap.min_rt_ms, 1000.0, "nor feeds the latency");

    let g = s.allow().unwrap();
    clock.advance(Duration::from_millis(7));
    g.pass();
    clock.advance(BUCKET);
    let snap = s.snapshot();
    assert_eq!((snap.max_pass, snap.min_rt_ms), (1, 7.0));
}

#[test]
fn owned_guards_travel_between_threads() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    let guards: Vec<_> = (0..64).map(|_| s.allow_owned().unwrap()).collect();
    assert_eq!(s.snapshot().in_flight, 64);
    thread::scope(|scope| {
        for (i, g) in guards.into_iter().enumerate() {
            scope.spawn(move || match i % 3 {
                0 => g.pass(),
                1 => g.fail(),
                _ => drop(g),
            });
        }
    });
    let snap = s.snapshot();
    assert_eq!(snap.in_flight, 0);
    assert_eq!(snap.admitted, 64);
}

#[test]
fn shadow_mode_counts_what_it_would_shed_and_admits_it() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = Shedder::builder()
        .window(Duration::from_secs(1))
        .buckets(10)
        .exact_statistics()
        .cpu_source(cpu.clone())
        .shadow(true)
        .build_with_clock(clock.clone())
        .unwrap();
    learn(&s, &clock, 100, Duration::from_millis(20));
    let open = hold_open(&s, 40);
    cpu.set(1000);
    let admitted: Vec<_> = (0..5).map(|_| s.allow().expect("shadow admits")).collect();
    let snap = s.snapshot();
    assert!(snap.shadow);
    assert_eq!(snap.shadow_dropped, 5);
    assert_eq!(snap.dropped, 0);
    assert_eq!(snap.current_period.shadow_drop, 5);
    drop(admitted);
    drop(open);
}

#[test]
fn statistics_roll_over_every_minute() {
    // go-zero's TestSheddingStat, through the API: 5 passes and 7 drops in a minute.
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    learn(&s, &clock, 100, Duration::from_millis(20));
    let open = hold_open(&s, 40);
    let before = s.snapshot().current_period;
    for _ in 0..5 {
        s.allow().unwrap().pass();
    }
    cpu.set(1000);
    for _ in 0..7 {
        assert!(s.allow().is_err());
    }
    let now = s.snapshot().current_period;
    assert_eq!(now.pass - before.pass, 5);
    assert_eq!(now.drop - before.drop, 7);
    assert_eq!(now.total, now.pass + now.drop);
    assert!(s.snapshot().last_period.is_none());

    clock.advance(STATS_PERIOD);
    assert!(s.allow().is_err()); // the first decision after the minute rolls it over
    let snap = s.snapshot();
    let last = snap.last_period.expect("a finished period");
    assert_eq!(last.pass, now.pass);
    assert_eq!(last.drop, 7);
    assert_eq!(last.cpu, Some(1000));
    assert!(last.length >= STATS_PERIOD);
    assert_eq!((snap.current_period.pass, snap.current_period.drop), (0, 1));
    drop(open);
}

#[test]
fn a_noop_shedder_admits_everything_and_records_nothing() {
    // go-zero's TestNopShedder: after Disable(), 1000 × (Allow, Fail), then Allow, Pass.
    let s = Shedder::noop();
    for _ in 0..1000 {
        s.allow().expect("no-op admits").fail();
    }
    s.allow().unwrap().pass();
    let snap = s.snapshot();
    assert!(!snap.enabled);
    assert_eq!((snap.admitted, snap.in_flight), (0, 0));
}

#[test]
fn a_group_makes_one_shedder_per_key() {
    let clock = ManualClock::new();
    let group = ShedderGroup::with_clock(
        Shedder::builder().cpu_source(ManualCpu::new(0)),
        clock.clone(),
    )
    .unwrap();
    assert!(group.is_empty());
    let a = group.get("a");
    let b = group.get("b");
    drop(a.allow().unwrap());
    assert_eq!(group.get("a").snapshot().admitted, 1);
    assert_eq!(b.snapshot().admitted, 0);
    assert_eq!(group.len(), 2);
    assert!(ShedderGroup::new(Shedder::builder().cpu_threshold(0)).is_err());
}

#[test]
fn invalid_configuration_is_refused_at_construction() {
    let b = Shedder::builder;
    assert_eq!(
        b().cpu_threshold(1000).build().unwrap_err(),
        ConfigError::ThresholdOutOfRange { threshold: 1000 }
    );
    assert!(b().cpu_threshold(0).build().is_err());
    assert!(b().cpu_threshold(999).build().is_ok());
    assert_eq!(
        b().buckets(0).build().unwrap_err(),
        ConfigError::ZeroBuckets
    );
    assert!(matches!(
        b().window(Duration::from_nanos(5)).buckets(10).build(),
        Err(ConfigError::WindowTooShort { .. })
    ));
    assert_eq!(
        b().latency_sample_period(0).build().unwrap_err(),
        ConfigError::ZeroSamplePeriod
    );
    let msg = b().cpu_threshold(1000).build().unwrap_err().to_string();
    assert!(msg.contains("1..=999"), "{msg}");
}

#[test]
fn clones_share_one_state() {
    let (cpu, clock) = (ManualCpu::new(0), ManualClock::new());
    let s = shedder(&cpu, &clock);
    let other = s.clone();
    let g = other.allow().unwrap();
    assert_eq!(s.snapshot().in_flight, 1);
    g.pass();
    assert_eq!(s.snapshot().admitted, 1);
}
