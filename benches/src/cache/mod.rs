//! [`CacheUnderTest`]: the adapter the cache suite drives, its implementations for keel and
//! its peers, and the key walks of the timed benchmarks.

pub mod memory;
pub mod zipf;

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use keel_collection::cache::{Cache, Eviction};
use lru::LruCache;
use parking_lot::Mutex;

pub use crate::timingwheel::Rng;

/// Entries of every cache: its capacity, and the keys prefilled before the timed groups.
pub const ENTRIES: usize = 100_000;

/// The time to live of keel's and moka's entries: far longer than the suite runs.
pub const TTL: Duration = Duration::from_secs(300);

/// Entries of a [`Walk`]'s table: 2^20, so a walk reads fresh keys for about a million
/// operations before it wraps.
pub const DRAWS: usize = 1 << 20;

/// The share of writes in the read/write mix: one in [`MIX_WRITE_ONE_IN`].
pub const MIX_WRITE_ONE_IN: u64 = 10;

/// Marks a key as new (never resident) in [`new_key`]; in a mix [`Walk`], marks a write.
const TOP_BIT: u64 = 1 << 63;

/// An odd multiplier: `i * SPREAD` mod 2^63 is a bijection, so [`resident_key`]s are
/// distinct and spread over 63 bits.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// A cache of `u64` keys and values as the suite sees it.
pub trait CacheUnderTest: Send + Sync + Sized {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;

    /// An empty cache bounded to `capacity` entries (keel and moka with [`TTL`]).
    fn with_capacity(capacity: usize) -> Self;

    /// The value of `key`, if the cache holds it (a hit also counts as a use: LRU order,
    /// frequency, ...).
    fn get(&self, key: u64) -> Option<u64>;

    /// Sets `key` to `value`, evicting another entry if the cache is full.
    fn insert(&self, key: u64, value: u64);

    /// Finishes work the cache defers (moka's pending maintenance); nothing for the others.
    fn settle(&self) {}

    /// Entries held (after [`settle`](CacheUnderTest::settle)).
    fn len(&self) -> usize;

    /// Whether the cache is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache's own account of its heap, where it has one (keel's `allocated_bytes()`).
    fn allocated_bytes(&self) -> Option<usize> {
        None
    }

    /// The cache's own hit and miss counts, where it keeps them (keel's `snapshot()`).
    fn hits_misses(&self) -> Option<(u64, u64)> {
        None
    }
}

/// The `i`-th resident key: `i * SPREAD` mod 2^63 (top bit clear, distinct for distinct
/// `i < 2^63`).
#[inline]
pub fn resident_key(i: usize) -> u64 {
    (i as u64).wrapping_mul(SPREAD) & !TOP_BIT
}

thread_local! {
    /// The position of this thread's walk (`usize::MAX`: not started). A `const` cell
    /// without a destructor: reading it is one thread-relative load.
    static CURSOR: Cell<usize> = const { Cell::new(usize::MAX) };
    /// This thread's next new key (0: not started).
    static NEXT_NEW: Cell<u64> = const { Cell::new(0) };
}

/// Where threads start their walks: each new thread one stride further, so two benchmark
/// threads walk far apart and do not ask for the same key at the same moment.
static STARTS: AtomicUsize = AtomicUsize::new(0);
/// The distance between two threads' starting points (a prime, about a third of [`DRAWS`]).
const START_STRIDE: usize = 349_529;

/// Threads that have asked for a new key: each gets its own range of 2^40 keys.
static NEW_KEY_THREADS: AtomicU64 = AtomicU64::new(0);

/// A key no cache has held: the top bit set, this thread's number in bits 40..63 and a
/// count in the low 40 bits. One thread-local load and store.
#[inline]
pub fn new_key() -> u64 {
    let next = NEXT_NEW.get();
    let key = if next == 0 {
        let thread = NEW_KEY_THREADS.fetch_add(1, Ordering::Relaxed) + 1;
        TOP_BIT | (thread << 40)
    } else {
        next
    };
    NEXT_NEW.set(key + 1);
    key
}

/// [`DRAWS`] keys drawn before timing, walked in a cycle by every thread from its own
/// starting point. In a mix walk, a key with its top bit set is a write of the key without
/// it.
#[derive(Debug)]
pub struct Walk {
    keys: Box<[u64]>,
}

impl Walk {
    /// Keys drawn uniformly from `keys`.
    pub fn uniform(keys: &[u64], rng: &mut Rng) -> Walk {
        assert!(!keys.is_empty(), "a walk needs keys");
        Walk {
            keys: (0..DRAWS)
                .map(|_| keys[rng.below(keys.len() as u64) as usize])
                .collect(),
        }
    }

