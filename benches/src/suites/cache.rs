//! The `keel-collection` cache suite (issue 9; peer-figures.md, section 5): keel's expiring
//! LRU cache against moka (sync, with a TTL), quick_cache and lru behind a
//! `parking_lot::Mutex`, all holding [`ENTRIES`] `u64 -> u64` entries at a capacity of
//! [`ENTRIES`], in one run.
//!
//! - **get-hit** ([`get_group`]): a get of a resident key drawn uniformly, on 1 and 2
//!   threads sharing one cache.
//! - **overwrite** ([`OVERWRITE`]): an insert of a resident key (same value), one thread.
//! - **mix** ([`mix_group`]): 90% get-hit, 10% overwrite, uniform over the resident keys,
//!   on 1 and 2 threads.
//! - **insert-new** ([`insert_group`]): an insert of a key the cache never held into the full
//!   cache (it evicts one), on 1 and 2 threads. Last, since it replaces the resident keys.
//! - **hit ratio** ([`Run::hit_ratios`]): a read-through replay of a Zipf trace of
//!   1 500 000 requests over 1 000 000 keys (the first 500 000 uncounted), per exponent of
//!   [`ZIPF_EXPONENTS`], against a new cache of each kind ([`crate::cache::zipf`]).
//! - **memory** ([`Run::memory`]): heap bytes and blocks per entry after building each cache
//!   and inserting [`ENTRIES`] entries.
//!
//! Each cache is built and prefilled once, before the first sample, with the same keys;
//! each thread walks a pre-drawn table of the keys the cache holds ([`Loaded`]). The groups
//! count the gets that missed ([`Run::calls`]): none is expected. Every group warms up for
//! [`WARM_UP`] whatever the profile (28 benchmarks at the profile's 1 s would take the
//! suite past 90 s); their measurement time is the profile's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use keel_timex::CoarseClock;

use crate::cache::memory::{self, CacheMemory};
use crate::cache::zipf::{self, HitRatio, Trace, TraceKind};
use crate::cache::{
    CacheUnderTest, ENTRIES, Keel, KeelLru, KeelSecondChance, Loaded, LruMutex, MokaTtl, QuickCache,
};
use crate::tally::Tally;
use crate::threads::time_on_threads;

/// An insert overwriting a resident key, one thread.
pub const OVERWRITE: &str = "cache overwrite 1t";

/// Warm-up of every group of the suite, whatever the profile.
pub const WARM_UP: Duration = Duration::from_millis(500);

/// Seed of the walks (the same keys for every cache that holds them all).
const WALK_SEED: u64 = 0xCAC4_E000;

/// The get-hit group on `threads` threads.
pub fn get_group(threads: usize) -> String {
    format!("cache get-hit {threads}t")
}

/// The insert-new (evicting) group on `threads` threads.
pub fn insert_group(threads: usize) -> String {
    format!("cache insert-new {threads}t")
}

/// The 90/10 read/write group on `threads` threads.
pub fn mix_group(threads: usize) -> String {
    format!("cache mix 90-10 {threads}t")
}

