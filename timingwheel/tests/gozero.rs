//! go-zero's `TimingWheel` test suite (spec §6.1 "Tests"), translated to keel's manual driver.
//!
//! go-zero drives its wheel with a fake ticker of interval `i` (1 minute) and counts ticks;
//! here one tick is one minute of a [`ManualClock`], every "tick" is `clock.advance(TICK)`
//! followed by `wheel.advance()`, and delays are whole ticks (`s·i` → `s * TICK`). Each
//! scenario asserts the timer fires exactly on the expected tick: not before, not after, and
//! once. go-zero's slot counts are not powers of two; each scenario runs on several keel
//! geometries instead (see [`GEOMETRIES`]), the closest power of two first (3 and 5 slots →
//! 4, 10 slots → 8), plus tiny ones so that cascades between levels and wraps of level 0
//! happen inside the scenario.
//!
//! The three go-zero bugs keel fixes each have a test here: a moved timer firing twice
//! (`MoveTimerSoon`), a timer moved earlier after a wrap firing a full rotation late, and the
//! stale key mapping after `Drain` (PR #5753).

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use keel_timex::ManualClock;
use keel_timingwheel::{Builder, ConfigError, TimerError, TimingWheel};

/// go-zero's interval.
const TICK: Duration = Duration::from_secs(60);

/// `(slots_per_level, levels)`: go-zero's 3 and 5 slots → 4 (three levels, span 47 ticks),
/// its 10 slots → 8 (two levels, span 55 ticks), the smallest wheel (2 slots, six levels, span
/// 31 ticks: a cascade on nearly every tick) and the default geometry.
const GEOMETRIES: [(usize, usize); 4] = [(4, 3), (8, 2), (2, 6), (64, 6)];

/// `s` ticks.
fn ticks(s: u32) -> Duration {
    TICK * s
}

/// A wheel on a manual clock, stepped one tick at a time.
struct Harness<K: Hash + Eq, V> {
    clock: ManualClock,
    wheel: TimingWheel<K, V, ManualClock>,
    /// Ticks elapsed since the wheel was built.
    now: u32,
}

impl<K: Hash + Eq + Clone + Debug, V: Debug> Harness<K, V> {
    fn new(slots: usize, levels: usize) -> Self {
        let clock = ManualClock::new();
        let wheel = Builder::new(TICK)
            .slots_per_level(slots)
            .levels(levels)
            .clock(clock.clone())
            .build()
            .expect("valid geometry");
        Harness {
            clock,
            wheel,
            now: 0,
        }
    }

    /// One tick: what fired on it.
    fn tick(&mut self) -> Vec<(K, V)> {
        self.clock.advance(TICK);
        self.now += 1;
        self.wheel.advance()
    }

    /// `n` ticks, none of which may fire anything.
    fn quiet(&mut self, n: u32) {
        for _ in 0..n {
            let fired = self.tick();
            assert!(fired.is_empty(), "tick {}: fired {fired:?}", self.now);
        }
    }

    /// Ticks until tick `until` (absolute) and returns what fired, with the tick it fired on.
    fn run_until(&mut self, until: u32) -> Vec<(u32, K, V)> {
        let mut fired = Vec::new();
        while self.now < until {
            for (k, v) in self.tick() {
                fired.push((self.now, k, v));
            }
        }
        fired
    }
}

/// Runs `scenario` on every geometry, naming the geometry on failure.
fn on_every_geometry(scenario: impl Fn(usize, usize)) {
    for (slots, levels) in GEOMETRIES {
        scenario(slots, levels);
    }
}

/// Asserts `key` fired exactly once, on tick `at`, with `value`, and nothing else fired, when
/// ticking from the harness's tick to `at + 3 * slots` (well past the deadline, through several
/// turns of level 0).
fn assert_fires_once_on<K: Hash + Eq + Clone + Debug, V: Debug + PartialEq>(
    h: &mut Harness<K, V>,
    key: K,
    value: V,
    at: u32,
    slots: usize,
    what: &str,
) {
    let fired = h.run_until(at + 3 * slots as u32);
    assert_eq!(fired, vec![(at, key, value)], "{what}");
    assert!(h.wheel.is_empty(), "{what}: wheel not empty");
}

#[test]
fn new_timing_wheel_rejects_a_zero_interval() {
    let built = Builder::new(Duration::ZERO).build::<u64, u64>();
    assert_eq!(built.err(), Some(ConfigError::ZeroTick));
}

