//! Feature `metrics`: the cache's counters move exactly as its decisions (METRICS.md's
//! `keel_cache_*` rows).
//!
//! - A property test drives random operation sequences (get, set, remove, take and
//!   take_optional with loaders that succeed, find nothing, fail or panic, clear, purge, clock
//!   steps) through a small bounded cache with negative caching, and after every operation
//!   checks what each series moved by against what the API answered, what the loader did, and
//!   the cache's own statistics (which `cache_model.rs` checks against a reference model).
//! - Coalesced callers: N callers of one key share one loader run.
//! - The request counters are batched in the shards: every test publishes them
//!   (`Cache::publish_metrics`) before reading them, and their own tests check that they
//!   are published at drop, by keel-timex's periodic thread with no call at all, and exactly
//!   (never decreasing) while two threads read and a third publishes.
//!
//! Time is a `ManualClock`; hand-offs wait for `Cache::waiting`, never for a duration.

#[path = "support/metrics.rs"]
mod recorded;
mod support;

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Once, mpsc};
use std::time::{Duration, Instant};

use keel_collection::cache::{Cache, CacheStats, TakeError};
use keel_timex::ManualClock;
use proptest::prelude::*;
use recorded::Recorded;
use support::{secs, wait_until};

const REQUESTS: &str = "keel_cache_requests_total";
const LOADS: &str = "keel_cache_loads_total";
const LOAD_DURATION: &str = "keel_cache_load_duration_seconds";
const EVICTIONS: &str = "keel_cache_evictions_total";
const ENTRIES: &str = "keel_cache_entries";

/// What the test's panicking loaders panic with; the panic hook keeps quiet about it.
const LOADER_PANIC: &str = "keel-test: the loader panics";

/// Silences the panic hook for [`LOADER_PANIC`] (the cache catches those), keeping it for
/// every other panic of this test binary.
fn quiet_loader_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&LOADER_PANIC) {
                default(info);
            }
        }));
    });
}

/// Every series of the cache named `name`, as totals read so far.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Totals {
    hit: u64,
    miss: u64,
    not_found: u64,
    loaded: u64,
    loaded_nothing: u64,
    load_failed: u64,
    load_panicked: u64,
    evicted: u64,
    expired: u64,
}

fn totals(rec: &Recorded, name: &str) -> Totals {
    let requests = |result| rec.counter(REQUESTS, &[("name", name), ("result", result)]);
    let loads = |result| rec.counter(LOADS, &[("name", name), ("result", result)]);
    let evictions = |reason| rec.counter(EVICTIONS, &[("name", name), ("reason", reason)]);
    Totals {
        hit: requests("hit"),
        miss: requests("miss"),
        not_found: requests("not_found"),
        loaded: loads("success"),
        loaded_nothing: loads("not_found"),
        load_failed: loads("error"),
        load_panicked: loads("panic"),
        evicted: evictions("capacity"),
        expired: evictions("expired"),
    }
}

// ---- the recorder -------------------------------------------------------------------------

#[test]
fn handles_registered_under_a_local_recorder_keep_recording_after_it() {
    let mut rec = Recorded::new();
    let cache: Cache<u8, u8> =
        rec.build(|| Cache::builder(secs(60)).name("local").build().unwrap());
    assert_eq!(cache.get(&1), None);
    cache.set(1, 1);
    assert_eq!(cache.get(&1), Some(1));
    cache.publish_metrics();
    rec.read();
    let t = totals(&rec, "local");
    assert_eq!((t.hit, t.miss), (1, 1));
    assert_eq!(rec.gauge(ENTRIES, &[("name", "local")]), Some(1.0));
    // Built with no recorder: its handles went to the no-op recorder, not to `rec`.
    let unrecorded: Cache<u8, u8> = Cache::builder(secs(60)).name("local").build().unwrap();
    assert_eq!(unrecorded.get(&1), None);
    unrecorded.publish_metrics();
    rec.read();
    assert_eq!(totals(&rec, "local").miss, 1);
}

