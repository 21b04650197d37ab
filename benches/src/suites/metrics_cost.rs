//! The `metrics` suite: what recording metrics costs on the gate's hot paths, one thread;
//! two builds ("metrics off"/"metrics on"), which `benches/metrics-cost` runs both.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use keel_breaker::Breaker;
use keel_collection::Cache;
use keel_limiter::{Rate, TokenLimiter};
use keel_shedder::Shedder;
use keel_shedder::cpu::ManualCpu;
use keel_timex::ManualClock;

pub const GROUP: &str = if cfg!(feature = "metrics") {
    "metrics on"
} else {
    "metrics off"
};

pub const PATHS: [&str; 4] = [
    "breaker allow+success",
    "shedder allow+pass",
    "token allow",
    "cache get hit",
];

/// Installs the Prometheus recorder (feature `metrics`); a no-op otherwise. Once per process.
pub fn install_recorder() {
    #[cfg(feature = "metrics")]
    {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("no other recorder is installed in the bench process");
        });
    }
}

/// Every benchmark of the suite.
pub fn all(c: &mut Criterion) {
    install_recorder();
    let mut group = c.benchmark_group(GROUP);

    let breaker = Breaker::builder()
        .name("bench")
        .seed(1)
        .build_with_clock(ManualClock::new())
        .expect("go-zero's defaults");
    group.bench_function(PATHS[0], |b| {
        b.iter(|| {
            if let Ok(permit) = breaker.allow() {
                permit.success();
            }
        })
    });

    let shedder = Shedder::builder()
        .name("bench")
        .cpu_source(ManualCpu::new(0))
        .build_with_clock(ManualClock::new())
        .expect("go-zero's defaults");
    group.bench_function(PATHS[1], |b| {
        b.iter(|| {
            if let Ok(guard) = shedder.allow() {
                guard.pass();
            }
        })
    });

    let limiter = TokenLimiter::builder(Rate::per_second(1_000), u32::MAX)
        .name("bench")
        .build_with_clock(ManualClock::new())
        .expect("a valid limiter");
    group.bench_function(PATHS[2], |b| b.iter(|| black_box(limiter.allow())));

    let cache: Cache<u64, u64, ManualClock> = Cache::builder(Duration::from_secs(300))
        .name("bench")
        .capacity(100_000)
        .seed(1)
        .clock(ManualClock::new())
        .build()
        .expect("a valid cache");
    for k in 0..1_000u64 {
        cache.set(k, k);
    }
    let mut i = 0u64;
    group.bench_function(PATHS[3], |b| {
        b.iter(|| {
            i = (i + 1) % 1_000;
            black_box(cache.get(&black_box(i)))
        })
    });
    group.finish();
}
