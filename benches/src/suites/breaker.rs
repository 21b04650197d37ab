//! The `keel-breaker` suite: a protected call on 1 and 2 threads through the permit API and
//! through the closure API, and a rejection by an open breaker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use criterion::Criterion;
use keel_breaker::{DEFAULT_BUCKETS, DEFAULT_WINDOW};

use crate::breaker::{BreakerUnderTest, Failsafe, Keel, KeelForcedOpen, RustZeroCore};
use crate::figures::Figures;
use crate::tally::TalliedGroup as Group;

pub const REJECTION: &str = "breaker rejection";

/// How long the breakers are exercised before the first sample.
pub fn fill() -> Duration {
    DEFAULT_WINDOW + DEFAULT_WINDOW / DEFAULT_BUCKETS
}

pub const KEEP_EVERY: Duration = Duration::from_millis(25);

/// Every group of this suite (for the bench target).
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// Every group of this suite; the share of calls each open breaker rejected.
pub fn run(c: &mut Criterion) -> Figures {
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
            let mut g = Group::new(
                c,
                format!("breaker allow+success {threads}t"),
                threads,
                &mut tallies,
            );
            g.bench(&keel, Keel::NAME, Keel::allow_success);
            g.bench(&failsafe, Failsafe::NAME, Failsafe::allow_success);
            g.bench(&rust_zero, RustZeroCore::NAME, RustZeroCore::allow_success);
            g.finish();
        }
        for threads in [1, 2] {
            let mut g = Group::new(
                c,
                format!("breaker call(ok) {threads}t"),
                threads,
                &mut tallies,
            );
            g.bench(&keel, Keel::NAME, Keel::call_ok);
            g.bench(&failsafe, Failsafe::NAME, Failsafe::call_ok);
            g.bench(&rust_zero, RustZeroCore::NAME, RustZeroCore::call_ok);
            g.finish();
        }
        for (group, threads) in [(REJECTION, 1), ("breaker rejection 2t", 2)] {
            let mut g = Group::new(c, group.to_owned(), threads, &mut tallies);
            rejects(&mut g, &keel_forced);
            rejects(&mut g, &keel_open);
            rejects(&mut g, &failsafe_open);
            rejects(&mut g, &rust_zero_open);
            g.finish();
        }

        stop.store(true, Ordering::Relaxed);
    });
    let (open, healthy): (Vec<_>, Vec<_>) = tallies
        .into_iter()
        .partition(|t| t.group.starts_with(REJECTION));
    let mut figures = Figures::default();
    figures.shares(&open, "breaker share rejected");
    figures.check_tallies(&healthy, "calls refused by a healthy breaker");
    figures
}

fn rejects<B: BreakerUnderTest>(g: &mut Group<'_, '_>, breaker: &B) {
    g.bench(breaker, B::REJECTION_NAME, B::reject);
}