    /// Keys drawn uniformly from `keys`, one in [`MIX_WRITE_ONE_IN`] (at random) marked as
    /// a write.
    pub fn mix(keys: &[u64], rng: &mut Rng) -> Walk {
        let mut walk = Walk::uniform(keys, rng);
        for k in walk.keys.iter_mut() {
            if rng.below(MIX_WRITE_ONE_IN) == 0 {
                *k |= TOP_BIT;
            }
        }
        walk
    }

    /// Writes in the table.
    pub fn writes(&self) -> usize {
        self.keys.iter().filter(|&&k| k & TOP_BIT != 0).count()
    }

    /// The calling thread's next entry: one thread-local load and store, a compare and an
    /// index.
    #[inline]
    fn next(&self) -> u64 {
        let at = CURSOR.get();
        let next = if at < DRAWS - 1 {
            at + 1
        } else if at == usize::MAX {
            STARTS
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(START_STRIDE)
                % DRAWS
        } else {
            0
        };
        CURSOR.set(next);
        self.keys[next]
    }
}

/// A cache holding resident keys, and the walks over those it holds.
#[derive(Debug)]
pub struct Loaded<C> {
    cache: C,
    /// The resident keys the cache holds after the prefill.
    held: usize,
    reads: Walk,
    mix: Walk,
}

impl<C: CacheUnderTest> Loaded<C> {
    /// `C::with_capacity(n)` with the resident keys `0..n` inserted (each key its own value),
    /// settled, and walks drawn from those it then holds (all of them, unless the cache
    /// evicted some on the way: a sharded bound can fill one shard before the whole). The
    /// same seed for every cache.
    pub fn prefilled(n: usize, seed: u64) -> Loaded<C> {
        let cache = C::with_capacity(n);
        for i in 0..n {
            let k = resident_key(i);
            cache.insert(k, k);
        }
        cache.settle();
        let held: Vec<u64> = (0..n)
            .map(resident_key)
            .filter(|&k| cache.get(k) == Some(k))
            .collect();
        assert!(!held.is_empty(), "{}: holds none of its keys", C::NAME);
        let mut rng = Rng::new(seed);
        let reads = Walk::uniform(&held, &mut rng);
        let mix = Walk::mix(&held, &mut rng);
        Loaded {
            cache,
            held: held.len(),
            reads,
            mix,
        }
    }

    /// The cache.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// Resident keys held after the prefill.
    pub fn held(&self) -> usize {
        self.held
    }

    /// A get of the next key of the thread's walk: `true` on a hit with the key's value.
    #[inline]
    pub fn get_next(&self) -> bool {
        let k = self.reads.next();
        self.cache.get(k) == Some(k)
    }

    /// An insert overwriting the next key of the thread's walk (with the same value).
    #[inline]
    pub fn overwrite_next(&self) -> bool {
        let k = self.reads.next();
        self.cache.insert(k, k);
        true
    }

    /// An insert of a key the cache has never held: it evicts one.
    #[inline]
    pub fn insert_new(&self) -> bool {
        let k = new_key();
        self.cache.insert(k, k);
        true
    }

    /// The next operation of the thread's mix walk: a get (`true` on a hit) or, one in
    /// [`MIX_WRITE_ONE_IN`], an overwrite.
    #[inline]
    pub fn mix_next(&self) -> bool {
        let k = self.mix.next();
        if k & TOP_BIT == 0 {
            self.cache.get(k) == Some(k)
        } else {
            let k = k & !TOP_BIT;
            self.cache.insert(k, k);
            true
        }
    }
}

/// `quick_cache::sync::Cache::new(n)`: sharded S3-FIFO (CLOCK-like queues and ghost keys),
/// no expiry; its default hasher (foldhash).
#[derive(Debug)]
pub struct QuickCache(quick_cache::sync::Cache<u64, u64>);

impl CacheUnderTest for QuickCache {
    const NAME: &'static str = "quick_cache (no TTL)";

