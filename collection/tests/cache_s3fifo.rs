//! `Eviction::S3Fifo`: what it keeps that LRU does not, and that it never serves anything
//! but the last value set (a proptest against a map: which key goes is the policy's choice,
//! what a key reads as is not).

use std::collections::HashMap;
use std::time::Duration;

use keel_collection::cache::{Cache, Eviction};
use keel_timex::ManualClock;
use proptest::prelude::*;

fn cache(capacity: usize, eviction: Eviction) -> Cache<u64, u64, ManualClock> {
    Cache::builder(Duration::from_secs(3600))
        .capacity(capacity)
        .eviction(eviction)
        .shards(1)
        .jitter(0.0)
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// A hot set read over and over, then a scan of keys read once: LRU loses the hot set to
/// the scan, S3-FIFO keeps it (the scan's keys pass through the small queue and leave).
#[test]
fn a_scan_does_not_push_out_the_keys_read_again() {
    let survivors = |eviction| {
        let cache = cache(100, eviction);
        for round in 0..3 {
            for k in 0..50 {
                if cache.get(&k).is_none() {
                    cache.set(k, k + round);
                }
            }
        }
        // Read-through: a miss, then the set; never read again.
        for k in 1_000..2_000 {
            if cache.get(&k).is_none() {
                cache.set(k, k);
            }
        }
        (0..50).filter(|k| cache.contains(k)).count()
    };
    assert_eq!(survivors(Eviction::S3Fifo), 50);
    assert_eq!(survivors(Eviction::Lru), 0);
}

/// Keys set once and never read (one-hit wonders) are evicted before keys read since
/// they were set.
#[test]
fn one_hit_wonders_go_first() {
    let cache = cache(100, Eviction::S3Fifo);
    for k in 0..100 {
        cache.set(k, k);
    }
    for k in 0..60 {
        assert_eq!(cache.get(&k), Some(k));
    }
    for k in 10_000..10_500 {
        cache.set(k, k);
    }
    assert!((0..60).all(|k| cache.contains(&k)));
    assert_eq!(cache.len(), 100);
    assert_eq!(cache.snapshot().evictions, 500);
}

/// A key evicted from the small queue and set again soon after is remembered by the ghost
/// and goes to the main queue: a later scan does not evict it.
#[test]
fn a_key_back_soon_after_its_eviction_is_kept() {
    let cache = cache(50, Eviction::S3Fifo);
    for k in 0..51 {
        cache.set(k, k); // 0 leaves the small queue unread: a ghost
    }
    assert!(!cache.contains(&0));
    cache.set(0, 7);
    for k in 100..200 {
        cache.set(k, k);
    }
    assert_eq!(cache.get(&0), Some(7));
}

#[derive(Debug, Clone)]
enum Op {
    Get(u64),
    Set(u64, u64),
    Remove(u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let key = || 0u64..120;
    prop_oneof![
        5 => key().prop_map(Op::Get),
        5 => (key(), 0u64..1000).prop_map(|(k, v)| Op::Set(k, v)),
        1 => key().prop_map(Op::Remove),
        1 => (0u64..400).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever S3-FIFO evicts, a key reads as its last value set (or as nothing once evicted,
    /// removed or expired, never as an older value); the bound holds; hits and misses count
    /// the reads; every key set and gone is an eviction, a removal or an expiration.
    #[test]
    fn s3fifo_serves_only_the_last_value_set(
        capacity in 1usize..60,
        shards in prop_oneof![Just(1usize), Just(2), Just(4)],
        ops in prop::collection::vec(op(), 1..600),
    ) {
        let clock = ManualClock::new();
        let ttl = Duration::from_millis(1000);
        let cache: Cache<u64, u64, ManualClock> = Cache::builder(ttl)
            .capacity(capacity * shards)
            .shards(shards)
            .eviction(Eviction::S3Fifo)
            .jitter(0.0)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut last: HashMap<u64, (u64, Duration)> = HashMap::new();
        let mut now = Duration::ZERO;
        let (mut hits, mut misses) = (0, 0);
        for op in &ops {
            match *op {
                Op::Get(k) => match cache.get(&k) {
                    Some(v) => {
                        hits += 1;
                        let (want, deadline) = last[&k];
                        prop_assert_eq!(v, want, "key {}", k);
                        prop_assert!(deadline > now);
                    }
                    None => misses += 1,
                },
                Op::Set(k, v) => {
                    cache.set(k, v);
                    last.insert(k, (v, now + ttl));
                }
                Op::Remove(k) => {
                    cache.remove(&k);
                    last.remove(&k);
                }
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    now += Duration::from_millis(ms);
                }
            }
            prop_assert!(cache.len() <= capacity * shards);
        }
        let stats = cache.snapshot();
        prop_assert_eq!((stats.hits, stats.misses), (hits, misses));
    }
}
