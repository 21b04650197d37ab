//! `max_delay` is a promise: whatever the geometry, the tick, the moment within a tick and
//! the wheel's history (timers pending, the clock moved on with or without `advance`), a
//! delay up to the reported max is accepted, and a caller that clamps a refused delay to
//! the `max` of its `DelayTooLong` and retries succeeds. Also the builder's bounds.

use std::time::Duration;

use keel_timex::{Clock, ManualClock};
use keel_timingwheel::{Builder, ConfigError, TimerError, TimingWheel};
use proptest::prelude::*;

/// Ticks from the whole range, edges weighted: 1 ns, powers of two, human ticks, the
/// longest.
fn tick() -> impl Strategy<Value = Duration> {
    prop_oneof![
        2 => Just(Duration::from_nanos(1)),
        1 => Just(Duration::from_nanos(3)),
        3 => Just(Duration::from_millis(1)),
        2 => Just(Duration::from_millis(10)),
        1 => Just(Duration::from_secs(1)),
        1 => (0u32..64).prop_map(|b| Duration::from_nanos(1u64 << b)),
        1 => (1u64..u64::MAX).prop_map(Duration::from_nanos),
        1 => Just(Duration::from_nanos(u64::MAX)),
        1 => Just(Duration::MAX),
    ]
}

/// A valid geometry: `bits × levels ≤ 60` and more than one tick of span.
fn geometry() -> impl Strategy<Value = (usize, usize)> {
    (1u32..=6)
        .prop_flat_map(|bits| (Just(bits), 1usize..=(60 / bits as usize).min(8)))
        .prop_filter("a span of one tick", |&(bits, levels)| {
            bits * levels as u32 > 1
        })
        .prop_map(|(bits, levels)| (1usize << bits, levels))
}

/// Clock steps in nanoseconds, mid-tick ones included, up to whole years.
fn step() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        1u64..1_000_000,
        1u64..1_000_000_000_000,
        1u64..(1 << 62),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Set key `k` with a delay of `frac / 2^16` of the max, plus `ns`.
    Set(u8, u16, u64),
    Clock(u64),
    Advance,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..8, any::<u16>(), prop_oneof![Just(0u64), 0u64..1000]).prop_map(|(k, f, n)| Op::Set(k, f, n)),
        3 => step().prop_map(Op::Clock),
        1 => Just(Op::Advance),
    ]
}

/// A delay wanted by a caller, from the whole range.
fn wanted() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        (0u64..u64::MAX).prop_map(Duration::from_nanos),
        Just(Duration::from_nanos(u64::MAX)),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::MAX),
    ]
}

fn scaled(max: Duration, frac: u16, ns: u64) -> Duration {
    let part = (max.as_nanos() * u128::from(frac)) >> 16;
    Duration::from_nanos(u64::try_from(part).unwrap_or(u64::MAX)) + Duration::from_nanos(ns)
}

