//! [`KeyedCells`]: one `AtomicU64` per key, in shards, with exact idle eviction and an
//! optional cap.
//!
//! Both limiters keep a key's whole state in one `u64` (a token bucket's theoretical
//! arrival time; a window's end and count), updated by compare-and-swap under a shard's
//! *read* lock: concurrent requests for existing keys never serialise on a lock, only on
//! the key's own word. A new key takes the shard's write lock once.
//!
//! A key is identified by its 64-bit hash under a random per-limiter seed (ahash), not by
//! its text: a table slot is 16 bytes (hash + state) and a new key allocates nothing. Two
//! keys share a cell only if their hashes collide, with probability about n² / 2^65 for n
//! live keys (one in 37 million at a million keys); they would then share one bucket,
//! which can only make the limit stricter for those two, never looser. The seed is
//! unknown outside the process, so collisions cannot be aimed.
//!
//! A key whose state says "at rest" (a full bucket, an ended window) means exactly what an
//! absent key means, so removing it changes no decision. Each shard sweeps such keys when
//! it has doubled since its last sweep: memory stays proportional to the keys active in the
//! last refill time / window, whatever the churn, at amortised O(1) per new key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::RwLock;

/// How a cell's value ages.
pub(crate) trait Idle {
    /// Nanoseconds from `now` until a cell holding `value` is at rest (0: already).
    fn idle_in(&self, value: u64, now: u64) -> u64;
}

/// The smallest a shard grows before its first sweep.
const FIRST_SWEEP: usize = 64;

/// The map's keys are already hashes: pass them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key type is u64); fold anything else in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
}

struct Shard {
    map: HashMap<u64, AtomicU64, BuildHasherDefault<PassThrough>>,
    /// Sweep when the map reaches this size.
    sweep_at: usize,
}

pub(crate) struct KeyedCells {
    shards: Box<[CachePadded<RwLock<Shard>>]>,
    hasher: ahash::RandomState,
    mask: usize,
    /// The key cap, or `usize::MAX`.
    max_keys: usize,
    /// Keys held, all shards (changed only when a key is added or swept).
    count: CachePadded<AtomicUsize>,
}

/// A new key could not be added: the cap is reached and nothing is idle. Holds the
/// nanoseconds until the first entry of that shard is at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full(pub(crate) u64);

impl KeyedCells {
    pub(crate) fn new(max_keys: Option<usize>) -> KeyedCells {
        let parallelism = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (parallelism * 16).next_power_of_two().clamp(16, 256);
        KeyedCells {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(RwLock::new(Shard {
                        map: HashMap::default(),
                        sweep_at: FIRST_SWEEP,
                    }))
                })
                .collect(),
            hasher: ahash::RandomState::new(),
            mask: shards - 1,
            max_keys: max_keys.unwrap_or(usize::MAX),
            count: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// The key's hash and its shard. The shard takes bits 32.. of the hash; the map inside
    /// uses the low bits (its index) and the top 7 (its control bytes).
    #[inline]
    fn locate(&self, key: &str) -> (u64, &RwLock<Shard>) {
        let h = self.hasher.hash_one(key);
        (h, &self.shards[(h >> 32) as usize & self.mask])
    }

    /// Applies `f` to `key`'s value (0 for a new key) with compare-and-swap: `f` returns
    /// the value to store (or `None` to leave it) and the result.
    #[inline]
    pub(crate) fn update<R>(
        &self,
        key: &str,
        now: u64,
        idle: &impl Idle,
        mut f: impl FnMut(u64) -> (Option<u64>, R),
    ) -> Result<R, Full> {
        let (h, shard) = self.locate(key);
        {
            let read = shard.read();
            if let Some(cell) = read.map.get(&h) {
                return Ok(cas_loop(cell, &mut f));
            }
        }
        let mut swept_all = false;
        loop {
            let mut write = shard.write();
            if let Some(cell) = write.map.get(&h) {
                return Ok(cas_loop(cell, &mut f));
            }
            if write.map.len() >= write.sweep_at {
                self.sweep(&mut write, now, idle);
            }
            // Reserve a place under the cap before inserting.
            let reserved = self
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                    (c < self.max_keys).then_some(c + 1)
                })
                .is_ok();
            if reserved {
                let cell = write.map.entry(h).or_insert_with(|| AtomicU64::new(0));
                return Ok(cas_loop(cell, &mut f));
            }
            drop(write);
            // At the cap: sweep every shard once (one lock at a time), then try again.
            if !swept_all {
                self.sweep_all(now, idle);
                swept_all = true;
                continue;
            }
            let soonest = self
                .shards
                .iter()
                .filter_map(|s| {
                    s.read()
                        .map
                        .values()
                        .map(|c| idle.idle_in(c.load(Ordering::Relaxed), now))
                        .min()
                })
                .min()
                .unwrap_or(0);
            return Err(Full(soonest.max(1)));
        }
    }

    /// Keys held, including idle ones not swept yet.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Removes every idle key now; returns how many are left.
    pub(crate) fn sweep_all(&self, now: u64, idle: &impl Idle) -> usize {
        for s in self.shards.iter() {
            self.sweep(&mut s.write(), now, idle);
        }
        self.len()
    }

    fn sweep(&self, shard: &mut Shard, now: u64, idle: &impl Idle) {
        let before = shard.map.len();
        shard
            .map
            .retain(|_, cell| idle.idle_in(cell.load(Ordering::Relaxed), now) > 0);
        let after = shard.map.len();
        self.count.fetch_sub(before - after, Ordering::AcqRel);
        shard.map.shrink_to(after * 2);
        // Sweep again when the live set has doubled (amortised O(1) per insert).
        shard.sweep_at = (after * 2).max(FIRST_SWEEP);
    }

    /// A key's current value, if held.
    pub(crate) fn get(&self, key: &str) -> Option<u64> {
        let (h, shard) = self.locate(key);
        shard.read().map.get(&h).map(|c| c.load(Ordering::Acquire))
    }
}

