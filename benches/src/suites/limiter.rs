//! The `keel-limiter` suite: an unkeyed token bucket admitting (1 and 2 threads) and
//! refusing, a keyed one admitting at [`KEYS`] keys (1 and 2 threads), keel against
//! governor; keel's fixed-window limiter at [`KEYS`] keys; the heap bytes per key at
//! [`MEMORY_KEYS`] keys; and keel's Redis token bucket against a raw `EVALSHA` loop at
//! [`REDIS_TASKS`] concurrent tasks, on a private `redis-server` (skipped without one).
//!
//! Every limiter is built once for the whole suite, the keyed ones with all their keys
//! added before the first sample; each thread cycles through the keys from its own starting
//! point ([`Keyed`]).

use criterion::Criterion;

use crate::limiter::memory::{self, Memory};
use crate::limiter::redis::{self, LeaseFigure, RedisFigure, RedisPlan};
use crate::limiter::{
    DirectUnderTest, Governor, GovernorKeyed, Keel, KeelKeyed, KeelPeriod, Keyed, KeyedUnderTest,
};
use crate::tally::{TalliedGroup as Group, Tally};

/// Keys held by the keyed limiters while they are timed.
pub const KEYS: usize = 10_000;
/// Keys held by the keyed limiters when their memory is counted.
pub const MEMORY_KEYS: usize = 100_000;

/// Concurrent tokio tasks of the Redis rows.
pub const REDIS_TASKS: [usize; 2] = [1, 64];

/// The refusal group (one thread).
pub const DENY: &str = "limiter deny 1t";
/// The fixed-window group (one thread).
pub const PERIOD: &str = "limiter period 1t";

/// The unkeyed admission group for `threads` threads, e.g. `limiter allow 2t`.
pub fn allow_group(threads: usize) -> String {
    format!("limiter allow {threads}t")
}

/// The keyed admission group for `threads` threads, e.g. `limiter keyed 1t`.
pub fn keyed_group(threads: usize) -> String {
    format!("limiter keyed {threads}t")
}

/// What one run of the suite found besides criterion's figures.
#[derive(Debug, Default)]
pub struct Run {
    /// What the calls of each benchmark came back as.
    pub tallies: Vec<Tally>,
    /// Heap bytes per key at [`MEMORY_KEYS`] keys; empty unless
    /// [`CountingAlloc`](crate::limiter::memory::CountingAlloc) is the global allocator.
    pub memory: Vec<Memory>,
    /// keel on Redis against the raw script loop, per concurrency; empty without a
    /// `redis-server` on `PATH`.
    pub redis: Vec<RedisFigure>,
    /// keel's lease mode on one thread, per batch size; empty without a `redis-server`.
    pub lease: Vec<LeaseFigure>,
}

/// The lease batches measured.
pub const LEASE_BATCHES: [u32; 2] = [100, 1000];

/// Every group of this suite (for the bench target), then the memory figures.
pub fn all(c: &mut Criterion) {
    let run = run(c);
    for t in &run.tallies {
        if t.unexpected > 0 {
            eprintln!(
                "error: {}/{}: only {:.4}% of {} calls came back as the group expects",
                t.group,
                t.bench,
                100.0 * t.expected_fraction(),
                t.calls
            );
        }
    }
    for m in &run.memory {
        println!(
            "limiter memory/{}: {:.1} B per key at {} keys ({:.1} B key copies, {:.1} B \
             state and map, {:.2} heap blocks per key)",
            m.name,
            m.bytes_per_key,
            m.keys,
            m.key_bytes_per_key,
            m.state_per_key(),
            m.blocks_per_key
        );
    }
    for f in &run.redis {
        println!(
            "limiter redis/{} tasks: keel {:.0} decisions/s, raw EVALSHA {:.0}/s, keel's \
             overhead {:+.1}% (median of {} paired rounds; {} decisions not admitted)",
            f.tasks,
            f.keel,
            f.raw,
            100.0 * f.overhead,
            f.rounds,
            f.unexpected
        );
    }
    for f in &run.lease {
        println!(
            "limiter redis lease/{}: {:.0} decisions/s on one thread, {} round trips for {}              decisions, {} refused",
            f.batch, f.per_second, f.round_trips, f.decisions, f.refused
        );
    }
}

/// Every group of this suite, with what the calls of each benchmark came back as, the
/// memory figures (counted first, before the suite's own limiters exist) and the Redis
/// rows (last, with a private server that is stopped before this returns).
pub fn run(c: &mut Criterion) -> Run {
    let memory = memory_per_key(MEMORY_KEYS);

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
        let mut g = Group::new(c, allow_group(threads), threads, &mut tallies);
        g.bench(&keel, Keel::NAME, Keel::allow);
        if threads == 1 {
            g.bench(&keel_precise, Keel::PRECISE_NAME, Keel::allow);
        }
        g.bench(&governor, Governor::NAME, Governor::allow);
        g.finish();
    }

    let mut g = Group::new(c, DENY.to_owned(), 1, &mut tallies);
    g.bench(&keel_empty, Keel::NAME, |l| !l.allow());
    g.bench(&governor_empty, Governor::NAME, |l| !l.allow());
    g.finish();

    for threads in [1, 2] {
        let mut g = Group::new(c, keyed_group(threads), threads, &mut tallies);
        g.bench(&keel_keyed, KeelKeyed::NAME, Keyed::allow_next);
        g.bench(&governor_keyed, GovernorKeyed::NAME, Keyed::allow_next);
        g.finish();
    }

    let mut g = Group::new(c, PERIOD.to_owned(), 1, &mut tallies);
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

    let redis = redis::measure(&REDIS_TASKS, RedisPlan::STANDARD).unwrap_or_default();
    let lease = redis::measure_lease(&LEASE_BATCHES, std::time::Duration::from_millis(500))
        .unwrap_or_default();
    Run {
        tallies,
        memory,
        redis,
        lease,
    }
}

/// Heap bytes per key at `n` keys: keel's keyed token bucket, governor's keyed limiter with
/// the same `String` keys, and governor with `u64` keys (the peer figure's configuration).
/// Empty without the counting allocator.
pub fn memory_per_key(n: usize) -> Vec<Memory> {
    [
        memory::keyed::<KeelKeyed>(n),
        memory::keyed::<GovernorKeyed>(n),
        memory::governor_u64_keys(n),
    ]
    .into_iter()
    .flatten()
    .collect()
}
