//! The public surface around the drivers, on the manual driver unless said otherwise.
//!
//! Builder validation (every `ConfigError` but `Spawn`, for `build`, `spawn` and `stream`,
//! with the limits themselves accepted) and the `Display` of every error; `DelayTooLong`
//! reports the exact span and the span itself is accepted; `time_left`, `next_deadline`,
//! `contains`, `len`, `is_empty`; `stop` closes every operation; memory goes back down after
//! most of 200 000 timers are removed; the handle is `Clone + Send + Sync` and its clones share
//! one wheel.
//!
//! Three tests here show crate bugs (reported, marked `BUG`): `advance` after a clock jump
//! returns timers out of deadline order; a wheel whose last processed tick lags the clock by
//! more than the span (an idle wheel, a driver asleep) refuses short delays; a 2-slot,
//! 1-level wheel is accepted by the builder but refuses every timer.

use std::time::Duration;

use keel_timex::{Clock, ManualClock, Nanos};
use keel_timingwheel::{Builder, ConfigError, TimerError, TimingWheel};

const MS: Duration = Duration::from_millis(1);

fn manual(
    tick: Duration,
    slots: usize,
    levels: usize,
) -> (ManualClock, TimingWheel<u64, u64, ManualClock>) {
    let clock = ManualClock::new();
    let wheel = Builder::new(tick)
        .slots_per_level(slots)
        .levels(levels)
        .clock(clock.clone())
        .build()
        .unwrap();
    (clock, wheel)
}

fn build_err(b: Builder) -> ConfigError {
    b.build::<u64, u64>().unwrap_err()
}

#[test]
fn the_builder_rejects_a_zero_tick() {
    assert_eq!(
        build_err(Builder::new(Duration::ZERO)),
        ConfigError::ZeroTick
    );
    assert!(
        Builder::new(Duration::from_nanos(1))
            .build::<u64, u64>()
            .is_ok()
    );
}

#[test]
fn the_builder_rejects_slots_that_are_not_a_power_of_two_in_2_to_64() {
    for slots in [0, 1, 3, 5, 10, 48, 63, 65, 128, usize::MAX] {
        assert_eq!(
            build_err(Builder::new(MS).slots_per_level(slots)),
            ConfigError::SlotsPerLevel(slots),
            "{slots} slots"
        );
    }
    for slots in [2, 4, 8, 16, 32, 64] {
        assert!(
            Builder::new(MS)
                .slots_per_level(slots)
                .levels(2)
                .build::<u64, u64>()
                .is_ok(),
            "{slots} slots refused"
        );
    }
}

#[test]
fn the_builder_rejects_zero_levels_and_more_than_2_pow_60_ticks() {
    let levels = |slots, levels| build_err(Builder::new(MS).slots_per_level(slots).levels(levels));
    assert_eq!(
        levels(64, 0),
        ConfigError::Levels {
            levels: 0,
            slots_per_level: 64
        }
    );
    // 64^11 = 2^66, 2^61, 4^31 = 2^62: too many ticks.
    for (slots, n) in [(64, 11), (2, 61), (4, 31), (8, 21)] {
        assert_eq!(
            levels(slots, n),
            ConfigError::Levels {
                levels: n,
                slots_per_level: slots
            },
            "{slots}^{n}"
        );
    }
    // Exactly 2^60 ticks is accepted.
    for (slots, n) in [(64, 10), (2, 60), (4, 30), (32, 12)] {
        assert!(
            Builder::new(MS)
                .slots_per_level(slots)
                .levels(n)
                .build::<u64, u64>()
                .is_ok(),
            "{slots}^{n} refused"
        );
    }
}

#[test]
fn the_builder_rejects_a_capacity_beyond_the_most_timers() {
    let err = build_err(Builder::new(MS).capacity(usize::MAX));
    assert_eq!(err, ConfigError::Capacity(usize::MAX));
    // The limit is about 4.29 billion timers (checked before anything is allocated).
    assert!(matches!(
        build_err(Builder::new(MS).capacity(u32::MAX as usize)),
        ConfigError::Capacity(_)
    ));
    assert!(Builder::new(MS).capacity(1000).build::<u64, u64>().is_ok());
}

#[test]
fn spawn_and_stream_validate_too() {
    let spawned = Builder::new(MS)
        .slots_per_level(3)
        .spawn(|_: u64, _: u64| {});
    assert_eq!(spawned.err(), Some(ConfigError::SlotsPerLevel(3)));
    #[cfg(feature = "tokio")]
    {
        let streamed = Builder::new(Duration::ZERO).stream::<u64, u64>();
        assert_eq!(streamed.err(), Some(ConfigError::ZeroTick));
    }
}