#[test]
fn every_series_is_registered_when_built_and_the_default_name_is_go_zeros() {
    let mut rec = Recorded::new();
    let cache: Cache<u8, u8> = rec.build(|| Cache::new(secs(60)).unwrap());
    assert_eq!(cache.name(), "proc");
    rec.read();
    let mut names = rec.names().to_vec();
    names.sort();
    assert_eq!(names, [ENTRIES, EVICTIONS, LOAD_DURATION, LOADS, REQUESTS]);
    assert_eq!(totals(&rec, "proc"), Totals::default());
}

// ---- coalescing ---------------------------------------------------------------------------

/// N callers of one key, one loader run: one load, one duration sample, and every caller's
/// lookup a miss (followers are counted by what their own lookup found, not as hits; the
/// cache's `snapshot()` counts them as hits instead). The cache's internal singleflight
/// registers nothing, even when keel-syncx's own `metrics` feature is on (it is under
/// `--all-features`).
#[test]
fn coalesced_callers_are_misses_sharing_one_load() {
    const CALLERS: usize = 6;
    let mut rec = Recorded::new();
    let clock = ManualClock::new();
    let cache: Cache<u64, u64, ManualClock> = rec.build(|| {
        Cache::builder(secs(60))
            .name("profiles")
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    let (started, loading) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let cache = &cache;
        let clock = &clock;
        let leader = s.spawn(move || {
            cache.take(7, || {
                started.send(()).unwrap();
                released.recv().unwrap();
                clock.advance(Duration::from_millis(1500)); // the load's duration
                Ok::<_, io::Error>(70)
            })
        });
        loading.recv().unwrap(); // the leader's loader runs
        let followers: Vec<_> = (0..CALLERS - 1)
            .map(|_| {
                s.spawn(move || cache.take(7, || -> io::Result<u64> { unreachable!("one load") }))
            })
            .collect();
        wait_until("every follower joined", || cache.waiting(&7) == CALLERS - 1);
        release.send(()).unwrap();
        assert_eq!(leader.join().unwrap().unwrap(), 70);
        for follower in followers {
            assert_eq!(follower.join().unwrap().unwrap(), 70);
        }
    });
    cache.publish_metrics();
    rec.read();
    let t = totals(&rec, "profiles");
    assert_eq!((t.hit, t.miss, t.not_found), (0, CALLERS as u64, 0));
    assert_eq!(t.loaded, 1);
    assert_eq!(rec.histogram(LOAD_DURATION, &[("name", "profiles")]), [1.5]);
    assert!(
        rec.names().iter().all(|n| n.starts_with("keel_cache_")),
        "{:?}",
        rec.names()
    );
    // The statistics count the followers as hits (they got the value without loading).
    assert_eq!(
        (cache.snapshot().hits, cache.snapshot().misses),
        (CALLERS as u64 - 1, 1)
    );
}

#[test]
fn async_takes_count_as_sync_ones() {
    let mut rec = Recorded::new();
    let clock = ManualClock::new();
    let cache: Cache<u64, u64, ManualClock> = rec.build(|| {
        Cache::builder(secs(60))
            .name("async")
            .negative_ttl(secs(5))
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let loaded = cache.take_async(1, || async {
            clock.advance(Duration::from_millis(250));
            Ok::<_, io::Error>(10)
        });
        assert_eq!(loaded.await.unwrap(), 10);
        let cached = cache.take_async(1, || async { unreachable!("cached") as io::Result<u64> });
        assert_eq!(cached.await.unwrap(), 10);
        let nothing = cache.take_optional_async(2, || async { Ok::<_, io::Error>(None) });
        assert_eq!(nothing.await.unwrap(), None);
        let remembered = cache.take_async(2, || async { Ok::<_, io::Error>(20) });
        assert!(matches!(remembered.await, Err(TakeError::NotFound)));
        let failed = cache.take_async(3, || async { Err::<u64, _>("down") });
        assert!(matches!(failed.await, Err(TakeError::Failed(_))));
    });
    cache.publish_metrics();
    rec.read();
    let t = totals(&rec, "async");
    assert_eq!((t.hit, t.miss, t.not_found), (1, 3, 1));
    assert_eq!((t.loaded, t.loaded_nothing, t.load_failed), (1, 1, 1));
    assert_eq!(
        rec.histogram(LOAD_DURATION, &[("name", "async")]),
        [0.25, 0.0, 0.0]
    );
}