#[test]
fn drain_collects_exactly_the_pending_timers() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::<&str, i32>::new(slots, levels);
        h.wheel.set("first", 3, ticks(4)).unwrap();
        h.wheel.set("second", 5, ticks(7)).unwrap();
        h.wheel.set("third", 7, ticks(7)).unwrap();
        let mut drained = h.wheel.drain().unwrap();
        drained.sort();
        assert_eq!(drained, vec![("first", 3), ("second", 5), ("third", 7)]);
        // A second drain sees nothing, and nothing fires later.
        assert_eq!(h.wheel.drain().unwrap(), vec![]);
        assert!(h.run_until(20).is_empty(), "{slots}x{levels}");
        h.wheel.stop();
        assert_eq!(h.wheel.drain(), Err(TimerError::Closed));
    });
}

#[test]
fn set_timer_soon_fires_on_the_next_tick() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        assert_eq!(h.wheel.set("any", 3, TICK / 2), Ok(None));
        assert!(h.wheel.advance().is_empty(), "fired before any tick");
        assert_fires_once_on(&mut h, "any", 3, 1, slots, "half-tick delay");
    });
}

#[test]
fn set_timer_twice_replaces_the_value_and_fires_once() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        assert_eq!(h.wheel.set("any", 3, ticks(4)), Ok(None));
        assert_eq!(h.wheel.set("any", 5, ticks(7)), Ok(Some(3)));
        assert_eq!(h.wheel.len(), 1);
        assert_fires_once_on(&mut h, "any", 5, 7, slots, "SetTimerTwice");
    });
}

/// go-zero rejects a negative delay with `ErrArgument`; a `Duration` cannot be negative, and
/// the smallest one (zero) is accepted and fires on the next tick.
#[test]
fn set_timer_with_zero_delay_fires_on_the_next_tick() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.quiet(3);
        assert_eq!(h.wheel.set("any", 3, Duration::ZERO), Ok(None));
        assert!(
            h.wheel.advance().is_empty(),
            "zero delay fired on the tick it was set"
        );
        assert_fires_once_on(&mut h, "any", 3, 4, slots, "zero delay");
    });
}

#[test]
fn set_timer_after_close_is_refused() {
    let h = Harness::<&str, i32>::new(4, 3);
    h.wheel.stop();
    assert_eq!(h.wheel.set("any", 3, ticks(1)), Err(TimerError::Closed));
    assert!(!h.wheel.contains("any"));
}

/// go-zero: 3 slots, set 4i, move 7i, move −1 (ignored, no Rust equivalent), move of an
/// unknown key; not fired after 5 ticks, fired once after 3 more; move after stop → closed.
#[test]
fn move_timer_fires_at_the_new_deadline() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.wheel.set("any", 3, ticks(4)).unwrap();
        assert_eq!(h.wheel.move_timer("any", ticks(7)), Ok(true));
        assert_eq!(h.wheel.move_timer("none", ticks(7)), Ok(false));
        assert!(
            !h.wheel.contains("none"),
            "moving an unknown key created it"
        );
        h.quiet(5);
        assert!(h.wheel.contains("any"));
        let fired = h.run_until(8);
        assert_eq!(fired, vec![(7, "any", 3)], "{slots}x{levels}");
        assert!(h.run_until(40).is_empty());
        h.wheel.stop();
        assert_eq!(h.wheel.move_timer("any", ticks(7)), Err(TimerError::Closed));
    });
}

/// go-zero runs the callback at once on a new goroutine when a timer is moved below one
/// interval, and leaves the old entry to fire again at tick 4 (the spec's first go-zero bug).
/// keel moves it to the next tick: it fires there, once, and never at the old deadline.
#[test]
fn move_timer_soon_fires_once_on_the_next_tick_not_twice() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.wheel.set("any", 3, ticks(4)).unwrap();
        assert_eq!(h.wheel.move_timer("any", TICK / 2), Ok(true));
        assert!(h.wheel.advance().is_empty(), "fired without a tick");
        assert_fires_once_on(&mut h, "any", 3, 1, slots, "MoveTimerSoon");
    });
}

/// go-zero: 10 slots, set 4i, move 2i → fires within 3 ticks. keel: exactly on tick 2.
#[test]
fn move_timer_earlier_fires_at_the_earlier_deadline() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.wheel.set("any", 3, ticks(4)).unwrap();
        assert_eq!(h.wheel.move_timer("any", ticks(2)), Ok(true));
        assert_fires_once_on(&mut h, "any", 3, 2, slots, "MoveTimerEarlier");
    });
}

