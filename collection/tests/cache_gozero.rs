//! go-zero's cache scenarios (spec section 6.2: `TestCacheSet` ... `TestCacheWithLruEvicted`),
//! then the quirks keel fixes and the behaviour it adds, all on a manual clock.

mod support;

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use keel_collection::cache::{
    Cache, CacheStats, ConfigError, DEFAULT_JITTER, Eviction, MAX_SHARDS, TakeError,
};
use keel_timex::{ManualClock, Nanos};
use support::{manual, ms, ns, secs, wait_until};

const CALLERS: usize = 100;

fn at(clock: &ManualClock, t: Duration) {
    clock.advance_to(Nanos::from_duration(t));
}

// ---- go-zero's scenarios ------------------------------------------------------------------

#[test]
fn set_and_set_with_expire_are_both_readable() {
    // TestCacheSet: Set, and SetWithExpire for 3 s.
    let (builder, clock) = manual(secs(2));
    let cache = builder.name("any").build().unwrap();
    assert_eq!(cache.name(), "any");
    cache.set("first", "first element");
    cache.set_with_ttl("second", "second element", secs(3));
    assert_eq!(cache.get(&"first"), Some("first element"));
    assert_eq!(cache.get(&"second"), Some("second element"));
    // Each lives for its own time to live.
    at(&clock, secs(2));
    assert_eq!(cache.get(&"first"), None);
    assert_eq!(cache.get(&"second"), Some("second element"));
    at(&clock, secs(3));
    assert_eq!(cache.get(&"second"), None);
}

#[test]
fn a_deleted_key_is_gone_and_the_other_remains() {
    // TestCacheDel.
    let cache = manual(secs(2)).0.build().unwrap();
    cache.set("first", "first element");
    cache.set("second", "second element");
    assert_eq!(cache.remove(&"first"), Some("first element"));
    assert_eq!(cache.get(&"first"), None);
    assert_eq!(cache.get(&"second"), Some("second element"));
    assert_eq!(
        cache.remove(&"first"),
        None,
        "a second remove finds nothing"
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn concurrent_takes_of_one_key_load_once() {
    // TestCacheTake: 100 concurrent takes; go-zero's fetch sleeps 100 ms, ours waits until the
    // other 99 callers have joined its load.
    let cache = manual(secs(2)).0.build().unwrap();
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(CALLERS);
    thread::scope(|s| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    cache.take("first", || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        wait_until("the other callers to join", || {
                            cache.waiting(&"first") == CALLERS - 1
                        });
                        Ok::<_, io::Error>("first element".to_string())
                    })
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join().unwrap().unwrap(), "first element");
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.waiting(&"first"), 0);
    // The loader's caller missed; the 99 that shared its value hit.
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses), (CALLERS as u64 - 1, 1));
}

#[test]
fn take_of_a_set_key_never_loads() {
    // TestCacheTakeExists: each caller sets the key, then takes it.
    let cache = manual(secs(2)).0.build().unwrap();
    let loads = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..CALLERS {
            s.spawn(|| {
                cache.set("first", "first element".to_string());
                let value = cache
                    .take("first", || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, io::Error>("loaded".to_string())
                    })
                    .unwrap();
                assert_eq!(value, "first element");
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 0);
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.snapshot().hits, CALLERS as u64);
    assert_eq!(cache.snapshot().misses, 0);
}

