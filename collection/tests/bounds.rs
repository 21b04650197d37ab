//! The documented bounds of the collections: rings and queues of any capacity cost what they
//! hold (nothing is allocated for capacity up front beyond a small first chunk), and every
//! cache setting is accepted and works, or is the `ConfigError` naming its bound.

use std::time::Duration;

use keel_collection::cache::{Cache, ConfigError, MAX_SHARDS};
use keel_collection::{Fifo, Ring, ZeroCapacity};
use keel_timex::ManualClock;

#[test]
fn rings_of_any_capacity_keep_the_last_values() {
    assert_eq!(Ring::<u8>::new(0).unwrap_err(), ZeroCapacity);
    for capacity in [
        1usize,
        2,
        63,
        64,
        65,
        1000,
        1 << 40,
        usize::MAX - 1,
        usize::MAX,
    ] {
        let ring = Ring::new(capacity).unwrap();
        assert_eq!(ring.capacity(), capacity);
        assert!(ring.is_empty());
        for i in 0..300u32 {
            ring.add(i);
        }
        let kept = ring.take();
        let want: Vec<u32> = (300 - capacity.min(300) as u32..300).collect();
        assert_eq!(kept, want, "capacity {capacity}");
        assert_eq!(ring.len(), capacity.min(300));
    }
}

#[test]
fn queues_of_any_initial_capacity_work() {
    assert_eq!(Fifo::<u8>::with_capacity(0).unwrap_err(), ZeroCapacity);
    assert_eq!(Fifo::<u8>::MAX_INITIAL, 1024);
    for capacity in [1usize, 1024, 1025, 1 << 40, usize::MAX] {
        let queue = Fifo::with_capacity(capacity).unwrap();
        for i in 0..3000u32 {
            queue.put(i);
        }
        assert_eq!(queue.len(), 3000);
        assert_eq!(queue.take(), Some(0));
        assert_eq!(queue.len(), 2999);
    }
}

fn cache(ttl: Duration) -> keel_collection::cache::Builder<u64, u64, ManualClock> {
    Cache::builder(ttl).clock(ManualClock::new())
}

#[test]
fn capacities_beyond_the_shards_are_refused_and_huge_ones_work() {
    let per_shard = (1usize << 31) - 1;
    for capacity in [usize::MAX, usize::MAX / 2, per_shard * MAX_SHARDS + 1] {
        let err = cache(Duration::from_secs(1))
            .capacity(capacity)
            .shards(MAX_SHARDS)
            .build()
            .err()
            .unwrap();
        assert_eq!(err, ConfigError::CapacityTooLarge(capacity));
        assert!(err.to_string().contains("2147483647"), "{err}");
    }
    assert!(matches!(
        cache(Duration::from_secs(1))
            .capacity(per_shard + 1)
            .shards(1)
            .build(),
        Err(ConfigError::CapacityTooLarge(_))
    ));
    for (capacity, shards) in [(per_shard * MAX_SHARDS, MAX_SHARDS), (per_shard, 1)] {
        let c = cache(Duration::from_secs(60))
            .capacity(capacity)
            .shards(shards)
            .build()
            .unwrap();
        for k in 0..100 {
            c.set(k, k * 2);
        }
        assert_eq!(c.get(&7), Some(14));
        assert_eq!(c.len(), 100);
    }
}

#[test]
fn shard_counts_and_jitters_outside_their_bounds_are_refused() {
    for shards in [0, 3, MAX_SHARDS + 1, MAX_SHARDS * 2, usize::MAX] {
        assert_eq!(
            cache(Duration::from_secs(1)).shards(shards).build().err(),
            Some(ConfigError::Shards(shards))
        );
    }
    for jitter in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.1,
        1.0,
        f64::MAX,
    ] {
        let err = cache(Duration::from_secs(1)).jitter(jitter).build().err();
        assert!(matches!(err, Some(ConfigError::Jitter(_))), "{jitter}");
    }
    for jitter in [0.0, -0.0, f64::MIN_POSITIVE, 0.5, 0.999_999] {
        let c = cache(Duration::from_secs(1))
            .jitter(jitter)
            .build()
            .unwrap();
        c.set(1, 1);
        assert_eq!(c.get(&1), Some(1), "{jitter}");
    }
}

#[test]
fn durations_from_the_whole_range_work() {
    for d in [
        Duration::from_nanos(1),
        Duration::from_secs(1),
        Duration::from_nanos(u64::MAX),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let clock = ManualClock::new();
        let c: Cache<u64, u64, ManualClock> = Cache::builder(d)
            .negative_ttl(d)
            .expiry_tick(d)
            .report_interval(d)
            .capacity(10)
            .clock(clock.clone())
            .build()
            .unwrap();
        c.set(1, 1);
        c.set_with_ttl(2, 2, Duration::MAX);
        assert_eq!(c.get(&2), Some(2), "{d:?}");
        clock.advance(d.min(Duration::from_secs(3600)));
        let _ = c.get(&1);
        // Past the clock's 292-year horizon every deadline is over: stale values are never
        // served, and the cache stores nothing more.
        clock.advance(Duration::MAX);
        assert_eq!(c.get(&2), None, "{d:?}");
        c.set(3, 3);
        assert_eq!(c.get(&3), None);
        c.purge_expired();
        assert_eq!(c.len(), 0, "{d:?}");
    }
    for zero in [
        cache(Duration::ZERO).build().err(),
        cache(Duration::from_secs(1))
            .negative_ttl(Duration::ZERO)
            .build()
            .err(),
        cache(Duration::from_secs(1))
            .expiry_tick(Duration::ZERO)
            .build()
            .err(),
        cache(Duration::from_secs(1))
            .report_interval(Duration::ZERO)
            .build()
            .err(),
        cache(Duration::from_secs(1)).capacity(0).build().err(),
    ] {
        assert!(zero.is_some());
    }
}
