//! The `keel-timingwheel` suite: keel's keyed timing wheel against tokio-util's `DelayQueue`,
//! plain and keyed by a `HashMap<u64, Key>` beside it; `u64` keys, 1 ms ticks, one thread.

use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use tokio::runtime::Runtime;

use crate::figures::Figures;

use crate::timingwheel::{
    DelayQueueExpiry, DelayQueueKeyed, DelayQueueKeyedExpiry, DelayQueueTimers, Delays,
    EXPIRE_BATCH, ExpiryUnderTest, FILL, Filled, Keel, KeelManual, KeelStream, MoveOps, Rng,
    TimersUnderTest, fill_counted, runtime,
};

pub const SMALL_HELD_DELAY: Duration = Duration::from_secs(1);
const EXPIRY_SAMPLES: usize = 10;
const EXPIRY_WARM_UP: Duration = Duration::from_millis(500);
const EXPIRY_MEASUREMENT: Duration = Duration::from_millis(1500);
const FILL_SEED: u64 = 0x7157_1E5E;
const DELAY_SEED: u64 = 0xDE1A_7500;
const MOVE_SEED: u64 = 0x30FE_0001;

/// Every group of this suite (for the bench target), then the memory figures.
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// Every group of this suite.
pub fn run(c: &mut Criterion) -> Figures {
    let rt = runtime();
    let _in_runtime = rt.enter();
    let mut figures = Figures::default();
    // Each queue counted filled as the suite times it, then with its capacity reserved.
    let mut keel = filled::<Keel>(&mut figures);
    let mut peer = filled::<DelayQueueTimers>(&mut figures);
    let mut keyed = filled::<DelayQueueKeyed>(&mut figures);

    let mut delays = Delays::draw(&mut Rng::new(DELAY_SEED));

    let (mut small_keel, mut small_peer, mut small_keyed) = (small(), small(), small());
    let mut g = op_group(c, "timingwheel set+remove small");
    set_remove::<Keel>(&mut g, &mut small_keel, &mut delays);
    set_remove::<DelayQueueTimers>(&mut g, &mut small_peer, &mut delays);
    set_remove::<DelayQueueKeyed>(&mut g, &mut small_keyed, &mut delays);
    g.finish();

    let mut g = op_group(c, "timingwheel set+remove 1M");
    set_remove(&mut g, &mut keel.timers, &mut delays);
    set_remove(&mut g, &mut peer.timers, &mut delays);
    set_remove(&mut g, &mut keyed.timers, &mut delays);
    g.finish();

    let mut keel_moves = MoveOps::draw(&keel.handles, &mut Rng::new(MOVE_SEED));
    let mut peer_moves = MoveOps::draw(&peer.handles, &mut Rng::new(MOVE_SEED));
    let mut keyed_moves = MoveOps::draw(&keyed.handles, &mut Rng::new(MOVE_SEED));
    let mut g = op_group(c, "timingwheel move 1M");
    reset(&mut g, &mut keel.timers, &mut keel_moves);
    reset(&mut g, &mut peer.timers, &mut peer_moves);
    reset(&mut g, &mut keyed.timers, &mut keyed_moves);
    g.finish();
    // The expiry groups run without the filled queues' 200 MB in memory.
    drop((keel, peer, keyed, keel_moves, peer_moves, keyed_moves));

    let mut manual = KeelManual::new();
    let mut stream = KeelStream::new();
    let mut queue = DelayQueueExpiry::new();
    let mut keyed_queue = DelayQueueKeyedExpiry::new();
    for (name, part) in [
        ("timingwheel set+expire 100k", Part::SetAndExpire),
        ("timingwheel expire 100k", Part::Expire),
    ] {
        let mut g = expiry_group(c, name);
        expiry(&mut g, &rt, &mut manual, part);
        expiry(&mut g, &rt, &mut stream, part);
        expiry(&mut g, &rt, &mut queue, part);
        expiry(&mut g, &rt, &mut keyed_queue, part);
        g.finish();
    }

    figures
}

/// A `T` filled with [`FILL`] timers.
fn filled<T: TimersUnderTest>(figures: &mut Figures) -> Filled<T> {
    let mut count = |name, build: &dyn Fn() -> T| {
        let (filled, memory) = fill_counted(build, FILL, &mut Rng::new(FILL_SEED));
        if let Some((bytes, blocks)) = memory {
            figures.add("timingwheel heap per timer", name, bytes, "B");
            figures.add("timingwheel live heap blocks", name, blocks as f64, "");
            if let Some(r) = filled.timers.allocated_bytes() {
                let per_timer = r as f64 / filled.timers.len() as f64;
                figures.add(
                    "timingwheel allocated_bytes() per timer",
                    name,
                    per_timer,
                    "B",
                );
            }
        }
        filled
    };
    let filled = count(T::NAME, &T::new);
    drop(count(T::CAPACITY_NAME, &|| T::with_capacity(FILL)));
    filled
}

/// A queue holding one timer, earlier than any set while timed.
fn small<T: TimersUnderTest>() -> T {
    let mut timers = T::new();
    timers.set(u64::MAX, SMALL_HELD_DELAY);
    timers
}

fn op_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g
}

fn expiry_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(EXPIRY_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(EXPIRY_WARM_UP)
        .measurement_time(EXPIRY_MEASUREMENT)
        .throughput(Throughput::Elements(EXPIRE_BATCH));
    g
}

/// One set of a new key and its removal per iteration.
fn set_remove<T: TimersUnderTest>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    timers: &mut T,
    delays: &mut Delays,
) {
    let mut key = FILL as u64;
    per_op(g, timers, "set+remove", |t| {
        let timer = t.set(key, delays.next_delay());
        key += 1;
        t.remove(&timer)
    });
}

/// One move of a held timer per iteration.
fn reset<T: TimersUnderTest>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    timers: &mut T,
    moves: &mut MoveOps<T::Handle>,
) {
    per_op(g, timers, "moves", |t| {
        let (timer, delay) = moves.next_move();
        t.reset(&timer, delay)
    });
}

/// `op` once per iteration, each coming back `true`.
fn per_op<T: TimersUnderTest>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    timers: &mut T,
    what: &str,
    mut op: impl FnMut(&mut T) -> bool,
) {
    let held = timers.len();
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| {
            let mut done = 0u64;
            let start = Instant::now();
            for _ in 0..iters {
                done += u64::from(op(timers));
            }
            let elapsed = start.elapsed();
            assert_eq!(done, iters, "{}: {what}", T::NAME);
            elapsed
        })
    });
    assert_eq!(timers.len(), held, "{}: timers held after {what}", T::NAME);
}

/// Which part of an expiry batch a group times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    SetAndExpire,
    Expire,
}

/// One batch of [`EXPIRE_BATCH`] timers per iteration.
fn expiry<E: ExpiryUnderTest>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    e: &mut E,
    part: Part,
) {
    g.bench_function(E::NAME, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = e.batch(rt, EXPIRE_BATCH);
                    match part {
                        Part::SetAndExpire => t.set + t.expire,
                        Part::Expire => t.expire,
                    }
                })
                .sum()
        })
    });
}
