//! [`Tally`] and [`TalliedGroup`]: criterion groups whose benchmarks also count how many of
//! their calls came back as the group expects (admitted, or refused), shared by the breaker
//! and shedder suites.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};

use crate::threads::time_on_threads;

/// What one benchmark's calls came back as, over its warm-up and its samples.
#[derive(Clone, Debug)]
pub struct Tally {
    pub group: String,
    pub bench: &'static str,
    pub calls: u64,
    pub unexpected: u64,
}

impl Tally {
    pub fn expected_fraction(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        1.0 - self.unexpected as f64 / self.calls as f64
    }
}

/// A criterion group, and where its benchmarks' tallies go.
pub struct TalliedGroup<'c, 't> {
    group: BenchmarkGroup<'c, WallTime>,
    name: String,
    threads: usize,
    tallies: &'t mut Vec<Tally>,
}

impl std::fmt::Debug for TalliedGroup<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TalliedGroup")
            .field("name", &self.name)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl<'c, 't> TalliedGroup<'c, 't> {
    pub fn new(
        c: &'c mut Criterion,
        name: String,
        threads: usize,
        tallies: &'t mut Vec<Tally>,
    ) -> Self {
        let mut group = c.benchmark_group(&name);
        // One iteration is one call on each thread, so criterion's elements/s is the aggregate.
        group.throughput(Throughput::Elements(threads as u64));
        TalliedGroup {
            group,
            name,
            threads,
            tallies,
        }
    }

    pub fn warm_up_time(mut self, warm_up: Duration) -> Self {
        self.group.warm_up_time(warm_up);
        self
    }

    pub fn bench<S, F>(&mut self, subject: &S, id: &'static str, op: F)
    where
        S: Sync,
        F: Fn(&S) -> bool + Sync,
    {
        let threads = self.threads;
        self.bench_counted(id, |iters| {
            let unexpected = AtomicU64::new(0);
            let elapsed = time_on_threads(threads, iters, subject, |subject| {
                if !op(subject) {
                    unexpected.fetch_add(1, Ordering::Relaxed);
                }
            });
            (elapsed, unexpected.into_inner())
        });
    }

    pub fn bench_counted(
        &mut self,
        id: &'static str,
        mut time: impl FnMut(u64) -> (Duration, u64),
    ) {
        let (mut calls, mut unexpected) = (0u64, 0u64);
        let threads = self.threads as u64;
        self.group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let (elapsed, bad) = time(iters);
                calls += iters * threads;
                unexpected += bad;
                elapsed
            })
        });
        self.tallies.push(Tally {
            group: self.name.clone(),
            bench: id,
            calls,
            unexpected,
        });
    }

    pub fn finish(self) {
        self.group.finish();
    }
}
