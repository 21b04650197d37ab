//! The `keel-breaker` suite: a protected call on 1 and 2 threads through the permit API and
//! through the closure API, and a rejection by an open breaker.
//!
//! The breakers are built once for the whole suite and kept in a realistic state: before the
//! first sample, a background thread exercises them for one full window (10 s, go-zero's
//! default), so every bucket of a healthy breaker's window holds successes and every bucket
//! of an open one failures or drops; it keeps doing so between and during the groups, once
//! per [`KEEP_EVERY`]. (rust-zero-core's window, a `VecDeque` that grows one bucket per
//! bucket of elapsed time, reaches its full 40 buckets only then; a breaker left idle for a
//! window forgets its state.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use keel_breaker::{DEFAULT_BUCKETS, DEFAULT_WINDOW};

use crate::breaker::{BreakerUnderTest, Failsafe, Keel, KeelForcedOpen, RustZeroCore};
use crate::threads::time_on_threads;

/// The rejection group (one thread).
pub const REJECTION: &str = "breaker rejection";

/// How long the breakers are exercised before the first sample: one window and one bucket
/// (10.25 s with go-zero's defaults).
pub fn fill() -> Duration {
    DEFAULT_WINDOW + DEFAULT_WINDOW / DEFAULT_BUCKETS
}

/// How often the background thread calls each breaker: ten times per 250 ms bucket.
pub const KEEP_EVERY: Duration = Duration::from_millis(25);

/// The permit group for `threads` threads, e.g. `breaker allow+success 2t`.
pub fn allow_success_group(threads: usize) -> String {
    format!("breaker allow+success {threads}t")
}

/// The closure group for `threads` threads, e.g. `breaker call(ok) 1t`.
pub fn call_ok_group(threads: usize) -> String {
    format!("breaker call(ok) {threads}t")
}

/// What one benchmark's calls came back as, over its warm-up and its samples.
#[derive(Clone, Debug)]
pub struct Tally {
    /// The criterion group.
    pub group: String,
    /// The benchmark id.
    pub bench: &'static str,
    /// Calls made on all threads.
    pub calls: u64,
    /// Calls that did not come back as the group expects: a refusal in a healthy group, a
    /// call let through in the rejection group.
    pub unexpected: u64,
}

impl Tally {
    /// The share of calls that came back as the group expects (admitted, or rejected).
    pub fn expected_fraction(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        1.0 - self.unexpected as f64 / self.calls as f64
    }
}

/// Every group of this suite (for the bench target).
pub fn all(c: &mut Criterion) {
    for t in run(c) {
        if t.unexpected > 0 {
            eprintln!(
                "{}/{}: {:.4}% of {} calls as expected",
                t.group,
                t.bench,
                100.0 * t.expected_fraction(),
                t.calls
            );
        }
    }
}

/// Every group of this suite, with what the calls of each benchmark came back as.
pub fn run(c: &mut Criterion) -> Vec<Tally> {
    let keel = Keel::healthy();
    let failsafe = Failsafe::healthy();
    let rust_zero = RustZeroCore::healthy();
    let keel_forced = KeelForcedOpen::tripped();
    let keel_open = Keel::tripped();
    let failsafe_open = Failsafe::tripped();
    let rust_zero_open = RustZeroCore::tripped();
    // A forced-open breaker records nothing, so it needs no upkeep.
    let upkeep: [&(dyn Fn() -> bool + Sync); 6] = [
        &|| keel.allow_success(),
        &|| failsafe.allow_success(),
        &|| rust_zero.allow_success(),
        &|| keel_open.reject(),
        &|| failsafe_open.reject(),
        &|| rust_zero_open.reject(),
    ];
    let stop = AtomicBool::new(false);
    let mut tallies = Vec::new();
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for call in upkeep {
                    let _ = call();
                }
                thread::sleep(KEEP_EVERY);
            }
        });
        thread::sleep(fill());

        for threads in [1, 2] {
            let mut g = Group::new(c, allow_success_group(threads), threads, &mut tallies);
            g.bench(&keel, Keel::NAME, Keel::allow_success);
            g.bench(&failsafe, Failsafe::NAME, Failsafe::allow_success);
            g.bench(&rust_zero, RustZeroCore::NAME, RustZeroCore::allow_success);
            g.finish();
        }
        for threads in [1, 2] {
            let mut g = Group::new(c, call_ok_group(threads), threads, &mut tallies);
            g.bench(&keel, Keel::NAME, Keel::call_ok);
            g.bench(&failsafe, Failsafe::NAME, Failsafe::call_ok);
            g.bench(&rust_zero, RustZeroCore::NAME, RustZeroCore::call_ok);
            g.finish();
        }
        let mut g = Group::new(c, REJECTION.to_owned(), 1, &mut tallies);
        g.bench(
            &keel_forced,
            KeelForcedOpen::REJECTION_NAME,
            KeelForcedOpen::reject,
        );
        g.bench(&keel_open, Keel::REJECTION_NAME, Keel::reject);
        g.bench(&failsafe_open, Failsafe::REJECTION_NAME, Failsafe::reject);
        g.bench(
            &rust_zero_open,
            RustZeroCore::REJECTION_NAME,
            RustZeroCore::reject,
        );
        g.finish();

        stop.store(true, Ordering::Relaxed);
    });
    tallies
}

/// A criterion group of this suite, and where its tallies go.
struct Group<'c, 't> {
    group: BenchmarkGroup<'c, WallTime>,
    name: String,
    threads: usize,
    tallies: &'t mut Vec<Tally>,
}

impl<'c, 't> Group<'c, 't> {
    fn new(
        c: &'c mut Criterion,
        name: String,
        threads: usize,
        tallies: &'t mut Vec<Tally>,
    ) -> Self {
        let mut group = c.benchmark_group(&name);
        // One iteration is one call on each thread, so criterion's elements/s is the aggregate.
        group.throughput(Throughput::Elements(threads as u64));
        Group {
            group,
            name,
            threads,
            tallies,
        }
    }

    /// The one driver: `op` on the group's threads sharing `breaker`; `op` returns `true`
    /// when a call came back as the group expects. The calls that did not are counted in an
    /// atomic touched only by them, which are rare (or none), so the count costs the loop
    /// one predictable branch.
    fn bench<B, F>(&mut self, breaker: &B, id: &'static str, op: F)
    where
        B: BreakerUnderTest,
        F: Fn(&B) -> bool + Sync,
    {
        let threads = self.threads;
        let unexpected = AtomicU64::new(0);
        let mut calls = 0u64;
        self.group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                calls += iters * threads as u64;
                time_on_threads(threads, iters, breaker, |breaker| {
                    if !op(breaker) {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
        });
        self.tallies.push(Tally {
            group: self.name.clone(),
            bench: id,
            calls,
            unexpected: unexpected.into_inner(),
        });
    }

    fn finish(self) {
        self.group.finish();
    }
}
