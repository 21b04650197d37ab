//! The `keel-shedder` suite: an admitted request (allow, then pass) on 1 and 2 threads,
//! keel against tower, little-loadshedder, rust-zero-core and a bare tokio `Semaphore`; a
//! refused request; and one sample of keel's CPU meter.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use keel_shedder::cpu::CpuMode;
use keel_shedder::{DEFAULT_BUCKETS, DEFAULT_WINDOW};
use keel_timex::{Clock, MonotonicClock};

use crate::figures::Figures;
use crate::shedder::{
    Keel, KeelHighLoad, LittleLoadShedder, RustZeroCore, ShedderUnderTest, TokioSemaphore,
    TowerLoadShed,
};
use crate::tally::TalliedGroup as Group;

pub const REJECTION: &str = "shedder rejection 1t";

/// How long the high-load shedder is warmed before its first sample.
pub fn fill() -> Duration {
    DEFAULT_WINDOW + DEFAULT_WINDOW / DEFAULT_BUCKETS
}

const WARM_PAUSE: Duration = Duration::from_millis(5);

/// Every group of this suite (for the bench target).
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// Every group of this suite; the share of requests each overloaded shedder refused.
pub fn run(c: &mut Criterion) -> Figures {
    let keel = Keel::admitting();
    let high = KeelHighLoad::admitting();
    let rust_zero = RustZeroCore::admitting();
    let tower = TowerLoadShed::admitting();
    let little = LittleLoadShedder::admitting();
    let semaphore = TokioSemaphore::admitting();
    let keel_over = Keel::overloaded();
    let rust_zero_over = RustZeroCore::overloaded();
    let tower_over = TowerLoadShed::overloaded();
    let little_over = LittleLoadShedder::overloaded();
    let semaphore_over = TokioSemaphore::overloaded();

    let stop = AtomicBool::new(false);
    let warm_since = Instant::now();
    let mut tallies = Vec::new();
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                high.warm_round();
                thread::sleep(WARM_PAUSE);
            }
        });

        for threads in [1, 2] {
            let mut g = Group::new(
                c,
                format!("shedder allow+pass {threads}t"),
                threads,
                &mut tallies,
            );
            admits(&mut g, &keel);
            admits(&mut g, &rust_zero);
            admits(&mut g, &tower);
            admits(&mut g, &little);
            admits(&mut g, &semaphore);
            // Last, so that in a full run the warm-up is long done.
            if let Some(rest) = (warm_since + fill()).checked_duration_since(Instant::now()) {
                thread::sleep(rest);
            }
            let paused = high.pause();
            admits(&mut g, &high);
            drop(paused);
            g.finish();
        }
        stop.store(true, Ordering::Relaxed);

        // Refusals on one and on two threads: under overload every thread refuses.
        for threads in [1, 2] {
            let mut g = Group::new(
                c,
                format!("shedder rejection {threads}t"),
                threads,
                &mut tallies,
            );
            refuses(&mut g, &keel_over);
            refuses(&mut g, &rust_zero_over);
            refuses(&mut g, &tower_over);
            refuses(&mut g, &little_over);
            refuses(&mut g, &semaphore_over);
            g.finish();
        }
    });

    cpu_sample(c);
    let (refusing, admitting): (Vec<_>, Vec<_>) = tallies
        .into_iter()
        .partition(|t| t.group.starts_with("shedder rejection"));
    let mut figures = Figures::default();
    figures.shares(&refusing, "shedder share refused");
    figures.check_tallies(&admitting, "requests refused in an admitting group");
    figures
}

fn admits<S: ShedderUnderTest>(g: &mut Group<'_, '_>, shedder: &S) {
    g.bench(shedder, S::NAME, S::allow_pass);
}

fn refuses<S: ShedderUnderTest>(g: &mut Group<'_, '_>, shedder: &S) {
    g.bench(shedder, S::REJECTION_NAME, S::reject);
}

/// One sample of keel's default CPU meter (`SystemCpu` over `CpuMode::Auto`), read every 250 ms.
pub fn cpu_sample(c: &mut Criterion) {
    let Ok(mut meter) = CpuMode::Auto.detect() else {
        return;
    };
    let clock = MonotonicClock::new();
    let mut g = c.benchmark_group("cpu sample");
    g.bench_function("keel CpuMode::Auto meter", |b| {
        b.iter(|| black_box(meter.sample(clock.now())))
    });
    g.finish();
}
