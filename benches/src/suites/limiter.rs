//! The `keel-limiter` suite: keel's token buckets (unkeyed, keyed) against governor, keel's
//! fixed window, the heap per key, and keel's Redis bucket against a raw `EVALSHA` loop.

use criterion::Criterion;

use crate::figures::Figures;
use crate::limiter::memory;
use crate::limiter::redis::{self, RedisPlan};
use crate::limiter::{
    DirectUnderTest, Governor, GovernorKeyed, Keel, KeelKeyed, KeelPeriod, Keyed, KeyedUnderTest,
};
use crate::tally::TalliedGroup as Group;

pub const KEYS: usize = 10_000;
pub const MEMORY_KEYS: usize = 100_000;
pub const REDIS_TASKS: [usize; 2] = [1, 64];
pub const LEASE_BATCHES: [u32; 2] = [100, 1000];

/// Every group of this suite (for the bench target), then the other figures.
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// Every group of this suite, with what the calls of each benchmark came back as.
pub fn run(c: &mut Criterion) -> Figures {
    let mut figures = Figures::default();
    memory_per_key(MEMORY_KEYS, &mut figures);

    let keel = Keel::admitting();
    let keel_precise = Keel::admitting_precise();
    let governor = Governor::admitting();
    let keel_empty = Keel::exhausted();
    let governor_empty = Governor::exhausted();
    let keel_keyed = Keyed::<KeelKeyed>::populated(KEYS);
    let governor_keyed = Keyed::<GovernorKeyed>::populated(KEYS);
    let keel_period = Keyed::<KeelPeriod>::populated(KEYS);

    let mut tallies = Vec::new();
    for threads in [1, 2] {
        let mut g = Group::new(
            c,
            format!("limiter allow {threads}t"),
            threads,
            &mut tallies,
        );
        g.bench(&keel, Keel::NAME, Keel::allow);
        if threads == 1 {
            g.bench(&keel_precise, Keel::PRECISE_NAME, Keel::allow);
        }
        g.bench(&governor, Governor::NAME, Governor::allow);
        g.finish();
    }

    let mut g = Group::new(c, "limiter deny 1t".to_owned(), 1, &mut tallies);
    g.bench(&keel_empty, Keel::NAME, |l| !l.allow());
    g.bench(&governor_empty, Governor::NAME, |l| !l.allow());
    g.finish();

    for threads in [1, 2] {
        let mut g = Group::new(
            c,
            format!("limiter keyed {threads}t"),
            threads,
            &mut tallies,
        );
        g.bench(&keel_keyed, KeelKeyed::NAME, Keyed::allow_next);
        g.bench(&governor_keyed, GovernorKeyed::NAME, Keyed::allow_next);
        g.finish();
    }

    let mut g = Group::new(c, "limiter period 1t".to_owned(), 1, &mut tallies);
    g.bench(&keel_period, KeelPeriod::NAME, Keyed::allow_next);
    g.finish();

    // No key was evicted (and added again) while the keyed limiters were timed.
    for (name, held) in [
        (KeelKeyed::NAME, keel_keyed.limiter().keys()),
        (GovernorKeyed::NAME, governor_keyed.limiter().keys()),
        (KeelPeriod::NAME, keel_period.limiter().keys()),
    ] {
        assert_eq!(held, KEYS, "{name}: keys held after the run");
    }

    figures.check_tallies(
        &tallies,
        "calls that did not come back as the group expects",
    );
    redis::measure(&REDIS_TASKS, RedisPlan::STANDARD, &mut figures);
    let lease_time = std::time::Duration::from_millis(500);
    redis::measure_lease(&LEASE_BATCHES, lease_time, &mut figures);
    figures
}

/// Heap bytes per key at `n` keys (none without the counting allocator): keel's keyed token bucket.
pub fn memory_per_key(n: usize, figures: &mut Figures) {
    let all = [
        memory::keyed::<KeelKeyed>(n),
        memory::keyed::<GovernorKeyed>(n),
        memory::governor_u64_keys(n),
    ];
    for m in all.into_iter().flatten() {
        figures.add("limiter heap per key", m.name, m.bytes_per_key, "B");
        figures.add(
            "limiter key characters per key",
            m.name,
            m.key_bytes_per_key,
            "B",
        );
        figures.add("limiter state per key", m.name, m.state_per_key(), "B");
        figures.add("limiter heap blocks per key", m.name, m.blocks_per_key, "");
    }
}
