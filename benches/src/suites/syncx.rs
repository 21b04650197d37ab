//! The `keel-syncx` suite: keel's singleflight, limit and pool against their peers, all in
//! one run so every ratio is of one run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};

use crate::figures::Figures;
use crate::syncx::{
    AsyncSingleflight, Batch, CoalescerUnderTest, KEY, KeelLimit, KeelPool, KeelRun, KeelRunAsync,
    LIMIT_CAPACITY, LeaderUnderTest, LimitUnderTest, MutexCoalescer, MutexCondvarLimit,
    MutexVecPool, POOL_SIZE, PoolUnderTest, SpawnOnly, TASKS, TokioSemaphore, WakeFloor, runtime,
};
use crate::tally::TalliedGroup;

const TASKS_WARM_UP: Duration = Duration::from_millis(500);
const TASKS_MEASUREMENT: Duration = Duration::from_millis(1500);

/// Every group of this suite (for the bench target).
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// Every group of this suite; a warning for an empty `try_acquire` or a failed `get`.
pub fn run(c: &mut Criterion) -> Figures {
    let mut g = c.benchmark_group("syncx singleflight leader");
    g.throughput(Throughput::Elements(1));
    leader::<KeelRun>(&mut g);
    leader::<KeelRunAsync>(&mut g);
    leader::<AsyncSingleflight>(&mut g);
    leader::<MutexCoalescer>(&mut g);
    g.finish();

    let rt = runtime();
    let mut g = c.benchmark_group("syncx singleflight 100 tasks");
    g.warm_up_time(TASKS_WARM_UP)
        .measurement_time(TASKS_MEASUREMENT)
        .throughput(Throughput::Elements(TASKS as u64));
    batch::<KeelRunAsync>(&mut g, &rt);
    batch::<AsyncSingleflight>(&mut g, &rt);
    batch::<WakeFloor>(&mut g, &rt);
    batch::<SpawnOnly>(&mut g, &rt);
    g.finish();
    drop(rt);

    let mut calls = Vec::new();
    for threads in [1, 2] {
        let mut g = TalliedGroup::new(
            c,
            format!("syncx limit try_acquire+release {threads}t"),
            threads,
            &mut calls,
        );
        limit::<KeelLimit>(&mut g);
        limit::<TokioSemaphore>(&mut g);
        limit::<MutexCondvarLimit>(&mut g);
        g.finish();
    }
    for threads in [1, 2] {
        let mut g = TalliedGroup::new(
            c,
            format!("syncx pool get+put {threads}t"),
            threads,
            &mut calls,
        );
        pool::<KeelPool>(&mut g);
        pool::<MutexVecPool>(&mut g);
        g.finish();
    }
    let mut figures = Figures::default();
    figures.check_tallies(&calls, "calls that came back empty");
    figures
}

/// One uncontended flight per iteration, the same key each time.
fn leader<L: LeaderUnderTest>(g: &mut BenchmarkGroup<'_, WallTime>) {
    let subject = L::default();
    g.bench_function(L::NAME, |b| {
        b.iter(|| subject.lead(black_box(KEY), black_box(7)))
    });
}

/// One batch of [`TASKS`] tasks on one key per iteration.
fn batch<C: CoalescerUnderTest>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
) {
    let batch = Arc::new(Batch::<C>::default());
    g.bench_function(C::NAME, |b| b.iter_custom(|iters| batch.time(rt, iters)));
}

fn limit<L: LimitUnderTest>(g: &mut TalliedGroup<'_, '_>) {
    let subject = L::with_capacity(LIMIT_CAPACITY);
    g.bench(&subject, L::NAME, L::try_acquire_release);
    assert_eq!(
        subject.available(),
        LIMIT_CAPACITY,
        "{}: permits returned",
        L::NAME
    );
}

fn pool<P: PoolUnderTest>(g: &mut TalliedGroup<'_, '_>) {
    let subject = P::with_max_size(POOL_SIZE);
    g.bench(&subject, P::NAME, P::get_put);
}
