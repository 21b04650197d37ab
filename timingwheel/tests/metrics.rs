//! Feature `metrics`: `keel_timingwheel_timers` and `keel_timingwheel_operations_total`
//! move exactly as the operations made.
//!
//! Each test builds its wheel inside `metrics::with_local_recorder` with a recorder of its
//! own: the handles are registered then, and keep recording into that recorder afterwards
//! (checked first, by `handles_registered_under_a_local_recorder_keep_recording_into_it`),
//! so tests running in parallel never see each other's series.
//!
//! The debugging recorder's snapshot takes the counters' values (they restart from 0) and
//! the gauges' (they read 0 until set again), so a snapshot after each step gives that
//! step's counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::Duration;

use keel_timex::{Clock, ManualClock};
use keel_timingwheel::{Builder, TimerError, TimingWheel};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);
const OPS: &str = "keel_timingwheel_operations_total";
const TIMERS: &str = "keel_timingwheel_timers";

/// One snapshot of the series labelled `name`: the operation counters by `op` and the
/// timers gauge, as the snapshot found them (absent: never registered).
#[derive(Debug, Default, PartialEq)]
struct Read {
    ops: BTreeMap<String, u64>,
    timers: Option<f64>,
}

impl Read {
    fn op(&self, op: &str) -> u64 {
        self.ops.get(op).copied().unwrap_or(0)
    }
}

fn label<'k>(key: &'k CompositeKey, name: &str) -> Option<&'k str> {
    key.key()
        .labels()
        .find(|l| l.key() == name)
        .map(|l| l.value())
}

fn read(snapshotter: &Snapshotter, name: &str) -> Read {
    let mut read = Read::default();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if label(&key, "name") != Some(name) {
            continue;
        }
        match (key.kind(), key.key().name(), value) {
            (MetricKind::Counter, OPS, DebugValue::Counter(n)) => {
                let op = label(&key, "op").expect("every operation has an op label");
                assert!(
                    ["set", "move", "remove", "fire"].contains(&op),
                    "unexpected op {op}"
                );
                assert_eq!(key.key().labels().count(), 2, "labels: name and op only");
                *read.ops.entry(op.to_owned()).or_default() += n;
            }
            (MetricKind::Gauge, TIMERS, DebugValue::Gauge(v)) => {
                assert_eq!(key.key().labels().count(), 1, "labels: name only");
                read.timers = Some(v.into_inner());
            }
            other => panic!("unexpected series {other:?}"),
        }
    }
    read
}

/// A 1 ms wheel on a manual clock named `name`, its handles registered with `recorder`.
fn manual_wheel(
    recorder: &DebuggingRecorder,
    name: &'static str,
) -> (TimingWheel<u8, u32, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let wheel = metrics::with_local_recorder(recorder, || {
        Builder::new(MS)
            .slots_per_level(4)
            .levels(3)
            .clock(clock.clone())
            .name(name)
            .build()
            .unwrap()
    });
    (wheel, clock)
}

#[test]
fn handles_registered_under_a_local_recorder_keep_recording_into_it() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (wheel, clock) = manual_wheel(&recorder, "local");
    // Registration alone shows the series, the gauge at 0.
    let at_build = read(&snapshotter, "local");
    assert_eq!(at_build.timers, Some(0.0));
    assert_eq!(at_build.ops.values().sum::<u64>(), 0);

    // Outside the closure: the handles still record into `recorder`.
    wheel.set(1, 10, MS).unwrap();
    wheel.set(2, 20, 5 * MS).unwrap();
    let r = read(&snapshotter, "local");
    assert_eq!((r.op("set"), r.timers), (2, Some(2.0)));
    clock.advance(MS);
    assert_eq!(wheel.advance(), vec![(1, 10)]);
    let r = read(&snapshotter, "local");
    assert_eq!((r.op("fire"), r.timers), (1, Some(1.0)));

    // A wheel built outside any recorder records nowhere: not into this one.
    let silent = Builder::new(MS).name("silent").build::<u8, u32>().unwrap();
    silent.set(1, 1, MS).unwrap();
    assert_eq!(read(&snapshotter, "silent"), Read::default());
}

#[test]
fn the_default_name_is_timingwheel_and_names_keep_series_apart() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (default, other) = metrics::with_local_recorder(&recorder, || {
        let default = Builder::new(MS).build::<u8, ()>().unwrap();
        let other = Builder::new(MS)
            .name(String::from("other"))
            .build::<u8, ()>()
            .unwrap();
        (default, other)
    });
    default.set(1, (), MS).unwrap();
    other.set(1, (), MS).unwrap();
    other.set(2, (), MS).unwrap();
    let snapshot = snapshotter.snapshot().into_vec();
    let names: BTreeSet<&str> = snapshot
        .iter()
        .filter_map(|(k, ..)| label(k, "name"))
        .collect();
    assert_eq!(names, BTreeSet::from(["other", "timingwheel"]));
    let count = |name: &str| {
        snapshot
            .iter()
            .filter(|(k, ..)| label(k, "name") == Some(name) && label(k, "op") == Some("set"))
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => *n,
                v => panic!("{v:?}"),
            })
            .sum::<u64>()
    };
    assert_eq!((count("timingwheel"), count("other")), (1, 2));
}