#[test]
fn a_failing_load_reaches_every_caller_once_and_caches_nothing() {
    // TestCacheTakeError: 100 concurrent takes, a failing fetch.
    let cache = manual(secs(2)).0.build().unwrap();
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(CALLERS);
    let errors: Vec<TakeError<io::Error>> = thread::scope(|s| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    cache.take("first", || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        wait_until("the other callers to join", || {
                            cache.waiting(&"first") == CALLERS - 1
                        });
                        Err::<String, _>(io::Error::other("dummy"))
                    })
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|c| c.join().unwrap().unwrap_err())
            .collect()
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.len(), 0);
    // Every caller got the loader's error, the very same one (shared, not copied).
    let mut shared = None;
    for error in &errors {
        let TakeError::Failed(load) = error else {
            panic!("expected the loader's error, got {error:?}");
        };
        assert_eq!(load.to_string(), "dummy");
        assert!(
            Arc::ptr_eq(shared.get_or_insert(load), load),
            "one error object for all callers"
        );
    }
    // A failed load counts neither a hit nor a miss.
    assert_eq!(cache.snapshot(), CacheStats::default());
    // Nothing was cached: the next take loads again.
    assert_eq!(
        cache
            .take("first", || Ok::<_, io::Error>("again".to_string()))
            .unwrap(),
        "again"
    );
    assert_eq!(cache.len(), 1);
}

/// go-zero's LRU scenarios hold for every eviction policy.
const POLICIES: [Eviction; 3] = [Eviction::Lru, Eviction::SecondChance, Eviction::S3Fifo];

/// The setup of both go-zero LRU scenarios: a limit of 3, and "first" to "fourth" set in order.
fn limit_three_after_four_sets(eviction: Eviction) -> Cache<&'static str, i32, ManualClock> {
    let cache = manual(secs(60))
        .0
        .capacity(3)
        .eviction(eviction)
        .build()
        .unwrap();
    for (k, v) in [("first", 1), ("second", 2), ("third", 3), ("fourth", 4)] {
        cache.set(k, v);
    }
    cache
}

#[test]
fn the_least_recently_set_key_is_evicted() {
    // TestCacheWithLruEvicts: limit 3, four inserts.
    for eviction in POLICIES {
        let cache = limit_three_after_four_sets(eviction);
        assert_eq!(cache.get(&"first"), None, "{eviction:?}");
        assert_eq!(cache.get(&"second"), Some(2));
        assert_eq!(cache.get(&"third"), Some(3));
        assert_eq!(cache.get(&"fourth"), Some(4));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.snapshot().evictions, 1);
    }
}

#[test]
fn a_read_saves_a_key_from_eviction() {
    // TestCacheWithLruEvicted.
    for eviction in POLICIES {
        let cache = limit_three_after_four_sets(eviction);
        assert_eq!(cache.get(&"first"), None, "{eviction:?}");
        assert_eq!(cache.get(&"second"), Some(2)); // now the most recently used
        cache.set("fifth", 5);
        cache.set("sixth", 6);
        assert_eq!(cache.get(&"third"), None, "{eviction:?}");
        assert_eq!(cache.get(&"fourth"), None, "{eviction:?}");
        assert_eq!(cache.get(&"second"), Some(2), "{eviction:?}");
        assert_eq!(cache.get(&"fifth"), Some(5));
        assert_eq!(cache.get(&"sixth"), Some(6));
        assert_eq!(cache.snapshot().evictions, 3);
    }
}

#[test]
fn second_chance_differs_from_lru_only_in_order_details() {
    assert_eq!(Eviction::default(), Eviction::S3Fifo);
    // A read refreshes an entry under both; under second chance a second read before
    // eviction passes the entry adds nothing, so the order among read entries is the order
    // eviction met them, not the order of their last reads.
    let order = |eviction| {
        let cache = manual(secs(60))
            .0
            .capacity(3)
            .eviction(eviction)
            .build()
            .unwrap();
        for k in ["a", "b", "c"] {
            cache.set(k, ());
        }
        cache.get(&"a"); // a is read first...
        cache.get(&"b");
        cache.get(&"a"); // ...and last
        cache.set("d", ()); // evicts c under both
        cache.set("e", ()); // LRU: b (read before a's last read); second chance: a
        ["a", "b", "c"].map(|k| cache.contains(&k))
    };
    assert_eq!(order(Eviction::Lru), [true, false, false]);
    assert_eq!(order(Eviction::SecondChance), [false, true, false]);
}

