//! The `keel-rollingwindow` suite: add on 1 and 2 threads, and a breaker-style reduce.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};

use crate::threads::time_on_threads;
use crate::window::{Keel, MutexWindow, RsZero, RustZeroCore, WindowUnderTest};

pub const SIZE: usize = 40;
pub const INTERVAL: Duration = Duration::from_millis(250);
const REDUCE_INTERVAL: Duration = Duration::from_millis(50);
const FILL_EVERY: Duration = Duration::from_millis(10);

/// Every group of this suite.
pub fn all(c: &mut Criterion) {
    add(c, 1);
    add(c, 2);
    reduce(c);
}

fn add(c: &mut Criterion, threads: usize) {
    let mut group = c.benchmark_group(format!("rollingwindow add {threads}t"));
    // One iteration is one add on each thread, so criterion's elements/s is the aggregate.
    group.throughput(Throughput::Elements(threads as u64));
    add_on::<Keel>(&mut group, threads);
    add_on::<MutexWindow>(&mut group, threads);
    add_on::<RustZeroCore>(&mut group, threads);
    add_on::<RsZero>(&mut group, threads);
    group.finish();
}

fn add_on<W: WindowUnderTest>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
    let window = W::with_buckets(SIZE, INTERVAL);
    group.bench_function(W::NAME, |b| {
        b.iter_custom(|iters| time_on_threads(threads, iters, &window, |w| w.add(black_box(1))))
    });
}

/// `reduce` over a full window: the read a breaker does before each decision.
pub fn reduce(c: &mut Criterion) {
    let keel = Keel::with_buckets(SIZE, REDUCE_INTERVAL);
    let mutex = MutexWindow::with_buckets(SIZE, REDUCE_INTERVAL);
    let rust_zero = RustZeroCore::with_buckets(SIZE, REDUCE_INTERVAL);
    let rs_zero = RsZero::with_buckets(SIZE, REDUCE_INTERVAL);
    let writes: [&(dyn Fn() + Sync); 4] = [
        &|| keel.add(1),
        &|| mutex.add(1),
        &|| rust_zero.add(1),
        &|| rs_zero.add(1),
    ];
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                writes.iter().for_each(|write| write());
                thread::sleep(FILL_EVERY);
            }
        });
        thread::sleep(REDUCE_INTERVAL * (SIZE as u32 + 1));

        let mut group = c.benchmark_group("rollingwindow reduce 40 buckets");
        group.throughput(Throughput::Elements(1));
        reduce_on(&mut group, &keel);
        reduce_on(&mut group, &mutex);
        reduce_on(&mut group, &rust_zero);
        reduce_on(&mut group, &rs_zero);
        group.finish();
        stop.store(true, Ordering::Relaxed);
    });
}

fn reduce_on<W: WindowUnderTest>(group: &mut BenchmarkGroup<'_, WallTime>, window: &W) {
    group.bench_function(W::NAME, |b| b.iter(|| window.count()));
}
