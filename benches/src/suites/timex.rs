//! The `keel-timex` suite: what one clock read costs.

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use keel_timex::{CoarseClock, ManualClock, MonotonicClock};

use crate::clocks::{ClockUnderTest, StdInstant};

/// `clock now`: one read of std's `Instant::now()` and of each keel clock.
pub fn all(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock now");
    group.throughput(Throughput::Elements(1));
    read::<StdInstant>(&mut group);
    read::<MonotonicClock>(&mut group);
    read::<CoarseClock>(&mut group);
    read::<ManualClock>(&mut group);
    group.finish();
}

fn read<C: ClockUnderTest>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let clock = C::create();
    group.bench_function(C::NAME, |b| b.iter(|| clock.read()));
}