/// What one run of the suite found besides criterion's figures.
#[derive(Debug, Default)]
pub struct Run {
    /// Gets that missed in each benchmark (`unexpected`): none is expected.
    pub calls: Vec<Tally>,
    /// Resident keys each cache held after its prefill of [`ENTRIES`] keys at a capacity of
    /// [`ENTRIES`] (the walks read only those).
    pub held: Vec<(&'static str, usize)>,
    /// Heap per entry at [`ENTRIES`] entries; empty unless
    /// [`CountingAlloc`](crate::limiter::memory::CountingAlloc) is the global allocator.
    pub memory: Vec<CacheMemory>,
    /// Hit ratios on the Zipf traces, per exponent and cache.
    pub hit_ratios: Vec<HitRatio>,
}

/// Every group of this suite (for the bench target), then the other figures.
pub fn all(c: &mut Criterion) {
    let run = run(c);
    for (name, held) in &run.held {
        if *held < ENTRIES {
            println!("cache: {name} held {held} of its {ENTRIES} prefilled keys");
        }
    }
    for t in run.calls.iter().filter(|t| t.unexpected > 0) {
        println!(
            "cache: {}/{}: {} of {} gets missed",
            t.group, t.bench, t.unexpected, t.calls
        );
    }
    for m in &run.memory {
        let reported = m.reported_per_entry.map_or_else(String::new, |r| {
            format!("; allocated_bytes()/entries: {r:.1} B")
        });
        println!(
            "cache memory/{}: {:.1} B per entry at {} entries, {} live heap blocks \
             ({:.3} per entry), {} held{reported}",
            m.name,
            m.bytes_per_entry,
            m.entries,
            m.blocks,
            m.blocks_per_entry(),
            m.held
        );
    }
    for h in &run.hit_ratios {
        let reported = h.reported.map_or_else(String::new, |((hits, misses), ours)| {
            format!("; its own count over the whole trace: {hits} hits, {misses} misses (we counted {ours} hits)")
        });
        println!(
            "cache hit ratio/{}/{}: {:.4} ({} of {} requests){reported}",
            h.trace,
            h.name,
            h.ratio(),
            h.hits,
            h.requests
        );
    }
}

/// Every group of this suite, then the memory figures and the hit ratios, after the timed
/// caches are dropped: the timed caches are built on a heap that the counts' caches (some
/// 800 000 blocks, built and freed) have not churned first.
pub fn run(c: &mut Criterion) -> Run {
    // keel's default clock: its one upkeep thread is started here, not inside a count.
    let clock = CoarseClock::new();

    let keel = Loaded::<Keel>::prefilled(ENTRIES, WALK_SEED);
    let keel_lru = Loaded::<KeelLru>::prefilled(ENTRIES, WALK_SEED);
    let moka = Loaded::<MokaTtl>::prefilled(ENTRIES, WALK_SEED);
    let quick = Loaded::<QuickCache>::prefilled(ENTRIES, WALK_SEED);
    let lru = Loaded::<LruMutex>::prefilled(ENTRIES, WALK_SEED);
    let held = vec![
        (Keel::NAME, keel.held()),
        (KeelLru::NAME, keel_lru.held()),
        (MokaTtl::NAME, moka.held()),
        (QuickCache::NAME, quick.held()),
        (LruMutex::NAME, lru.held()),
    ];

    let mut calls = Vec::new();
    let mut each = |c: &mut Criterion, name: String, threads: usize, op: Op| {
        let mut g = Group::new(c, name, threads, &mut calls);
        g.bench(&keel, op);
        // Exact LRU where reads are timed; its inserts cost what the default's do.
        if op != Op::InsertNew {
            g.bench(&keel_lru, op);
        }
        g.bench(&moka, op);
        g.bench(&quick, op);
        g.bench(&lru, op);
        g.finish();
    };
    for threads in [1, 2] {
        each(c, get_group(threads), threads, Op::GetHit);
    }
    each(c, OVERWRITE.to_owned(), 1, Op::Overwrite);
    for threads in [1, 2] {
        each(c, mix_group(threads), threads, Op::Mix);
    }
    for threads in [1, 2] {
        each(c, insert_group(threads), threads, Op::InsertNew);
    }
    drop((keel, keel_lru, moka, quick, lru));

    let memory = [
        memory::per_entry::<Keel>(ENTRIES),
        memory::per_entry::<MokaTtl>(ENTRIES),
        memory::per_entry::<QuickCache>(ENTRIES),
        memory::per_entry::<LruMutex>(ENTRIES),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut hit_ratios = Vec::new();
    for kind in TraceKind::ALL {
        let trace = Trace::of(kind);
        hit_ratios.push(zipf::replay::<Keel>(&trace, ENTRIES));
        hit_ratios.push(zipf::replay::<KeelLru>(&trace, ENTRIES));
        hit_ratios.push(zipf::replay::<KeelSecondChance>(&trace, ENTRIES));
        hit_ratios.push(zipf::replay::<MokaTtl>(&trace, ENTRIES));
        hit_ratios.push(zipf::replay::<QuickCache>(&trace, ENTRIES));
        hit_ratios.push(zipf::replay::<LruMutex>(&trace, ENTRIES));
    }
    drop(clock);

    Run {
        calls,
        held,
        memory,
        hit_ratios,
    }
}

/// What a benchmark's iteration does on each thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    GetHit,
    Overwrite,
    Mix,
    InsertNew,
}

/// A criterion group whose benchmarks run on `threads` threads and count their missed gets.
struct Group<'c, 't> {
    group: BenchmarkGroup<'c, WallTime>,
    name: String,
    threads: usize,
    calls: &'t mut Vec<Tally>,
}

impl<'c, 't> Group<'c, 't> {
    fn new(c: &'c mut Criterion, name: String, threads: usize, calls: &'t mut Vec<Tally>) -> Self {
        let mut group = c.benchmark_group(&name);
        // One iteration is one operation on each thread: criterion's elements/s is the
        // aggregate.
        group
            .warm_up_time(WARM_UP)
            .throughput(Throughput::Elements(threads as u64));
        Group {
            group,
            name,
            threads,
            calls,
        }
    }

    /// `op` on the group's threads sharing `loaded`.
    fn bench<C: CacheUnderTest>(&mut self, loaded: &Loaded<C>, op: Op) {
        match op {
            Op::GetHit => self.bench_with(loaded, Loaded::<C>::get_next),
            Op::Overwrite => self.bench_with(loaded, Loaded::<C>::overwrite_next),
            Op::Mix => self.bench_with(loaded, Loaded::<C>::mix_next),
            Op::InsertNew => self.bench_with(loaded, Loaded::<C>::insert_new),
        }
    }

    /// The one driver: `op` on the group's threads sharing `loaded`, `op` returning `false`
    /// for an operation that did not come back as expected (a get that missed), counted in
    /// an atomic touched only then.
    fn bench_with<C, F>(&mut self, loaded: &Loaded<C>, op: F)
    where
        C: CacheUnderTest,
        F: Fn(&Loaded<C>) -> bool + Sync,
    {
        let threads = self.threads;
        let missed = AtomicU64::new(0);
        let mut calls = 0u64;
        self.group.bench_function(C::NAME, |b| {
            b.iter_custom(|iters| {
                calls += iters * threads as u64;
                time_on_threads(threads, iters, loaded, |l| {
                    if !op(l) {
                        missed.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
        });
        self.calls.push(Tally {
            group: self.name.clone(),
            bench: C::NAME,
            calls,
            unexpected: missed.into_inner(),
        });
    }

    fn finish(self) {
        self.group.finish();
    }
}