#[test]
fn every_error_displays_a_message() {
    let config = [
        ConfigError::ZeroTick,
        ConfigError::SlotsPerLevel(3),
        ConfigError::Levels {
            levels: 0,
            slots_per_level: 64,
        },
        ConfigError::Capacity(usize::MAX),
        ConfigError::Spawn("no threads left".into()),
    ];
    for e in &config {
        let msg = e.to_string();
        assert!(msg.len() > 10, "{e:?}: {msg:?}");
        let _: &dyn std::error::Error = e;
    }
    assert!(config[1].to_string().contains('3'));
    assert!(config[4].to_string().contains("no threads left"));
    let timer = [
        TimerError::Closed,
        TimerError::DelayTooLong { max: 110 * MS },
        TimerError::Full,
    ];
    for e in &timer {
        let msg = e.to_string();
        assert!(msg.len() > 10, "{e:?}: {msg:?}");
        let _: &dyn std::error::Error = e;
    }
    assert!(timer[1].to_string().contains("110ms"));
}

/// 4 slots, 2 levels, 10 ms: 16 ticks less one top-level slot of 4 is 12 ticks of range, so
/// the longest delay is 11 ticks = 110 ms.
#[test]
fn delay_too_long_reports_the_exact_span_and_the_span_is_accepted() {
    let (clock, wheel) = manual(10 * MS, 4, 2);
    let too_long = Err(TimerError::DelayTooLong { max: 110 * MS });
    let too_long_move: Result<bool, _> = Err(TimerError::DelayTooLong { max: 110 * MS });
    assert_eq!(wheel.set(1, 1, 110 * MS), Ok(None));
    assert_eq!(
        wheel.set(2, 2, 110 * MS + Duration::from_nanos(1)),
        too_long
    );
    assert_eq!(wheel.set(2, 2, Duration::from_secs(3600)), too_long);
    assert_eq!(wheel.set(2, 2, Duration::MAX), too_long);
    assert!(!wheel.contains(&2), "a refused set left a timer");
    assert_eq!(wheel.move_timer(&1, 120 * MS), too_long_move);
    assert_eq!(wheel.time_left(&1), Some(110 * MS), "a refused move moved");
    // Unknown key: the delay is checked first.
    assert_eq!(wheel.move_timer(&9, 120 * MS), too_long_move);
    // A refused set of an existing key keeps its value and deadline.
    assert_eq!(wheel.set(1, 7, 200 * MS), too_long);
    assert_eq!(wheel.remove(&1), Ok(Some(1)));

    // The span counts from the last processed tick: after 3 ticks, 110 ms again.
    clock.advance(30 * MS);
    assert!(wheel.advance().is_empty());
    assert_eq!(wheel.set(3, 3, 110 * MS), Ok(None));
    assert_eq!(wheel.set(4, 4, 111 * MS), too_long);
    clock.advance(110 * MS);
    assert_eq!(wheel.advance(), vec![(3, 3)]);
}

#[test]
fn the_default_span_is_2_pow_36_less_2_pow_30_ticks() {
    let wheel: TimingWheel<u64, u64> = Builder::new(MS).build().unwrap();
    let max = Duration::from_millis((1u64 << 36) - (1 << 30) - 1);
    assert_eq!(
        wheel.set(1, 1, max + MS),
        Err(TimerError::DelayTooLong { max })
    );
    assert_eq!(wheel.set(1, 1, max - Duration::from_secs(1)), Ok(None));
}

#[test]
fn time_left_counts_down_to_the_tick_boundary() {
    let (clock, wheel) = manual(10 * MS, 64, 6);
    assert_eq!(wheel.time_left(&1), None);
    wheel.set(1, 1, 35 * MS).unwrap(); // fires at tick 4, 40 ms
    assert_eq!(wheel.time_left(&1), Some(40 * MS));
    clock.advance(12 * MS);
    assert_eq!(wheel.time_left(&1), Some(28 * MS));
    wheel.move_timer(&1, 100 * MS).unwrap(); // 112 ms → tick 12
    assert_eq!(wheel.time_left(&1), Some(108 * MS));
    clock.advance(200 * MS);
    // Due but not yet advanced: zero, still pending.
    assert_eq!(wheel.time_left(&1), Some(Duration::ZERO));
    assert!(wheel.contains(&1));
    assert_eq!(wheel.advance(), vec![(1, 1)]);
    assert_eq!(wheel.time_left(&1), None);
}