/// The one atomic operation of a decision, so the loom tests can run [`cas_loop`] on
/// loom's atomics.
pub(crate) trait Word {
    fn load_acquire(&self) -> u64;
    fn cas_weak(&self, current: u64, next: u64) -> Result<u64, u64>;
}

impl Word for AtomicU64 {
    #[inline]
    fn load_acquire(&self) -> u64 {
        self.load(Ordering::Acquire)
    }
    #[inline]
    fn cas_weak(&self, current: u64, next: u64) -> Result<u64, u64> {
        self.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
    }
}

/// Applies `f` to the word until its compare-and-swap lands: a decision is linearised at
/// that instant, on the value it was computed from.
#[inline]
fn cas_loop<W: Word, R>(cell: &W, f: &mut impl FnMut(u64) -> (Option<u64>, R)) -> R {
    let mut current = cell.load_acquire();
    loop {
        let (next, result) = f(current);
        let Some(next) = next else {
            return result;
        };
        match cell.cas_weak(current, next) {
            Ok(_) => return result,
            Err(seen) => current = seen,
        }
    }
}

/// The cell of an unkeyed limiter: the same compare-and-swap, no map.
#[inline]
pub(crate) fn update_cell<R>(cell: &AtomicU64, mut f: impl FnMut(u64) -> (Option<u64>, R)) -> R {
    cas_loop(cell, &mut f)
}

impl std::fmt::Debug for KeyedCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedCells")
            .field("shards", &self.shards.len())
            .field("keys", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Values are "idle at" times.
    struct At;
    impl Idle for At {
        fn idle_in(&self, value: u64, now: u64) -> u64 {
            value.saturating_sub(now)
        }
    }

    fn set(cells: &KeyedCells, key: &str, now: u64, value: u64) -> Result<(), Full> {
        cells.update(key, now, &At, |_| (Some(value), ()))
    }

    #[test]
    fn new_keys_start_at_zero_and_updates_stick() {
        let cells = KeyedCells::new(None);
        let seen = cells.update("a", 0, &At, |v| (Some(v + 5), v)).unwrap();
        assert_eq!(seen, 0);
        assert_eq!(cells.get("a"), Some(5));
        let seen = cells.update("a", 0, &At, |v| (None, v)).unwrap();
        assert_eq!(seen, 5);
        assert_eq!(cells.get("b"), None);
    }

    #[test]
    fn churn_is_swept_and_memory_stays_bounded() {
        let cells = KeyedCells::new(None);
        // 100 000 keys, each idle 10 "ns" after its use, time moving 1 per key.
        for i in 0..100_000u64 {
            set(&cells, &format!("k{i}"), i, i + 10).unwrap();
        }
        assert!(cells.len() < 16 * 256, "{} keys held", cells.len());
        assert_eq!(cells.sweep_all(200_000, &At), 0);
    }

    #[test]
    fn the_cap_refuses_new_keys_until_one_is_idle() {
        let cells = KeyedCells::new(Some(16));
        for i in 0..16 {
            set(&cells, &format!("k{i}"), 0, 1000 + i).unwrap();
        }
        assert_eq!(set(&cells, "new", 0, 5), Err(Full(1000)));
        assert_eq!(cells.len(), 16);
        // Existing keys still update.
        set(&cells, "k3", 0, 2000).unwrap();
        // Once k0 is idle the new key fits.
        set(&cells, "new", 1000, 5).unwrap();
        assert_eq!(cells.len(), 16);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::rate::{Gcra, Rate, Step};
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU64 as LoomU64, Ordering as LoomOrdering};
    use loom::thread;

    impl Word for LoomU64 {
        fn load_acquire(&self) -> u64 {
            self.load(LoomOrdering::Acquire)
        }
        fn cas_weak(&self, current: u64, next: u64) -> Result<u64, u64> {
            self.compare_exchange_weak(current, next, LoomOrdering::AcqRel, LoomOrdering::Acquire)
        }
    }

    fn take(cell: &LoomU64, gcra: Gcra) -> bool {
        cas_loop(cell, &mut |tat| match gcra.step(tat, 1_000, 1) {
            Step::Allow(next) => (Some(next), true),
            Step::Deny(_) => (None, false),
        })
    }

    /// Two callers race for the last token: exactly one gets it, in every interleaving.
    #[test]
    fn loom_the_last_token_goes_to_exactly_one_caller() {
        loom::model(|| {
            let gcra = Gcra::new(Rate::per_second(1), 1).unwrap();
            let cell = Arc::new(LoomU64::new(0));
            let other = {
                let cell = cell.clone();
                thread::spawn(move || take(&cell, gcra))
            };
            let mine = take(&cell, gcra);
            let theirs = other.join().unwrap();
            assert!(mine ^ theirs, "mine {mine}, theirs {theirs}");
        });
    }

    /// Two callers with room for both: both get one and no token is lost or doubled.
    #[test]
    fn loom_concurrent_takes_all_land() {
        loom::model(|| {
            let gcra = Gcra::new(Rate::per_second(1), 2).unwrap();
            let cell = Arc::new(LoomU64::new(0));
            let other = {
                let cell = cell.clone();
                thread::spawn(move || take(&cell, gcra))
            };
            assert!(take(&cell, gcra));
            assert!(other.join().unwrap());
            assert_eq!(cell.load(LoomOrdering::Acquire), 1_000 + 2 * gcra.interval);
        });
    }
}