#[test]
fn a_small_bounded_cache_has_one_shard_and_one_eviction_order() {
    // The scenarios above rely on it without asking for one shard: the whole bound is one
    // recency list, not one per shard.
    for capacity in [1, 3, 100, 511] {
        let cache: Cache<u32, u32, _> = manual(secs(1)).0.capacity(capacity).build().unwrap();
        assert_eq!(cache.shard_count(), 1, "capacity {capacity}");
        assert_eq!(cache.capacity(), Some(capacity));
    }
    let cache: Cache<u32, u32, _> = manual(secs(1)).0.capacity(1).build().unwrap();
    cache.set(1, 1);
    cache.set(2, 2);
    assert_eq!((cache.get(&1), cache.get(&2)), (None, Some(2)));
}

// ---- expiry: the go-zero quirk fixed, jitter, exact deadlines ------------------------------

#[test]
fn a_key_re_set_close_to_its_expiry_keeps_the_new_value_for_its_new_ttl() {
    // go-zero moves a re-set key's timer to under one wheel tick when its time to live is
    // about a second, which fires at once and deletes the value just stored.
    let (builder, clock) = manual(secs(1));
    let cache = builder.build().unwrap();
    cache.set("k", 1);
    assert_eq!(cache.set("k", 2), Some(1), "re-set at once");
    assert_eq!(cache.get(&"k"), Some(2));
    at(&clock, ms(999));
    assert_eq!(
        cache.set("k", 3),
        Some(2),
        "re-set 1 ms before the deadline"
    );
    at(&clock, ms(1000)); // the first deadline
    assert_eq!(cache.get(&"k"), Some(3));
    at(&clock, ms(1998));
    assert_eq!(cache.get(&"k"), Some(3));
    // Through several expiry ticks the entry was not reclaimed under the new value.
    assert_eq!(cache.len(), 1);
    at(&clock, ms(1999)); // 999 ms + 1 s
    assert_eq!(cache.get(&"k"), None);

    // A shorter time to live on re-set, just before the old deadline.
    cache.set("j", 1);
    at(&clock, ms(1999 + 990));
    cache.set_with_ttl("j", 2, ms(100));
    at(&clock, ms(1999 + 1000));
    assert_eq!(cache.get(&"j"), Some(2), "past the old deadline");
    at(&clock, ms(1999 + 1089));
    assert_eq!(cache.get(&"j"), Some(2));
    at(&clock, ms(1999 + 1090));
    assert_eq!(cache.get(&"j"), None);
}

#[test]
fn a_re_set_with_jitter_lives_at_least_the_lower_bound_of_its_new_ttl() {
    let clock = ManualClock::new();
    let cache = Cache::builder(secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    for k in 0..200 {
        cache.set(k, 0);
    }
    at(&clock, ms(900));
    for k in 0..200 {
        cache.set(k, 1);
    }
    at(&clock, ms(900 + 950));
    assert!((0..200).all(|k| cache.get(&k) == Some(1)));
    at(&clock, ms(900 + 1050));
    assert!((0..200).all(|k| cache.get(&k).is_none()));
}

#[test]
fn an_entry_expires_exactly_at_its_deadline() {
    let (builder, clock) = manual(secs(10));
    let cache = builder.build().unwrap();
    cache.set(1, "one");
    at(&clock, secs(10) - ns(1));
    assert_eq!(cache.get(&1), Some("one"));
    assert!(cache.contains(&1));
    at(&clock, secs(10));
    assert!(!cache.contains(&1));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.snapshot().expirations, 1, "the read met it expired");
}