/// The spec's second go-zero bug: 10 slots, 5 ticks elapsed, a timer set for 8 (it sits at
/// raw slot 3, past the wrap) moved to 2 is compared by raw slot index and fires after 12
/// ticks. keel: after exactly 2.
#[test]
fn move_earlier_across_a_wrap_is_not_a_rotation_late() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.quiet(5);
        h.wheel.set("any", 3, ticks(8)).unwrap();
        assert_eq!(h.wheel.move_timer("any", ticks(2)), Ok(true));
        assert_fires_once_on(&mut h, "any", 3, 7, slots, "moved earlier after a wrap");
    });
    // The same after the timer has waited a while, and with several wraps of level 0 between.
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.quiet(5);
        h.wheel.set("any", 3, ticks(20)).unwrap();
        h.quiet(6);
        assert_eq!(h.wheel.move_timer("any", ticks(2)), Ok(true));
        assert_fires_once_on(&mut h, "any", 3, 13, slots, "moved earlier mid-wait");
    });
}

#[test]
fn remove_timer_cancels_and_tolerates_unknown_keys() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.wheel.set("any", 3, ticks(1)).unwrap();
        assert_eq!(h.wheel.remove("any"), Ok(Some(3)));
        assert_eq!(h.wheel.remove("any"), Ok(None));
        assert_eq!(h.wheel.remove("none"), Ok(None));
        assert!(h.wheel.is_empty());
        h.quiet(5);
        h.wheel.stop();
        assert_eq!(h.wheel.remove("any"), Err(TimerError::Closed));
    });
}

/// go-zero `TestTimingWheel_SetTimer`: 5 slots (keel: 4, and the other geometries).
#[test]
fn set_timer_fires_exactly_on_its_tick() {
    on_every_geometry(|slots, levels| {
        for s in [5, 7, 10, 12] {
            let mut h = Harness::new(slots, levels);
            h.wheel.set("any", s, ticks(s)).unwrap();
            assert_fires_once_on(
                &mut h,
                "any",
                s,
                s,
                slots,
                &format!("{slots}x{levels} s={s}"),
            );
        }
    });
}

#[test]
fn set_and_move_then_start_fires_on_the_move_tick() {
    let cases = [(3, 5), (3, 7), (3, 10), (3, 12), (5, 7), (5, 10), (5, 12)];
    on_every_geometry(|slots, levels| {
        for (s, m) in cases {
            let mut h = Harness::new(slots, levels);
            h.wheel.set("any", s, ticks(s)).unwrap();
            assert_eq!(h.wheel.move_timer("any", ticks(m)), Ok(true));
            let what = format!("{slots}x{levels} set {s} move {m}");
            assert_fires_once_on(&mut h, "any", s, m, slots, &what);
        }
    });
}

#[test]
fn set_and_move_twice_fires_on_the_last_move() {
    let cases = [
        (3, 5, 10),
        (3, 7, 12),
        (3, 10, 15),
        (3, 12, 17),
        (5, 7, 12),
        (5, 10, 17),
        (5, 12, 17),
    ];
    on_every_geometry(|slots, levels| {
        for (s, m1, m2) in cases {
            let mut h = Harness::new(slots, levels);
            h.wheel.set("any", s, ticks(s)).unwrap();
            assert_eq!(h.wheel.move_timer("any", ticks(m1)), Ok(true));
            assert_eq!(h.wheel.move_timer("any", ticks(m2)), Ok(true));
            let what = format!("{slots}x{levels} set {s} move {m1} then {m2}");
            assert_fires_once_on(&mut h, "any", s, m2, slots, &what);
        }
    });
}

#[test]
fn elapsed_and_set_fires_on_elapsed_plus_delay() {
    let cases = [(3, 5), (3, 7), (3, 10), (3, 12), (5, 7), (5, 10), (5, 12)];
    on_every_geometry(|slots, levels| {
        for (e, s) in cases {
            let mut h = Harness::new(slots, levels);
            h.quiet(e);
            h.wheel.set("any", s, ticks(s)).unwrap();
            let what = format!("{slots}x{levels} elapsed {e} set {s}");
            assert_fires_once_on(&mut h, "any", s, e + s, slots, &what);
        }
    });
}

#[test]
fn elapsed_and_set_then_move_fires_on_elapsed_plus_move() {
    let cases = [
        (3, 5, 10),
        (3, 7, 12),
        (3, 10, 15),
        (3, 12, 16),
        (5, 7, 12),
        (5, 10, 15),
        (5, 12, 17),
    ];
    on_every_geometry(|slots, levels| {
        for (e, s, m) in cases {
            let mut h = Harness::new(slots, levels);
            h.quiet(e);
            h.wheel.set("any", s, ticks(s)).unwrap();
            assert_eq!(h.wheel.move_timer("any", ticks(m)), Ok(true));
            let what = format!("{slots}x{levels} elapsed {e} set {s} move {m}");
            assert_fires_once_on(&mut h, "any", s, e + m, slots, &what);
        }
    });
}