#[test]
fn a_dropped_cache_holds_no_entries() {
    let mut rec = Recorded::new();
    let cache: Cache<u64, u64> =
        rec.build(|| Cache::builder(secs(60)).name("dropped").build().unwrap());
    for k in 0..10 {
        cache.set(k, k);
    }
    let clone = cache.clone();
    drop(cache);
    assert_eq!(
        rec.read().gauge(ENTRIES, &[("name", "dropped")]),
        Some(10.0)
    );
    drop(clone);
    // The gauge moved by increments: a read shows what it moved by since the last one.
    assert_eq!(
        rec.read().gauge(ENTRIES, &[("name", "dropped")]),
        Some(-10.0)
    );
}

// ---- batched request counters --------------------------------------------------------------

/// A cache with one key of each kind: `HIT` holds a value, `NOT_FOUND` a remembered "not
/// found", `MISS` nothing. Its setup requests are published and read, so every test starts
/// from the totals it returns.
fn three_kinds(rec: &mut Recorded, name: &'static str) -> (Cache<u64, u64, ManualClock>, Totals) {
    let cache: Cache<u64, u64, ManualClock> = rec.build(|| {
        Cache::builder(secs(60))
            .name(name)
            .negative_ttl(secs(60))
            .shards(4)
            .clock(ManualClock::new())
            .build()
            .unwrap()
    });
    cache.set(HIT, 1);
    let nothing = cache.take_optional(NOT_FOUND, || Ok::<_, io::Error>(None));
    assert_eq!(nothing.unwrap(), None);
    cache.publish_metrics();
    rec.read();
    let start = totals(rec, name);
    assert_eq!((start.hit, start.miss, start.not_found), (0, 1, 0));
    (cache, start)
}

const HIT: u64 = 1;
const NOT_FOUND: u64 = 2;
const MISS: u64 = 3;

/// The requests counted since `start`: `(hit, miss, not_found)`.
fn requests_since(rec: &Recorded, name: &str, start: Totals) -> (u64, u64, u64) {
    let t = totals(rec, name);
    (
        t.hit - start.hit,
        t.miss - start.miss,
        t.not_found - start.not_found,
    )
}

/// Requests nobody published reach the recorder when the last handle on the cache goes
/// (without `publish_metrics` or `snapshot`, which would publish them themselves).
#[test]
fn requests_are_published_when_the_cache_is_dropped() {
    let mut rec = Recorded::new();
    let (cache, start) = three_kinds(&mut rec, "dropped-requests");
    let clone = cache.clone();
    for _ in 0..3 {
        assert_eq!(cache.get(&HIT), Some(1));
    }
    assert_eq!(clone.get(&MISS), None);
    assert_eq!(clone.get(&NOT_FOUND), None);
    assert!(matches!(
        clone.take(NOT_FOUND, || Ok::<_, io::Error>(0)),
        Err(TakeError::NotFound)
    ));
    drop(cache);
    drop(clone);
    rec.read();
    assert_eq!(requests_since(&rec, "dropped-requests", start), (3, 1, 2));
}

/// keel-timex's periodic thread publishes the requests on its own: the test only reads the
/// recorder (polling, up to a deadline far beyond the one-second period, for a busy machine)
/// and never calls into the cache after its requests.
#[test]
fn the_periodic_thread_publishes_without_any_call() {
    let mut rec = Recorded::new();
    let (cache, start) = three_kinds(&mut rec, "periodic");
    for _ in 0..5 {
        assert_eq!(cache.get(&HIT), Some(1));
    }
    for _ in 0..2 {
        assert_eq!(cache.get(&MISS), None);
    }
    assert_eq!(cache.get(&NOT_FOUND), None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        rec.read();
        let seen = requests_since(&rec, "periodic", start);
        if seen == (5, 2, 1) {
            break;
        }
        // Published in one go per series, never past what was counted.
        assert!(seen.0 <= 5 && seen.1 <= 2 && seen.2 <= 1, "{seen:?}");
        assert!(
            Instant::now() < deadline,
            "the periodic thread published {seen:?} of (5, 2, 1) in 60 s"
        );
        std::thread::yield_now();
    }
    drop(cache);
    rec.read();
    assert_eq!(
        requests_since(&rec, "periodic", start),
        (5, 2, 1),
        "nothing twice"
    );
}