#[test]
fn reads_do_not_extend_the_time_to_live() {
    let (builder, clock) = manual(secs(10));
    let cache = builder.capacity(10).build().unwrap();
    cache.set(1, 1);
    for t in [1, 5, 9] {
        at(&clock, secs(t));
        assert_eq!(cache.get(&1), Some(1));
        assert_eq!(cache.take(1, || Ok::<_, io::Error>(2)).unwrap(), 1);
    }
    at(&clock, secs(10));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn jitter_spreads_deadlines_over_the_window() {
    // go-zero: the expiry is base × (1 + 0.05 − 0.1·U[0,1)), in (0.95, 1.05] × base.
    assert_eq!(DEFAULT_JITTER, 0.05);
    const KEYS: u32 = 1000;
    let step = ms(10);
    for (label, ttl, explicit) in [("set", secs(100), false), ("set_with_ttl", secs(100), true)] {
        let clock = ManualClock::new();
        let builder = Cache::builder(if explicit { secs(1) } else { ttl });
        let cache = builder.clock(clock.clone()).build().unwrap(); // the default jitter
        for k in 0..KEYS {
            if explicit {
                cache.set_with_ttl(k, k, ttl);
            } else {
                cache.set(k, k);
            }
        }
        // Walk the clock from 0.95 × ttl to 1.05 × ttl and note when each key went.
        let lower = ttl * 95 / 100;
        let upper = ttl * 105 / 100;
        at(&clock, lower);
        assert!(
            (0..KEYS).all(|k| cache.contains(&k)),
            "{label}: a key went at or before 0.95 × ttl"
        );
        let mut alive: Vec<u32> = (0..KEYS).collect();
        let mut gone_at: BTreeMap<Duration, usize> = BTreeMap::new();
        let mut t = lower;
        while t < upper {
            t += step;
            at(&clock, t);
            let before = alive.len();
            alive.retain(|k| cache.contains(k));
            if alive.len() < before {
                gone_at.insert(t, before - alive.len());
            }
        }
        assert!(
            alive.is_empty(),
            "{label}: {} keys outlived 1.05 × ttl",
            alive.len()
        );
        // They did not go together: about one key per 10 ms step, about half in each half.
        let most = gone_at.values().max().copied().unwrap_or(0);
        assert!(most <= 20, "{label}: {most} keys went in one step");
        assert!(
            gone_at.len() >= 300,
            "{label}: keys went in only {} steps",
            gone_at.len()
        );
        let first_half: usize = gone_at.range(..=ttl).map(|(_, n)| n).sum();
        assert!(
            (350..=650).contains(&first_half),
            "{label}: {first_half} went before ttl"
        );
    }
}

#[test]
fn without_jitter_entries_set_together_expire_together() {
    let (builder, clock) = manual(secs(100));
    let cache = builder.build().unwrap();
    for k in 0..100 {
        cache.set(k, k);
    }
    at(&clock, secs(100) - ns(1));
    assert!((0..100).all(|k| cache.contains(&k)));
    at(&clock, secs(100));
    assert!((0..100).all(|k| !cache.contains(&k)));
}

#[test]
fn set_with_ttl_overrides_the_cache_ttl_both_ways() {
    let (builder, clock) = manual(secs(10));
    let cache = builder.build().unwrap();
    cache.set("default", 0);
    cache.set_with_ttl("short", 1, secs(3));
    cache.set_with_ttl("long", 2, secs(30));
    at(&clock, secs(3) - ns(1));
    assert_eq!(cache.get(&"short"), Some(1));
    at(&clock, secs(3));
    assert_eq!(cache.get(&"short"), None);
    assert_eq!(cache.get(&"default"), Some(0));
    at(&clock, secs(10));
    assert_eq!(cache.get(&"default"), None);
    assert_eq!(cache.get(&"long"), Some(2));
    at(&clock, secs(30));
    assert_eq!(cache.get(&"long"), None);
    // A re-set with `set` goes back to the cache's time to live.
    cache.set_with_ttl("k", 1, secs(100));
    cache.set("k", 2);
    at(&clock, secs(40));
    assert_eq!(cache.get(&"k"), None);
    // A time to live of a nanosecond is honoured to the nanosecond.
    cache.set_with_ttl("tiny", 3, ns(1));
    assert_eq!(cache.get(&"tiny"), Some(3));
    clock.advance(ns(1));
    assert_eq!(cache.get(&"tiny"), None);
}

#[test]
fn a_zero_ttl_removes_the_key_and_stores_nothing() {
    let cache = manual(secs(10)).0.build().unwrap();
    cache.set("k", 1);
    assert_eq!(cache.set_with_ttl("k", 2, Duration::ZERO), Some(1));
    assert_eq!(cache.get(&"k"), None);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.set_with_ttl("new", 3, Duration::ZERO), None);
    assert!(!cache.contains(&"new"));
    assert_eq!(cache.len(), 0);
    assert_eq!(
        cache.snapshot().expirations,
        0,
        "a zero ttl is a removal, not an expiry"
    );
}