/// go-zero `TestMoveAndRemoveTask`: 10 slots (keel: 8), set 8, 6 ticks, move 7 (to tick 13),
/// 3 ticks, remove, 30 ticks: never fires.
#[test]
fn move_and_remove_task_never_fires() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.wheel.set("any", 3, ticks(8)).unwrap();
        h.quiet(6);
        assert_eq!(h.wheel.move_timer("any", ticks(7)), Ok(true));
        h.quiet(3);
        assert_eq!(h.wheel.remove("any"), Ok(Some(3)), "{slots}x{levels}");
        h.quiet(30);
        assert!(h.wheel.is_empty());
    });
}

#[test]
fn drain_closure_bug_delivers_matching_pairs() {
    on_every_geometry(|slots, levels| {
        let h = Harness::<u32, u32>::new(slots, levels);
        for i in 0..10 {
            h.wheel.set(i, i * 10, ticks(i + 1)).unwrap();
        }
        let mut drained = h.wheel.drain().unwrap();
        drained.sort();
        assert_eq!(drained, (0..10).map(|i| (i, i * 10)).collect::<Vec<_>>());
    });
}

/// go-zero `RunTasksClosureBug` / `RunTasksRaceCondition`: 10 and 50 timers due on the same
/// tick each fire once, with their own value.
#[test]
fn run_tasks_on_the_same_tick_each_fire_once_with_their_value() {
    on_every_geometry(|slots, levels| {
        for n in [10u32, 50] {
            let mut h = Harness::<u32, u32>::new(slots, levels);
            for i in 0..n {
                h.wheel.set(i, i * 7 + 1, ticks(3)).unwrap();
            }
            let mut fired = h.run_until(3 + 3 * slots as u32);
            fired.sort();
            let want: Vec<_> = (0..n).map(|i| (3, i, i * 7 + 1)).collect();
            assert_eq!(fired, want, "{slots}x{levels} n={n}");
        }
    });
}

/// The spec's third go-zero bug (fixed upstream after the snapshot, PR #5753): `Drain` left the
/// key mapping behind, so a later `SetTimer` of a drained key updated a detached entry and
/// never fired. keel forgets drained keys.
#[test]
fn a_key_set_again_after_drain_fires() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::new(slots, levels);
        h.wheel.set("any", 3, ticks(4)).unwrap();
        h.quiet(1);
        assert_eq!(h.wheel.drain().unwrap(), vec![("any", 3)]);
        assert!(!h.wheel.contains("any"));
        assert_eq!(
            h.wheel.set("any", 5, ticks(2)),
            Ok(None),
            "drained key remembered"
        );
        assert_eq!(h.wheel.move_timer("any", ticks(3)), Ok(true));
        assert_fires_once_on(&mut h, "any", 5, 4, slots, "set after drain");
    });
}

/// go-zero issue #5510: with `steps = k·n` a timer fires exactly at tick `k·n`, not a
/// rotation late. In keel: delays of whole turns of level 0 (and of the level above).
#[test]
fn delays_of_whole_rotations_fire_exactly() {
    on_every_geometry(|slots, levels| {
        let n = slots as u32;
        for k in [1, 2, n] {
            let s = k * n;
            let mut h = Harness::new(slots, levels);
            // Stay within the span of the smallest geometries.
            if h.wheel.set("any", s, ticks(s)).is_err() {
                assert!(s > 31, "{slots}x{levels}: {s} ticks refused");
                continue;
            }
            let what = format!("{slots}x{levels} {k} turns");
            assert_fires_once_on(&mut h, "any", s, s, slots, &what);
        }
    });
}

/// go-zero issue #3619: a wheel that misses ticks drifts late forever, one slot per received
/// tick. keel catches up from the clock: after a jump, one `advance` fires everything due,
/// and later timers are still on time.
#[test]
fn missed_ticks_are_caught_up_in_one_advance() {
    on_every_geometry(|slots, levels| {
        let mut h = Harness::<u32, u32>::new(slots, levels);
        for s in 1..=10 {
            h.wheel.set(s, s, ticks(s)).unwrap();
        }
        h.wheel.set(20, 20, ticks(20)).unwrap();
        h.clock.advance(ticks(10));
        h.now = 10;
        let mut fired = h.wheel.advance();
        fired.sort();
        assert_eq!(fired, (1..=10).map(|s| (s, s)).collect::<Vec<_>>());
        assert_eq!(h.run_until(40), vec![(20, 20, 20)], "{slots}x{levels}");
    });
}