/// Two threads started together read the three kinds of keys while a third publishes and
/// reads the recorder in a loop. Each series only grows, never past what was counted, and
/// always covers the requests the readers had finished before the publish (their `done`
/// counters, released after each request); once they are done the totals are exact.
#[test]
fn publishing_while_two_threads_read_is_exact_and_never_decreases() {
    const PER_THREAD: u64 = 20_000;
    const KEYS: [u64; 3] = [HIT, MISS, NOT_FOUND];
    let mut rec = Recorded::new();
    let (cache, start) = three_kinds(&mut rec, "concurrent");
    // Requests finished, by reader and by series (hit, miss, not_found).
    let done: [[AtomicU64; 3]; 2] = Default::default();
    let finished = AtomicUsize::new(0);
    let barrier = Barrier::new(3);
    // Reader r reads HIT, MISS, NOT_FOUND in turn from its own starting point.
    let expected = |r: usize, series: usize| {
        (0..PER_THREAD)
            .filter(|i| (*i as usize + r) % 3 == series)
            .count() as u64
    };
    std::thread::scope(|s| {
        for (r, done) in done.iter().enumerate() {
            let (cache, barrier, finished) = (&cache, &barrier, &finished);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let series = (i as usize + r) % 3;
                    let got = cache.get(&KEYS[series]);
                    assert_eq!(got, (series == 0).then_some(1));
                    done[series].fetch_add(1, Ordering::Release);
                }
                finished.fetch_add(1, Ordering::Release);
            });
        }
        barrier.wait();
        let mut last = (0, 0, 0);
        let mut publishes = 0u64;
        loop {
            let over = finished.load(Ordering::Acquire) == 2;
            let before: Vec<u64> = (0..3)
                .map(|series| done.iter().map(|d| d[series].load(Ordering::Acquire)).sum())
                .collect();
            cache.publish_metrics();
            rec.read();
            publishes += 1;
            let now = requests_since(&rec, "concurrent", start);
            let now_v = [now.0, now.1, now.2];
            let last_v = [last.0, last.1, last.2];
            for series in 0..3 {
                let most = expected(0, series) + expected(1, series);
                assert!(
                    now_v[series] >= last_v[series],
                    "decreased: {last:?} -> {now:?}"
                );
                assert!(now_v[series] >= before[series], "{now:?} misses {before:?}");
                assert!(now_v[series] <= most, "{now:?} past {most}");
            }
            last = now;
            if over {
                break;
            }
        }
        assert!(publishes >= 1);
    });
    let exact = |series| expected(0, series) + expected(1, series);
    assert_eq!(
        requests_since(&rec, "concurrent", start),
        (exact(0), exact(1), exact(2))
    );
    // Nothing more to publish, at drop either.
    drop(cache);
    rec.read();
    assert_eq!(
        requests_since(&rec, "concurrent", start),
        (exact(0), exact(1), exact(2))
    );
}