#[test]
fn set_and_remove_return_the_live_value_they_replace() {
    let (builder, clock) = manual(secs(10));
    let cache = builder.build().unwrap();
    assert_eq!(cache.set(1, "a"), None);
    assert_eq!(cache.set(1, "b"), Some("a"));
    at(&clock, secs(10));
    assert_eq!(cache.set(1, "c"), None, "the value replaced had expired");
    assert_eq!(cache.remove(&1), Some("c"));
    cache.set(2, "d");
    at(&clock, secs(20));
    assert_eq!(cache.remove(&2), None, "the value removed had expired");
    assert!(cache.is_empty());
}

// ---- statistics ---------------------------------------------------------------------------

#[test]
fn stats_count_hits_misses_evictions_and_expirations() {
    let (builder, clock) = manual(secs(10));
    let cache = builder.capacity(2).build().unwrap();
    assert_eq!(cache.snapshot(), CacheStats::default());
    assert_eq!(cache.snapshot().hit_ratio(), 0.0, "nothing looked up yet");

    assert_eq!(cache.get(&1), None); // miss
    cache.set(1, 10);
    cache.set(2, 20);
    assert_eq!(cache.get(&1), Some(10)); // hit; 2 is now the least recently used
    cache.set(3, 30); // evicts 2
    assert_eq!(cache.get(&2), None); // miss
    assert!(
        cache.contains(&1) && !cache.contains(&2),
        "contains counts nothing"
    );
    let stats = cache.snapshot();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.evictions,
            stats.expirations,
            stats.len
        ),
        (1, 2, 1, 0, 2)
    );
    assert!((stats.hit_ratio() - 1.0 / 3.0).abs() < 1e-12);

    // take: cached -> hit, loaded -> miss, failed -> nothing.
    assert_eq!(cache.take(1, || Ok::<_, io::Error>(0)).unwrap(), 10);
    assert_eq!(cache.take(4, || Ok::<_, io::Error>(40)).unwrap(), 40); // evicts 3
    assert!(
        cache
            .take(5, || Err::<u32, _>(io::Error::other("down")))
            .is_err()
    );
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses, stats.evictions), (2, 3, 2));

    // Expired: one met by a read (a miss and an expiration), one reclaimed by the wheel.
    at(&clock, secs(10));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.snapshot().expirations, 1);
    at(&clock, secs(11)); // the deadline's expiry tick is over
    cache.purge_expired();
    let stats = cache.snapshot();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.evictions,
            stats.expirations,
            stats.len
        ),
        (2, 4, 2, 2, 0)
    );
    assert!((stats.hit_ratio() - 2.0 / 6.0).abs() < 1e-12);

    // clear keeps the statistics.
    cache.set(9, 90);
    cache.clear();
    let after = cache.snapshot();
    assert_eq!(
        (
            after.hits,
            after.misses,
            after.evictions,
            after.expirations,
            after.len
        ),
        (2, 4, 2, 2, 0)
    );
}

#[test]
fn stats_add_up_over_shards() {
    let cache: Cache<u32, u32, _> = manual(secs(10)).0.shards(8).build().unwrap();
    assert_eq!(cache.shard_count(), 8);
    for k in 0..1000 {
        cache.set(k, k);
    }
    for k in 0..2000 {
        cache.get(&k);
    }
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses, stats.len), (1000, 1000, 1000));
    assert_eq!(cache.len(), 1000);
    assert_eq!(stats.hit_ratio(), 0.5);
}