fn check(
    tick: Duration,
    (slots, levels): (usize, usize),
    history: &[Op],
    offset: u64,
    wanted: Duration,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let wheel: TimingWheel<u8, u32, ManualClock> = Builder::new(tick)
        .slots_per_level(slots)
        .levels(levels)
        .clock(clock.clone())
        .build()
        .expect("a valid geometry");
    let max = wheel.max_delay();
    let tick_ns = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
    let ticks = (slots as u128).pow(levels as u32) - (slots as u128).pow(levels as u32 - 1) - 1;
    let expected = u64::try_from(ticks * u128::from(tick_ns)).unwrap_or(u64::MAX);
    prop_assert_eq!(max, Duration::from_nanos(expected));
    for op in history {
        match *op {
            Op::Set(k, frac, ns) => {
                let delay = scaled(max, frac, ns);
                let got = wheel.set(k, 0, delay);
                prop_assert_eq!(got.is_ok(), delay <= max, "{:?} with max {:?}", delay, max);
            }
            Op::Clock(ns) => {
                clock.advance(Duration::from_nanos(ns));
            }
            Op::Advance => {
                let _ = wheel.advance();
            }
        }
    }
    // Somewhere within a tick (or exactly at its start).
    clock.advance(Duration::from_nanos(offset % tick_ns.max(1)));
    let before = clock.now();

    // The promise itself, for set and for move.
    prop_assert_eq!(wheel.set(100, 1, max), Ok(None));
    prop_assert_eq!(wheel.move_timer(&100, max), Ok(true));
    if let Some(over) = max.checked_add(Duration::from_nanos(1)) {
        prop_assert_eq!(
            wheel.set(101, 1, over),
            Err(TimerError::DelayTooLong { max })
        );
    }

    // The caller that clamps and retries.
    let delay = match wheel.set(102, 2, wanted) {
        Ok(_) => {
            prop_assert!(wanted <= max);
            wanted
        }
        Err(TimerError::DelayTooLong { max: reported }) => {
            prop_assert!(wanted > max);
            prop_assert_eq!(reported, max);
            prop_assert_eq!(wheel.set(102, 2, reported), Ok(None), "clamped retry");
            reported
        }
        Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
    };
    // Scheduled no earlier than asked, and at most a tick later, while the wheel's time
    // runs (it stops 2^64 - 2^62 ns after the build) and the deadline is on the clock.
    let left = wheel.time_left(&102).expect("pending");
    let at = u128::from(before.as_nanos());
    let on_clock = at + delay.as_nanos() + u128::from(tick_ns) <= u128::from(u64::MAX);
    if at <= u128::from(u64::MAX - (1 << 62)) && on_clock {
        prop_assert!(left >= delay, "{:?} < {:?}", left, delay);
        prop_assert!(
            left <= delay + tick,
            "{:?} > {:?} + {:?}",
            left,
            delay,
            tick
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_delay_up_to_the_reported_max_is_accepted_at_any_moment(
        tick in tick(),
        geometry in geometry(),
        history in prop::collection::vec(op(), 0..12),
        offset in any::<u64>(),
        wanted in wanted(),
    ) {
        check(tick, geometry, &history, offset, wanted)?;
    }
}

/// The cases: the span of the docs (`tick × slots^levels` less one top-level slot)
/// was refused, and mid-tick the reported `max` itself was refused.
#[test]
fn the_reported_max_fits_mid_tick_on_the_documented_geometries() {
    for (tick, slots, levels) in [
        (Duration::from_millis(10), 4, 2),
        (Duration::from_millis(1), 64, 6),
        (Duration::from_secs(1), 8, 3),
    ] {
        let clock = ManualClock::new();
        let wheel: TimingWheel<u8, u8, ManualClock> = Builder::new(tick)
            .slots_per_level(slots)
            .levels(levels)
            .clock(clock.clone())
            .build()
            .unwrap();
        let max = wheel.max_delay();
        for (k, mid) in [Duration::ZERO, tick / 2, tick - Duration::from_nanos(1)]
            .into_iter()
            .enumerate()
        {
            clock.advance(mid);
            let err = wheel.set(k as u8, 1, Duration::MAX).unwrap_err();
            assert_eq!(err, TimerError::DelayTooLong { max });
            assert_eq!(wheel.set(k as u8, 1, max), Ok(None), "{tick:?} at +{mid:?}");
            clock.advance(tick - mid);
        }
    }
}

#[test]
fn huge_level_counts_and_capacities_are_typed_errors() {
    let build = |b: Builder| b.build::<u64, u64>().map(|_| ());
    for levels in [61, 1 << 20, usize::MAX / 2, usize::MAX - 1, usize::MAX] {
        for slots in [2, 64] {
            let err = build(
                Builder::new(Duration::from_millis(1))
                    .slots_per_level(slots)
                    .levels(levels),
            );
            assert_eq!(
                err,
                Err(ConfigError::Levels {
                    levels,
                    slots_per_level: slots
                })
            );
        }
    }
    assert!(
        build(
            Builder::new(Duration::from_millis(1))
                .slots_per_level(2)
                .levels(60)
        )
        .is_ok()
    );
    assert!(build(Builder::new(Duration::from_millis(1)).levels(10)).is_ok());
    for capacity in [Builder::MAX_CAPACITY + 1, 1 << 40, usize::MAX] {
        let err = build(Builder::new(Duration::from_millis(1)).capacity(capacity)).unwrap_err();
        assert_eq!(err, ConfigError::Capacity(capacity));
        assert!(err.to_string().contains("4194304"), "{err}");
    }
    assert_eq!(Builder::MAX_CAPACITY, 1 << 22);
}

#[test]
fn the_longest_tick_builds_and_its_max_saturates() {
    for tick in [Duration::from_nanos(u64::MAX), Duration::MAX] {
        let clock = ManualClock::new();
        let wheel: TimingWheel<u8, u8, ManualClock> =
            Builder::new(tick).clock(clock.clone()).build().unwrap();
        assert_eq!(wheel.max_delay(), Duration::from_nanos(u64::MAX));
        assert_eq!(wheel.set(1, 1, Duration::from_nanos(u64::MAX)), Ok(None));
        assert_eq!(wheel.set(2, 2, Duration::ZERO), Ok(None));
        clock.advance(Duration::MAX);
        // The clock ends before the first tick does: nothing is due, nothing panics.
        assert!(wheel.advance().is_empty());
        assert_eq!(wheel.len(), 2);
    }
}

/// A 1 ns tick, whose tick numbers reach the top of `u64` at the end of the clock: the
/// wheel's time stops 438 years in, and nothing overflows on the way.
#[test]
fn a_one_nanosecond_wheel_runs_to_the_end_of_the_clock() {
    let clock = ManualClock::new();
    let wheel: TimingWheel<u8, u8, ManualClock> = Builder::new(Duration::from_nanos(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let max = wheel.max_delay();
    wheel.set(1, 1, Duration::from_nanos(5)).unwrap();
    for step in [
        Duration::from_nanos(1 << 62),
        Duration::from_nanos(u64::MAX),
        Duration::MAX,
    ] {
        clock.advance(step);
        wheel.set(2, 2, max).unwrap();
        wheel.set(3, 3, Duration::ZERO).unwrap();
        let _ = wheel.advance();
        let _ = wheel.next_deadline();
        let _ = wheel.time_left(&2);
    }
    assert!(!wheel.contains(&1));
}