#[test]
fn evictions_by_reason_and_entries() {
    let mut rec = Recorded::new();
    let clock = ManualClock::new();
    let cache: Cache<u8, u8, ManualClock> = rec.build(|| {
        Cache::builder(secs(10))
            .name("small")
            .capacity(2)
            .negative_ttl(secs(1))
            .jitter(0.0)
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    cache.set(1, 1);
    cache.set(2, 2);
    cache.set(3, 3); // evicts 1
    cache.publish_metrics();
    assert_eq!(rec.read().gauge(ENTRIES, &[("name", "small")]), Some(2.0));
    let t = totals(&rec, "small");
    assert_eq!((t.evicted, t.expired), (1, 0));

    // A remembered "not found" is an entry, and its lookups are `not_found`.
    cache.remove(&2);
    assert_eq!(
        cache.take_optional(4, || Ok::<_, io::Error>(None)).unwrap(),
        None
    );
    assert_eq!(cache.get(&4), None);
    assert!(matches!(
        cache.take(4, || Ok::<_, io::Error>(4)),
        Err(TakeError::NotFound)
    ));
    assert_eq!(cache.get(&3), Some(3));
    // -1 (2 removed) +1 (4 remembered)
    cache.publish_metrics();
    assert_eq!(rec.read().gauge(ENTRIES, &[("name", "small")]), Some(0.0));
    let t = totals(&rec, "small");
    assert_eq!((t.hit, t.miss, t.not_found), (1, 1, 2));
    assert_eq!((t.loaded_nothing, t.evicted, t.expired), (1, 1, 0));

    // Expired: the "not found" after 1 s, read; the value after 10 s, reclaimed by a purge.
    clock.advance(secs(1));
    assert_eq!(cache.get(&4), None);
    clock.advance(secs(10));
    cache.purge_expired();
    assert_eq!(cache.len(), 0);
    cache.publish_metrics();
    assert_eq!(rec.read().gauge(ENTRIES, &[("name", "small")]), Some(-2.0));
    let t = totals(&rec, "small");
    assert_eq!((t.hit, t.miss, t.not_found), (1, 2, 2));
    assert_eq!((t.evicted, t.expired), (1, 2));
    // `clear` and `remove` are the user's: no eviction.
    cache.set(5, 5);
    cache.clear();
    cache.publish_metrics();
    assert_eq!(rec.read().gauge(ENTRIES, &[("name", "small")]), Some(0.0));
    assert_eq!(totals(&rec, "small").expired, 2);
}

// ---- the property test --------------------------------------------------------------------

/// How a test loader ends.
#[derive(Debug, Clone, Copy)]
enum Load {
    Value(u32),
    Nothing,
    Fail,
    Panic,
}

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Set(u8, u32),
    Remove(u8),
    /// `take`: a `Nothing` loader is `take_optional`'s.
    Take(u8, Load),
    Advance(u64),
    Purge,
    Clear,
}

fn load() -> impl Strategy<Value = Load> {
    prop_oneof![
        4 => any::<u32>().prop_map(Load::Value),
        2 => Just(Load::Nothing),
        1 => Just(Load::Fail),
        1 => Just(Load::Panic),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    prop_oneof![
        4 => key.clone().prop_map(Op::Get),
        3 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Set(k, v)),
        1 => key.clone().prop_map(Op::Remove),
        5 => (key, load()).prop_map(|(k, l)| Op::Take(k, l)),
        // Up to 12 s: past the negative time to live (3 s) and the time to live (10 s).
        2 => (0u64..12_000).prop_map(Op::Advance),
        1 => Just(Op::Purge),
        1 => Just(Op::Clear),
    ]
}

/// How long each test loader takes on the manual clock.
const LOAD_TIME: Duration = Duration::from_millis(20);

/// Runs `op`; returns what the series should have moved by, given what the API answered,
/// whether and how a loader ran, and the statistics before and after.
fn run(cache: &Cache<u8, u32, ManualClock>, clock: &ManualClock, op: &Op) -> Totals {
    let before = cache.snapshot();
    let ran: Cell<Option<Load>> = Cell::new(None);
    let loader = |load: Load| {
        let ran = &ran;
        move || -> Result<Option<u32>, io::Error> {
            ran.set(Some(load));
            clock.advance(LOAD_TIME);
            match load {
                Load::Value(v) => Ok(Some(v)),
                Load::Nothing => Ok(None),
                Load::Fail => Err(io::Error::other("down")),
                Load::Panic => std::panic::panic_any(LOADER_PANIC),
            }
        }
    };
    let mut moved = Totals::default();
    match *op {
        Op::Get(k) => {
            let got = cache.get(&k);
            let answered_by_cache = cache.snapshot().hits > before.hits;
            match (got, answered_by_cache) {
                (Some(_), true) => moved.hit = 1,
                (None, true) => moved.not_found = 1, // a remembered "not found"
                (None, false) => moved.miss = 1,
                (Some(_), false) => panic!("a value counted as a miss"),
            }
        }
        Op::Set(k, v) => {
            cache.set(k, v);
        }
        Op::Remove(k) => {
            cache.remove(&k);
        }
        Op::Take(k, Load::Nothing) => {
            let got = cache.take_optional(k, loader(Load::Nothing));
            match (ran.get(), got) {
                (Some(_), Ok(None)) => moved.miss = 1,
                (None, Ok(Some(_))) => moved.hit = 1,
                (None, Ok(None)) => moved.not_found = 1,
                other => panic!("take_optional answered {other:?}"),
            }
        }
        Op::Take(k, load) => {
            let got = cache.take(k, || loader(load)().map(|v| v.expect("a value")));
            match (ran.get(), got) {
                (Some(Load::Value(v)), Ok(got)) => {
                    assert_eq!(got, v);
                    moved.miss = 1;
                }
                (Some(Load::Fail), Err(TakeError::Failed(_)))
                | (Some(Load::Panic), Err(TakeError::LoaderPanicked)) => moved.miss = 1,
                (None, Ok(_)) => moved.hit = 1,
                (None, Err(TakeError::NotFound)) => moved.not_found = 1,
                other => panic!("take answered {other:?}"),
            }
        }
        Op::Advance(ms) => {
            clock.advance(Duration::from_millis(ms));
        }
        Op::Purge => cache.purge_expired(),
        Op::Clear => cache.clear(),
    }
    match ran.get() {
        None => {}
        Some(Load::Value(_)) => moved.loaded = 1,
        Some(Load::Nothing) => moved.loaded_nothing = 1,
        Some(Load::Fail) => moved.load_failed = 1,
        Some(Load::Panic) => moved.load_panicked = 1,
    }
    let after: CacheStats = cache.snapshot();
    moved.evicted = after.evictions - before.evictions;
    moved.expired = after.expirations - before.expirations;
    moved
}

fn totals_moved(rec: &mut Recorded, cache: &Cache<u8, u32, ManualClock>, name: &str) -> Totals {
    let before = totals(rec, name);
    cache.publish_metrics();
    rec.read();
    let after = totals(rec, name);
    Totals {
        hit: after.hit - before.hit,
        miss: after.miss - before.miss,
        not_found: after.not_found - before.not_found,
        loaded: after.loaded - before.loaded,
        loaded_nothing: after.loaded_nothing - before.loaded_nothing,
        load_failed: after.load_failed - before.load_failed,
        load_panicked: after.load_panicked - before.load_panicked,
        evicted: after.evicted - before.evicted,
        expired: after.expired - before.expired,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_series_moves_as_the_operation_decided(
        ops in proptest::collection::vec(op(), 1..120),
        exact_lru in any::<bool>(),
    ) {
        quiet_loader_panics();
        let mut rec = Recorded::new();
        let clock = ManualClock::new();
        let cache: Cache<u8, u32, ManualClock> = rec.build(|| {
            let builder = Cache::builder(secs(10))
                .name("model")
                .capacity(4)
                .negative_ttl(secs(3))
                .jitter(0.0)
                .clock(clock.clone());
            let builder = if exact_lru {
                builder.eviction(keel_collection::cache::Eviction::Lru)
            } else {
                builder
            };
            builder.build().unwrap()
        });
        let mut loads = 0;
        for (i, op) in ops.iter().enumerate() {
            let len_before = cache.len() as f64;
            let expected = run(&cache, &clock, op);
            let moved = totals_moved(&mut rec, &cache, "model");
            prop_assert_eq!(moved, expected, "operation {} ({:?}) of {:?}", i, op, ops);
            // `keel_cache_entries` moves by increments: a read shows what it moved by.
            let entries = rec.gauge(ENTRIES, &[("name", "model")]).unwrap();
            prop_assert_eq!(entries, cache.len() as f64 - len_before, "operation {} ({:?})", i, op);
            loads += expected.loaded + expected.loaded_nothing + expected.load_failed
                + expected.load_panicked;
            let durations = rec.histogram(LOAD_DURATION, &[("name", "model")]);
            prop_assert_eq!(durations.len() as u64, loads);
            prop_assert!(durations.iter().all(|&d| d == LOAD_TIME.as_secs_f64()));
        }
        // The statistics and the series agree over the whole run too.
        let stats = cache.snapshot();
        let t = totals(&rec, "model");
        prop_assert_eq!((t.evicted, t.expired), (stats.evictions, stats.expirations));
        prop_assert_eq!(t.hit + t.not_found + t.miss,
            ops.iter().filter(|op| matches!(op, Op::Get(_) | Op::Take(..))).count() as u64);
    }
}