// ---- negative caching ---------------------------------------------------------------------

#[test]
fn a_not_found_is_remembered_for_the_negative_ttl() {
    let (builder, clock) = manual(secs(60));
    let cache = builder.negative_ttl(secs(5)).build().unwrap();
    let loads = AtomicUsize::new(0);
    let load = |found: Option<&'static str>| {
        let loads = &loads;
        move || {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, io::Error>(found)
        }
    };
    assert_eq!(cache.take_optional("ghost", load(None)).unwrap(), None);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // Remembered: neither take_optional nor take loads.
    at(&clock, secs(5) - ns(1));
    assert_eq!(
        cache.take_optional("ghost", load(Some("late"))).unwrap(),
        None
    );
    assert!(matches!(
        cache.take("ghost", || Ok::<_, io::Error>("late")),
        Err(TakeError::NotFound)
    ));
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // get answers `None` from the cache (a hit); contains does not count it as a value.
    assert_eq!(cache.get(&"ghost"), None);
    assert!(!cache.contains(&"ghost"));
    assert_eq!(cache.len(), 1);
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses), (3, 1));
    // Forgotten after the negative time to live: the loader runs again.
    at(&clock, secs(5));
    assert_eq!(
        cache.take_optional("ghost", load(Some("found"))).unwrap(),
        Some("found")
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get(&"ghost"), Some("found"));
    // A set replaces a remembered "not found".
    cache.take_optional("other", load(None)).unwrap();
    assert_eq!(cache.set("other", "set"), None);
    assert_eq!(
        cache.take("other", || Ok::<_, io::Error>("x")).unwrap(),
        "set"
    );
}

#[test]
fn without_negative_ttl_a_not_found_is_not_cached() {
    let cache = manual(secs(60)).0.build().unwrap();
    let loads = AtomicUsize::new(0);
    for _ in 0..3 {
        let found = cache.take_optional(7, || {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<Option<u32>, io::Error>(None)
        });
        assert_eq!(found.unwrap(), None);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.snapshot().misses, 3, "each load is a miss");
    // take() of a loader's `Some` caches it as usual.
    assert_eq!(
        cache
            .take_optional(7, || Ok::<_, io::Error>(Some(70)))
            .unwrap(),
        Some(70)
    );
    assert_eq!(cache.get(&7), Some(70));
}

// ---- memory: purge, len, clear -------------------------------------------------------------

#[test]
fn purge_expired_reclaims_once_the_expiry_tick_is_over() {
    let (builder, clock) = manual(secs(64));
    let cache: Cache<u32, u32, _> = builder.expiry_tick(secs(1)).shards(1).build().unwrap();
    let empty = cache.allocated_bytes();
    for k in 0..1000 {
        cache.set(k, k);
    }
    let full = cache.allocated_bytes();
    assert!(full > empty);
    cache.set_with_ttl(5000, 0, secs(100));
    // At the deadline the entries are dead but their tick (64 s..65 s) is not over.
    at(&clock, secs(64));
    cache.purge_expired();
    assert_eq!(cache.len(), 1001);
    assert!(!cache.contains(&0));
    at(&clock, secs(65) - ns(1));
    cache.purge_expired();
    assert_eq!(cache.len(), 1001);
    at(&clock, secs(65));
    cache.purge_expired();
    assert_eq!(cache.len(), 1);
    let stats = cache.snapshot();
    assert_eq!((stats.expirations, stats.len), (1000, 1));
    assert!(
        cache.allocated_bytes() < full / 4,
        "the slab was not compacted: {} of {full} bytes",
        cache.allocated_bytes()
    );
    assert_eq!(
        cache.get(&5000),
        Some(0),
        "the live entry survived the compaction"
    );
}