    fn with_capacity(capacity: usize) -> Self {
        QuickCache(quick_cache::sync::Cache::new(capacity))
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `parking_lot::Mutex<lru::LruCache<u64, u64>>` of `n` entries: one lock around a hash map
/// (hashbrown, its default hasher) and an intrusive list of boxed nodes; no expiry. A get
/// moves its entry to the front, so it takes the lock as a write does.
#[derive(Debug)]
pub struct LruMutex(Mutex<LruCache<u64, u64>>);

impl CacheUnderTest for LruMutex {
    const NAME: &'static str = "lru+Mutex (no TTL)";

    fn with_capacity(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).expect("a positive capacity");
        LruMutex(Mutex::new(LruCache::new(capacity)))
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.lock().get(&key).copied()
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.lock().put(key, value);
    }

    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// `moka::sync::Cache::builder().max_capacity(n).time_to_live(300 s).build()`: TinyLFU
/// admission, LRU eviction, per-entry expiry. Its maintenance (applying buffered reads and
/// writes, evicting) runs on the calling threads, every so many operations.
#[derive(Debug)]
pub struct MokaTtl(moka::sync::Cache<u64, u64>);

impl CacheUnderTest for MokaTtl {
    const NAME: &'static str = "moka (TTL)";

    fn with_capacity(capacity: usize) -> Self {
        MokaTtl(
            moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .time_to_live(TTL)
                .build(),
        )
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn settle(&self) {
        self.0.run_pending_tasks();
    }

    fn len(&self) -> usize {
        self.0.entry_count() as usize
    }
}

/// `Cache::builder(300 s).capacity(n).build()`, with `.eviction(..)` for the policies other
/// than the default: every entry with a TTL of 300 s and the default ±5% jitter, a sharded
/// bound of `n`, expiry read from the default `CoarseClock` (a cached tick).
#[derive(Debug)]
pub struct KeelCache<const POLICY: u8>(Cache<u64, u64>);

/// The default eviction (S3-FIFO).
pub type Keel = KeelCache<DEFAULT>;

/// go-zero's exact LRU, where every read moves its entry to the front of the recency list.
pub type KeelLru = KeelCache<LRU>;

/// Second chance (CLOCK).
pub type KeelSecondChance = KeelCache<SECOND_CHANCE>;

const DEFAULT: u8 = 0;
const LRU: u8 = 1;
const SECOND_CHANCE: u8 = 2;

impl<const POLICY: u8> KeelCache<POLICY> {
    /// The cache.
    pub fn cache(&self) -> &Cache<u64, u64> {
        &self.0
    }
}

impl<const POLICY: u8> CacheUnderTest for KeelCache<POLICY> {
    const NAME: &'static str = match POLICY {
        DEFAULT => "keel",
        LRU => "keel (exact LRU)",
        _ => "keel (second chance)",
    };

    fn with_capacity(capacity: usize) -> Self {
        let builder = Cache::builder(TTL).capacity(capacity);
        let builder = match POLICY {
            DEFAULT => builder,
            LRU => builder.eviction(Eviction::Lru),
            _ => builder.eviction(Eviction::SecondChance),
        };
        KeelCache(builder.build().expect("valid settings"))
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.set(key, value);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn allocated_bytes(&self) -> Option<usize> {
        Some(self.0.allocated_bytes())
    }

    fn hits_misses(&self) -> Option<(u64, u64)> {
        let s = self.0.snapshot();
        Some((s.hits, s.misses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A benchmark of an adapter whose insert went nowhere would look fast for the wrong
    /// reason; one whose bound does not hold would not evict.
    fn holds_and_bounds<C: CacheUnderTest>() {
        let n = 2_000;
        let c = C::with_capacity(n);
        assert!(c.is_empty(), "{}", C::NAME);
        for i in 0..n / 2 {
            c.insert(resident_key(i), i as u64);
        }
        c.settle();
        assert_eq!(c.len(), n / 2, "{}", C::NAME);
        for i in 0..n / 2 {
            assert_eq!(c.get(resident_key(i)), Some(i as u64), "{}", C::NAME);
        }
        c.insert(resident_key(0), 7);
        assert_eq!(c.get(resident_key(0)), Some(7), "{}", C::NAME);
        for _ in 0..4 * n {
            let k = new_key();
            c.insert(k, k);
        }
        c.settle();
        assert!(
            c.len() <= n + n / 10,
            "{}: {} entries, bound {n}",
            C::NAME,
            c.len()
        );
    }

    #[test]
    fn every_adapter_holds_its_keys_and_stays_bounded() {
        holds_and_bounds::<Keel>();
        holds_and_bounds::<MokaTtl>();
        holds_and_bounds::<QuickCache>();
        holds_and_bounds::<LruMutex>();
    }

    #[test]
    fn keys_are_distinct_and_new_keys_never_resident() {
        let mut resident: Vec<u64> = (0..ENTRIES).map(resident_key).collect();
        resident.sort_unstable();
        resident.dedup();
        assert_eq!(resident.len(), ENTRIES);
        assert!(resident.iter().all(|k| k & TOP_BIT == 0));
        let a = new_key();
        let b = new_key();
        assert_eq!(b, a + 1);
        assert!(a & TOP_BIT != 0);
        let other = std::thread::spawn(new_key).join().expect("a thread");
        assert_ne!(other >> 40, a >> 40, "another thread, another range");
    }

    #[test]
    fn walks_read_what_the_cache_holds() {
        let loaded = Loaded::<LruMutex>::prefilled(1000, 1);
        assert_eq!(loaded.held(), 1000);
        for _ in 0..10_000 {
            assert!(loaded.get_next());
            assert!(loaded.mix_next());
            assert!(loaded.overwrite_next());
        }
        let writes = loaded.mix.writes() as f64 / DRAWS as f64;
        assert!((0.09..0.11).contains(&writes), "{writes}");
        for _ in 0..2000 {
            loaded.insert_new();
        }
        assert_eq!(loaded.cache().len(), 1000);
        assert!(!loaded.get_next(), "the resident keys were evicted");
    }
}
