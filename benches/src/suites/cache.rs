//! The `keel-collection` cache suite: keel's cache against moka (sync, with a TTL),
//! quick_cache and lru behind a `parking_lot::Mutex`, all at [`ENTRIES`] `u64` entries.

use std::time::Duration;

use criterion::Criterion;
use keel_timex::CoarseClock;

use crate::cache::zipf::{self, Trace, TraceKind};
use crate::cache::{
    CacheUnderTest, ENTRIES, Keel, KeelLru, Loaded, LruMutex, MokaTtl, QuickCache, per_entry,
};
use crate::figures::Figures;
use crate::tally::TalliedGroup;

pub const WARM_UP: Duration = Duration::from_millis(500);
const WALK_SEED: u64 = 0xCAC4_E000;

/// Every group of this suite (for the bench target), then the other figures.
pub fn all(c: &mut Criterion) {
    run(c).print();
}

/// Every group of this suite, then the memory figures and the hit ratios.
pub fn run(c: &mut Criterion) -> Figures {
    // keel's default clock: its one upkeep thread is started here, not inside a count.
    let clock = CoarseClock::new();

    let keel = Loaded::<Keel>::prefilled(ENTRIES, WALK_SEED);
    let keel_lru = Loaded::<KeelLru>::prefilled(ENTRIES, WALK_SEED);
    let moka = Loaded::<MokaTtl>::prefilled(ENTRIES, WALK_SEED);
    let quick = Loaded::<QuickCache>::prefilled(ENTRIES, WALK_SEED);
    let lru = Loaded::<LruMutex>::prefilled(ENTRIES, WALK_SEED);
    let mut f = Figures::default();
    for (name, held) in [
        (Keel::NAME, keel.held()),
        (KeelLru::NAME, keel_lru.held()),
        (MokaTtl::NAME, moka.held()),
        (QuickCache::NAME, quick.held()),
        (LruMutex::NAME, lru.held()),
    ] {
        f.add("cache keys held after the prefill", name, held as f64, "");
    }

    let mut calls = Vec::new();
    let mut each = |c: &mut Criterion, name: String, threads: usize, op: Op| {
        // WARM_UP whatever the profile (28 benchmarks at 1 s each: past 90 s).
        let mut g = TalliedGroup::new(c, name, threads, &mut calls).warm_up_time(WARM_UP);
        bench(&mut g, &keel, op);
        // Exact LRU where reads are timed; its inserts cost what the default's do.
        if op != Op::InsertNew {
            bench(&mut g, &keel_lru, op);
        }
        bench(&mut g, &moka, op);
        bench(&mut g, &quick, op);
        bench(&mut g, &lru, op);
        g.finish();
    };
    for threads in [1, 2] {
        each(c, format!("cache get-hit {threads}t"), threads, Op::GetHit);
    }
    each(c, "cache overwrite 1t".to_owned(), 1, Op::Overwrite);
    for threads in [1, 2] {
        each(c, format!("cache mix 90-10 {threads}t"), threads, Op::Mix);
    }
    for threads in [1, 2] {
        each(
            c,
            format!("cache insert-new {threads}t"),
            threads,
            Op::InsertNew,
        );
    }
    drop((keel, keel_lru, moka, quick, lru));

    f.check_tallies(&calls, "gets that missed");
    let memory = [
        per_entry::<Keel>(ENTRIES),
        per_entry::<MokaTtl>(ENTRIES),
        per_entry::<QuickCache>(ENTRIES),
        per_entry::<LruMutex>(ENTRIES),
    ];
    for m in memory.into_iter().flatten() {
        f.add("cache heap per entry", m.name, m.bytes_per_entry, "B");
        f.add(
            "cache heap blocks per entry",
            m.name,
            m.blocks_per_entry(),
            "",
        );
        if let Some(r) = m.reported_per_entry {
            f.add("cache allocated_bytes() per entry", m.name, r, "B");
        }
    }
    for kind in TraceKind::ALL {
        for h in zipf::replay_all(&Trace::of(kind)) {
            let group = format!("cache hit ratio {}", h.trace);
            f.add(group, h.name, 100.0 * h.ratio(), "%");
        }
    }
    drop(clock);
    f
}

/// What a benchmark's iteration does on each thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    GetHit,
    Overwrite,
    Mix,
    InsertNew,
}

/// `op` on the group's threads sharing `loaded`.
fn bench<C: CacheUnderTest>(g: &mut TalliedGroup<'_, '_>, loaded: &Loaded<C>, op: Op) {
    match op {
        Op::GetHit => g.bench(loaded, C::NAME, Loaded::<C>::get_next),
        Op::Overwrite => g.bench(loaded, C::NAME, Loaded::<C>::overwrite_next),
        Op::Mix => g.bench(loaded, C::NAME, Loaded::<C>::mix_next),
        Op::InsertNew => g.bench(loaded, C::NAME, Loaded::<C>::insert_new),
    }
}