#[test]
fn compaction_keeps_every_live_entry_and_the_recency_order() {
    for eviction in POLICIES {
        let (builder, clock) = manual(secs(10));
        let cache: Cache<u32, u32, _> = builder
            .capacity(100)
            .shards(1)
            .eviction(eviction)
            .expiry_tick(secs(1))
            .build()
            .unwrap();
        for k in 0..80 {
            cache.set(k, k);
        }
        let survivors: Vec<u32> = (1000..1010).collect();
        for &k in &survivors {
            cache.set_with_ttl(k, k, secs(100));
        }
        assert_eq!(cache.get(&1000), Some(1000)); // now the survivors' most recent
        let full = cache.allocated_bytes();
        at(&clock, secs(11));
        cache.purge_expired(); // 80 of 90 slots expire: the slab is compacted
        assert_eq!(cache.len(), 10);
        assert!(
            cache.allocated_bytes() < full,
            "{eviction:?}: not compacted"
        );
        assert!(survivors.iter().all(|k| cache.contains(k)), "{eviction:?}");
        // From least to most recently used: 1001 .. 1009, then 1000 (read before the
        // compaction; under second chance, its flag survived it). Fill up, evict two.
        for k in 0..90 {
            cache.set(k, k);
        }
        cache.set(90, 90);
        cache.set(91, 91);
        let left: Vec<bool> = survivors.iter().map(|k| cache.contains(k)).collect();
        let mut want = vec![true; 10];
        want[1] = false;
        want[2] = false;
        assert_eq!(left, want, "{eviction:?}");
    }
}

#[test]
fn mass_removal_gives_memory_back_at_once() {
    let cache: Cache<u32, u32, _> = manual(secs(60)).0.shards(1).build().unwrap();
    let empty = cache.allocated_bytes();
    for k in 0..1000 {
        cache.set(k, k);
    }
    let full = cache.allocated_bytes();
    for k in 10..1000 {
        assert_eq!(cache.remove(&k), Some(k));
    }
    // No clock movement, no sweep: the removals themselves compacted the slab.
    assert!(
        cache.allocated_bytes() < full / 4,
        "{} of {full} bytes",
        cache.allocated_bytes()
    );
    assert!((0..10).all(|k| cache.get(&k) == Some(k)));
    for k in 0..10 {
        cache.remove(&k);
    }
    assert!(
        cache.allocated_bytes() <= empty + 64 * 64,
        "{} bytes left",
        cache.allocated_bytes()
    );
}

#[test]
fn operations_reclaim_their_shard_as_they_go() {
    let (builder, clock) = manual(secs(64));
    let cache: Cache<u32, u32, _> = builder.expiry_tick(secs(1)).shards(1).build().unwrap();
    for k in 0..100 {
        cache.set(k, k);
    }
    at(&clock, secs(65));
    assert_eq!(cache.len(), 100, "nobody touched the shard yet");
    assert_eq!(cache.get(&1000), None); // any operation sweeps its shard
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.snapshot().expirations, 100);
}

#[test]
fn clear_removes_everything() {
    let cache: Cache<u32, u32, _> = manual(secs(10)).0.capacity(1000).build().unwrap();
    for k in 0..600 {
        cache.set(k, k);
    }
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(cache.get(&1), None);
    assert!(!cache.contains(&2));
    // Usable afterwards, bound included.
    for k in 0..2000 {
        cache.set(k, k);
    }
    assert!(cache.len() <= 1000 + cache.shard_count());
    assert_eq!(cache.get(&1999), Some(1999));
}

// ---- configuration ------------------------------------------------------------------------