#[test]
fn next_deadline_is_when_to_advance_next() {
    let (clock, wheel) = manual(10 * MS, 64, 6);
    assert_eq!(wheel.next_deadline(), None);
    wheel.set(1, 1, 35 * MS).unwrap();
    assert_eq!(wheel.next_deadline(), Some(Nanos::from_duration(40 * MS)));
    wheel.set(2, 2, 15 * MS).unwrap();
    assert_eq!(wheel.next_deadline(), Some(Nanos::from_duration(20 * MS)));
    assert_eq!(wheel.remove(&2), Ok(Some(2)));
    assert_eq!(wheel.next_deadline(), Some(Nanos::from_duration(40 * MS)));
    assert_eq!(wheel.remove(&1), Ok(Some(1)));
    assert_eq!(wheel.next_deadline(), None);

    // Tick 100 sits on level 1 (ticks 64..127): the first wake-up is that slot's start, which
    // fires nothing and only moves the timer down; then the deadline itself.
    wheel.set(3, 3, 1000 * MS).unwrap();
    let first = wheel.next_deadline().unwrap();
    assert!(first <= Nanos::from_duration(1000 * MS), "{first:?}");
    let mut wakes = 0;
    let fired = loop {
        let at = wheel.next_deadline().expect("timer pending");
        clock.advance_to(at);
        wakes += 1;
        let fired = wheel.advance();
        if !fired.is_empty() {
            break fired;
        }
        assert!(wakes < 10, "next_deadline does not make progress");
    };
    assert_eq!(fired, vec![(3, 3)]);
    assert_eq!(clock.now(), Nanos::from_duration(1000 * MS));
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn len_contains_and_is_empty_track_the_timers() {
    let (clock, wheel) = manual(MS, 8, 3);
    assert!(wheel.is_empty());
    for k in 0..10 {
        wheel.set(k, k, MS * (k as u32 + 1)).unwrap();
    }
    assert_eq!(wheel.len(), 10);
    assert!(!wheel.is_empty());
    assert!(wheel.contains(&9) && !wheel.contains(&10));
    wheel.set(9, 90, MS).unwrap(); // replaces
    assert_eq!(wheel.len(), 10);
    wheel.remove(&0).unwrap();
    assert!(!wheel.contains(&0));
    assert_eq!(wheel.len(), 9);
    clock.advance(5 * MS);
    let fired = wheel.advance();
    assert_eq!(fired.len(), 5); // 1..=4 and 9
    assert_eq!(wheel.len(), 4);
    assert!(fired.iter().all(|(k, _)| !wheel.contains(k)));
    assert_eq!(wheel.drain().unwrap().len(), 4);
    assert!(wheel.is_empty());
}

#[test]
fn stop_closes_every_operation_and_is_idempotent() {
    let (clock, wheel) = manual(MS, 64, 6);
    wheel.set(1, 1, MS).unwrap();
    assert!(!wheel.is_stopped());
    wheel.stop();
    wheel.stop();
    assert!(wheel.is_stopped());
    assert_eq!(wheel.len(), 0);
    assert!(!wheel.contains(&1));
    assert_eq!(wheel.set(2, 2, MS), Err(TimerError::Closed));
    assert_eq!(wheel.move_timer(&1, MS), Err(TimerError::Closed));
    assert_eq!(wheel.remove(&1), Err(TimerError::Closed));
    assert_eq!(wheel.drain(), Err(TimerError::Closed));
    clock.advance(10 * MS);
    assert!(wheel.advance().is_empty());
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn memory_goes_back_down_after_most_timers_are_removed() {
    const N: u64 = 200_000;
    let (clock, wheel) = manual(MS, 64, 6);
    let empty = wheel.allocated_bytes();
    for k in 0..N {
        wheel.set(k, k, MS * (1 + (k % 5000) as u32)).unwrap();
    }
    let full = wheel.allocated_bytes();
    assert!(full >= 32 * N as usize, "{full} bytes for {N} timers");
    for k in 0..N {
        if k % 100 != 0 {
            assert_eq!(wheel.remove(&k), Ok(Some(k)));
        }
    }
    let after = wheel.allocated_bytes();
    assert!(after < full / 10, "{after} of {full} bytes kept");
    // The 2000 survivors still fire, on time, after the compaction.
    clock.advance(5000 * MS);
    let fired = wheel.advance();
    assert_eq!(fired.len(), (N / 100) as usize);
    assert!(fired.iter().all(|&(k, v)| k == v && k % 100 == 0));
    assert!(wheel.allocated_bytes() < full / 10);
    // Drain gives everything back.
    for k in 0..N / 2 {
        wheel.set(k, k, MS * 100).unwrap();
    }
    wheel.drain().unwrap();
    assert!(
        wheel.allocated_bytes() <= empty + 1024,
        "{}",
        wheel.allocated_bytes()
    );
}

#[test]
fn handles_are_clone_send_sync_and_clones_share_one_wheel() {
    fn clone_send_sync<T: Clone + Send + Sync>() {}
    clone_send_sync::<TimingWheel<u64, u64>>();
    clone_send_sync::<TimingWheel<String, Vec<u8>, ManualClock>>();

    let (clock, wheel) = manual(MS, 64, 6);
    let other = wheel.clone();
    other.set(1, 1, MS).unwrap();
    assert!(wheel.contains(&1));
    let from_thread = {
        let other = other.clone();
        std::thread::spawn(move || other.set(2, 2, MS))
            .join()
            .unwrap()
    };
    assert_eq!(from_thread, Ok(None));
    drop(other); // not the last handle: the wheel goes on
    clock.advance(MS);
    let mut fired = wheel.advance();
    fired.sort();
    assert_eq!(fired, vec![(1, 1), (2, 2)]);
    assert!(format!("{wheel:?}").contains("TimingWheel"));
    assert_eq!(wheel.tick(), MS);
}

/// Setting a key with a due-but-unprocessed timer replaces it: the old value is returned and
/// only the new one fires.
#[test]
fn replacing_a_due_timer_before_advance_returns_the_old_value() {
    let (clock, wheel) = manual(MS, 4, 3);
    wheel.set(1, 10, 2 * MS).unwrap();
    clock.advance(3 * MS);
    assert_eq!(wheel.set(1, 11, 5 * MS), Ok(Some(10)));
    assert!(wheel.advance().is_empty());
    clock.advance(5 * MS);
    assert_eq!(wheel.advance(), vec![(1, 11)]);
}

/// BUG (reported): `advance` documents "earliest deadline first", but after a clock jump the
/// timers of one higher-level slot come out in list order (last set first). Ticks 70 and 100
/// share slot 1 of level 1 of the default wheel (ticks 64..127).
#[test]
fn advance_returns_earliest_deadline_first_after_a_clock_jump() {
    let (clock, wheel) = manual(MS, 64, 6);
    wheel.set(70, 70, 70 * MS).unwrap();
    wheel.set(100, 100, 100 * MS).unwrap();
    wheel.set(5, 5, 5 * MS).unwrap();
    clock.advance(200 * MS);
    let keys: Vec<u64> = wheel.advance().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![5, 70, 100]);
}

/// BUG (reported): the span is counted from the last processed tick, not from now. A wheel
/// whose driver has nothing to do never processes a tick, so once the clock is more than a
/// span past the last one, every `set` is refused, even of a delay far below the reported
/// `max`. Here: the thread driver (on a manual clock, so this is deterministic), 8 slots × 2
/// levels of 1 ms (max 55 ms), idle for 100 ms, then a 10 ms timer.
#[test]
fn an_idle_thread_driven_wheel_accepts_a_short_delay() {
    let clock = ManualClock::new();
    let wheel = Builder::new(MS)
        .slots_per_level(8)
        .levels(2)
        .clock(clock.clone())
        .spawn(|_: u64, _: u64| {})
        .unwrap();
    clock.advance(100 * MS);
    let got = wheel.set(1, 1, 10 * MS);
    wheel.stop();
    assert_eq!(got, Ok(None), "10 ms refused on a wheel whose max is 55 ms");
}

/// BUG (reported), the same on the manual driver: the documented loop ("call `advance` at
/// `next_deadline`") never calls `advance` while `next_deadline` is `None`, so an empty wheel
/// left alone for longer than its span refuses short delays.
#[test]
fn an_idle_manual_wheel_accepts_a_short_delay() {
    let (clock, wheel) = manual(MS, 8, 2);
    assert_eq!(wheel.next_deadline(), None);
    clock.advance(100 * MS);
    assert_eq!(wheel.set(1, 1, 10 * MS), Ok(None));
}

/// BUG (reported): the builder accepts 2 slots × 1 level, whose span is zero ticks: every
/// timer is refused with `DelayTooLong { max: 0 }`, even a zero delay. Either the builder
/// should refuse the geometry or the wheel should hold a timer.
#[test]
fn every_accepted_geometry_can_hold_a_timer() {
    for (slots, levels) in [(4, 1), (64, 1), (2, 2), (2, 1)] {
        let clock = ManualClock::new();
        let built = Builder::new(MS)
            .slots_per_level(slots)
            .levels(levels)
            .clock(clock.clone())
            .build::<u64, u64>();
        if let Ok(wheel) = built {
            assert_eq!(
                wheel.set(1, 1, Duration::ZERO),
                Ok(None),
                "{slots} x {levels}"
            );
            clock.advance(MS);
            assert_eq!(wheel.advance(), vec![(1, 1)], "{slots} x {levels}");
        }
    }
}
