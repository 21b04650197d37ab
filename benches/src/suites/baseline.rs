//! The machine's floor: one atomic read-modify-write and one uncontended lock.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput};
use parking_lot::Mutex;

use crate::threads::time_on_threads;

/// Both figures on 1 and on 2 threads.
pub fn all(c: &mut Criterion) {
    floor(c, 1);
    floor(c, 2);
}

fn floor(c: &mut Criterion, threads: usize) {
    let mut group = c.benchmark_group(format!("baseline {threads}t"));
    group.throughput(Throughput::Elements(threads as u64));
    let counter = AtomicU64::new(0);
    group.bench_function("AtomicU64 fetch_add", |b| {
        b.iter_custom(|iters| {
            time_on_threads(threads, iters, &counter, |a| {
                a.fetch_add(1, Ordering::Relaxed);
            })
        })
    });
    let lock = Mutex::new(0u64);
    group.bench_function("parking_lot Mutex lock+unlock", |b| {
        b.iter_custom(|iters| time_on_threads(threads, iters, &lock, |m| *m.lock() += 1))
    });
    group.finish();
}