#[test]
fn refused_operations_count_nothing_and_stop_drain_and_drop_empty_the_gauge() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (wheel, _clock) = manual_wheel(&recorder, "edges");
    let max = wheel.max_delay();
    assert!(matches!(
        wheel.set(9, 9, max + MS),
        Err(TimerError::DelayTooLong { .. })
    ));
    assert!(matches!(
        wheel.move_timer(&9, max + MS),
        Err(TimerError::DelayTooLong { .. })
    ));
    assert_eq!(wheel.move_timer(&9, MS), Ok(false));
    assert_eq!(wheel.remove(&9), Ok(None));
    assert!(wheel.advance().is_empty());
    let r = read(&snapshotter, "edges");
    assert_eq!(r.ops.values().sum::<u64>(), 0, "{r:?}");

    // drain empties the wheel without firing: no operation, the gauge at 0.
    for k in 0..3 {
        wheel.set(k, 0, 3 * MS).unwrap();
    }
    assert_eq!(read(&snapshotter, "edges").timers, Some(3.0));
    assert_eq!(wheel.drain().unwrap().len(), 3);
    let r = read(&snapshotter, "edges");
    assert_eq!((r.op("set"), r.op("fire"), r.timers), (0, 0, Some(0.0)));

    // stop discards the pending timers: the gauge goes to 0, later operations are refused
    // and count nothing.
    wheel.set(1, 1, 2 * MS).unwrap();
    wheel.set(2, 2, 2 * MS).unwrap();
    assert_eq!(read(&snapshotter, "edges").timers, Some(2.0));
    wheel.stop();
    assert_eq!(read(&snapshotter, "edges").timers, Some(0.0));
    assert_eq!(wheel.set(3, 3, MS), Err(TimerError::Closed));
    assert_eq!(wheel.remove(&1), Err(TimerError::Closed));
    let r = read(&snapshotter, "edges");
    assert_eq!(r.ops.values().sum::<u64>(), 0, "{r:?}");

    // Dropping a wheel that still holds timers takes them with it.
    let (wheel, _clock) = manual_wheel(&recorder, "dropped");
    wheel.set(1, 1, 2 * MS).unwrap();
    assert_eq!(read(&snapshotter, "dropped").timers, Some(1.0));
    drop(wheel);
    assert_eq!(read(&snapshotter, "dropped").timers, Some(0.0));
}