#[test]
fn every_bad_configuration_is_refused() {
    fn err(
        build: impl FnOnce(
            keel_collection::cache::Builder<u8, u8>,
        ) -> keel_collection::cache::Builder<u8, u8>,
    ) -> ConfigError {
        build(Cache::builder(secs(1))).build().unwrap_err()
    }
    assert_eq!(
        Cache::<u8, u8>::new(Duration::ZERO).unwrap_err(),
        ConfigError::ZeroTtl
    );
    assert_eq!(
        Cache::<u8, u8>::builder(Duration::ZERO)
            .build()
            .unwrap_err(),
        ConfigError::ZeroTtl
    );
    assert_eq!(
        err(|b| b.negative_ttl(Duration::ZERO)),
        ConfigError::ZeroNegativeTtl
    );
    assert_eq!(err(|b| b.capacity(0)), ConfigError::ZeroCapacity);
    assert_eq!(err(|b| b.jitter(-0.01)), ConfigError::Jitter(-0.01));
    assert_eq!(err(|b| b.jitter(1.0)), ConfigError::Jitter(1.0));
    assert!(matches!(err(|b| b.jitter(f64::NAN)), ConfigError::Jitter(j) if j.is_nan()));
    assert_eq!(
        err(|b| b.jitter(f64::INFINITY)),
        ConfigError::Jitter(f64::INFINITY)
    );
    assert_eq!(err(|b| b.shards(0)), ConfigError::Shards(0));
    assert_eq!(err(|b| b.shards(3)), ConfigError::Shards(3));
    assert_eq!(
        err(|b| b.shards(2 * MAX_SHARDS)),
        ConfigError::Shards(2 * MAX_SHARDS)
    );
    assert_eq!(
        err(|b| b.expiry_tick(Duration::ZERO)),
        ConfigError::ZeroExpiryTick
    );
    assert_eq!(
        err(|b| b.report_interval(Duration::ZERO)),
        ConfigError::ZeroReportInterval
    );
    assert_eq!(
        err(|b| b.capacity(usize::MAX).shards(1)),
        ConfigError::CapacityTooLarge(usize::MAX)
    );
    // Each says what is wrong.
    let all = [
        ConfigError::ZeroTtl,
        ConfigError::ZeroNegativeTtl,
        ConfigError::ZeroCapacity,
        ConfigError::Jitter(2.0),
        ConfigError::Shards(3),
        ConfigError::ZeroExpiryTick,
        ConfigError::ZeroReportInterval,
        ConfigError::CapacityTooLarge(usize::MAX),
    ];
    let messages: std::collections::HashSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), all.len());
    // And the edges that are fine.
    for ok in [
        Cache::<u8, u8>::builder(ns(1)).jitter(0.0).build(),
        Cache::builder(secs(1)).jitter(0.999).build(),
        Cache::builder(secs(1)).shards(1).capacity(1).build(),
        Cache::builder(secs(1)).shards(MAX_SHARDS).build(),
        Cache::builder(secs(1))
            .expiry_tick(ns(1))
            .negative_ttl(ns(1))
            .report_interval(ns(1))
            .build(),
    ] {
        ok.unwrap();
    }
}

#[test]
fn a_seeded_cache_repeats_its_placement_evictions_and_deadlines() {
    let run = |seed: u64| {
        let clock = ManualClock::new();
        let cache: Cache<u64, u64, ManualClock> = Cache::builder(secs(100))
            .capacity(2048)
            .shards(8)
            .seed(seed)
            .clock(clock.clone())
            .build()
            .unwrap();
        for k in 0..10_000u64 {
            cache.set(k, k);
        }
        // Inside the jitter window (95 s, 105 s]: which keys are still alive depends on each
        // key's jitter, and which were kept on the shard each landed in.
        clock.advance(secs(97));
        let alive: Vec<u64> = (0..10_000).filter(|k| cache.contains(k)).collect();
        (alive, cache.snapshot())
    };
    let (first, first_stats) = run(7);
    let (again, again_stats) = run(7);
    assert_eq!(first, again);
    assert_eq!(first_stats, again_stats);
    assert!(!first.is_empty() && first.len() < 2048, "{}", first.len());
    let (other, _) = run(8);
    assert_ne!(
        first, other,
        "another seed places and jitters keys differently"
    );
}