#[test]
fn the_thread_driver_counts_every_expiry_it_hands_out() {
    const N: u32 = 50;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (tx, rx) = mpsc::channel();
    let wheel = metrics::with_local_recorder(&recorder, || {
        Builder::new(MS)
            .name("spawned")
            .spawn(move |key: u32, _: ()| tx.send(key).unwrap())
            .unwrap()
    });
    for key in 0..N {
        wheel.set(key, (), (key % 5) * MS).unwrap();
    }
    let mut got = BTreeSet::new();
    for _ in 0..N {
        // A bound against a hang, not a timing assertion.
        got.insert(rx.recv_timeout(Duration::from_secs(60)).unwrap());
    }
    assert_eq!(got, (0..N).collect());
    // Counted under the lock, before the callbacks ran; the last poll left the wheel empty.
    let r = read(&snapshotter, "spawned");
    assert_eq!((r.op("set"), r.op("fire"), r.timers), (50, 50, Some(0.0)));
    wheel.stop();
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn the_stream_driver_counts_every_expiry_it_hands_out() {
    use futures_core::Stream;
    use keel_timex::TokioClock;
    use std::pin::Pin;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (wheel, mut items) = metrics::with_local_recorder(&recorder, || {
        Builder::new(MS)
            .name("stream")
            .clock(TokioClock::new())
            .stream::<u32, ()>()
            .unwrap()
    });
    for key in 0..20 {
        wheel.set(key, (), (key % 7) * MS).unwrap();
    }
    assert!(wheel.move_timer(&3, 30 * MS).unwrap());
    assert_eq!(wheel.remove(&4).unwrap(), Some(()));
    let mut got = BTreeSet::new();
    for _ in 0..19 {
        let next = std::future::poll_fn(|cx| Pin::new(&mut items).poll_next(cx));
        let item = tokio::time::timeout(Duration::from_secs(10), next)
            .await
            .expect("the stream hung");
        got.insert(item.unwrap().0);
    }
    assert_eq!(got, (0..20).filter(|&k| k != 4).collect());
    let r = read(&snapshotter, "stream");
    let ops = (r.op("set"), r.op("move"), r.op("remove"), r.op("fire"));
    assert_eq!((ops, r.timers), ((20, 1, 1, 19), Some(0.0)));
    wheel.stop();
}

/// Keys are `0..KEYS`.
const KEYS: u8 = 8;

#[derive(Debug, Clone)]
enum Op {
    /// Set `key` to fire after this many ticks (0 included), with a value.
    Set(u8, u32, u32),
    /// Move `key` to this many ticks from now.
    Move(u8, u32),
    Remove(u8),
    /// Move the manual clock by this many ticks without calling `advance`.
    Clock(u32),
    /// Move the manual clock by this many ticks, then `advance`.
    Advance(u32),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    // Delays and steps cover all three levels of a 4-slot wheel (max delay 4^3 - 4^2 - 1 =
    // 47 ticks), so timers cascade before they fire.
    prop_oneof![
        6 => (0..KEYS, any::<u32>(), 0..48u32).prop_map(|(k, v, d)| Op::Set(k, v, d)),
        3 => (0..KEYS, 0..48u32).prop_map(|(k, d)| Op::Move(k, d)),
        3 => (0..KEYS).prop_map(Op::Remove),
        2 => (1..20u32).prop_map(Op::Clock),
        5 => (0..20u32).prop_map(Op::Advance),
        1 => Just(Op::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random sequences of set, move, remove, drain, clock steps and advances on a manual
    /// clock, against a model of the timers (key -> value and deadline tick): after each
    /// step, each `op` counter moved by exactly what the model says was applied (a set
    /// always; a move or remove only when the key had a timer; a fire for each expiry
    /// `advance` delivered, which must be exactly the model's due timers) and the gauge,
    /// whenever the step changed the wheel, equals the model's size.
    #[test]
    fn counters_and_gauge_follow_a_model(ops in prop::collection::vec(op(), 1..80)) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let (wheel, clock) = manual_wheel(&recorder, "model");
        let start = clock.now();
        let now_tick = || ((clock.now() - start).as_nanos() / MS.as_nanos()) as u64;
        // key -> (value, deadline tick).
        let mut model: BTreeMap<u8, (u32, u64)> = BTreeMap::new();
        for op in ops {
            // What this step must count, and whether it sets the gauge.
            let mut want = BTreeMap::<&str, u64>::new();
            let mut gauge_set = false;
            match op {
                Op::Set(k, v, d) => {
                    let old = wheel.set(k, v, d * MS).unwrap();
                    prop_assert_eq!(old, model.get(&k).map(|&(v, _)| v));
                    // Whole ticks on a whole-tick clock: `d` ticks on, a zero delay the next.
                    model.insert(k, (v, now_tick() + u64::from(d.max(1))));
                    want.insert("set", 1);
                    gauge_set = true;
                }
                Op::Move(k, d) => {
                    let found = wheel.move_timer(&k, d * MS).unwrap();
                    prop_assert_eq!(found, model.contains_key(&k));
                    if let Some(entry) = model.get_mut(&k) {
                        entry.1 = now_tick() + u64::from(d.max(1));
                        want.insert("move", 1);
                    }
                }
                Op::Remove(k) => {
                    let removed = wheel.remove(&k).unwrap();
                    prop_assert_eq!(removed, model.remove(&k).map(|(v, _)| v));
                    if removed.is_some() {
                        want.insert("remove", 1);
                        gauge_set = true;
                    }
                }
                Op::Clock(ticks) => {
                    clock.advance(ticks * MS);
                }
                Op::Advance(ticks) => {
                    clock.advance(ticks * MS);
                    let now = now_tick();
                    let mut fired = wheel.advance();
                    fired.sort();
                    let due: Vec<(u8, u32)> = model
                        .iter()
                        .filter(|&(_, &(_, at))| at <= now)
                        .map(|(&k, &(v, _))| (k, v))
                        .collect();
                    prop_assert_eq!(&fired, &due);
                    model.retain(|_, &mut (_, at)| at > now);
                    if !fired.is_empty() {
                        want.insert("fire", fired.len() as u64);
                        gauge_set = true;
                    }
                }
                Op::Drain => {
                    let drained = wheel.drain().unwrap();
                    prop_assert_eq!(drained.len(), model.len());
                    model.clear();
                    gauge_set = true;
                }
            }
            prop_assert_eq!(wheel.len(), model.len());
            let r = read(&snapshotter, "model");
            for op in ["set", "move", "remove", "fire"] {
                let expected = want.get(op).copied().unwrap_or(0);
                prop_assert_eq!(r.op(op), expected, "op {} after {:?}", op, want);
            }
            if gauge_set {
                prop_assert_eq!(r.timers, Some(model.len() as f64));
            }
        }
        // Every series was there from the build on: four counters and the gauge.
        wheel.set(0, 0, MS).unwrap();
        let r = read(&snapshotter, "model");
        prop_assert_eq!(r.ops.len(), 4);
        prop_assert_eq!(r.timers, Some(wheel.len() as f64));
    }
}
