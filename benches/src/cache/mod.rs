//! [`CacheUnderTest`]: the adapter the cache suite drives, its implementations for keel and
//! its peers, and the key walks of the timed benchmarks.

pub mod zipf;

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use keel_collection::cache::{Cache, Eviction};
use lru::LruCache;
use parking_lot::Mutex;

use crate::limiter::memory::held_by;

pub use crate::timingwheel::Rng;

pub const ENTRIES: usize = 100_000;
pub const TTL: Duration = Duration::from_secs(300);
pub const DRAWS: usize = 1 << 20;
pub const MIX_WRITE_ONE_IN: u64 = 10;
const TOP_BIT: u64 = 1 << 63;
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// A cache of `u64` keys and values as the suite sees it.
pub trait CacheUnderTest: Send + Sync + Sized {
    const NAME: &'static str;

    /// An empty cache bounded to `capacity` entries (keel and moka with [`TTL`]).
    fn with_capacity(capacity: usize) -> Self;

    /// The value of `key`.
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

/// The `i`-th resident key.
#[inline]
pub fn resident_key(i: usize) -> u64 {
    (i as u64).wrapping_mul(SPREAD) & !TOP_BIT
}

thread_local! {
    static CURSOR: Cell<usize> = const { Cell::new(usize::MAX) };
    static NEXT_NEW: Cell<u64> = const { Cell::new(0) };
}

/// Where threads start their walks: each new thread one stride further.
static STARTS: AtomicUsize = AtomicUsize::new(0);
const START_STRIDE: usize = 349_529;

/// Threads that have asked for a new key: each gets its own range of 2^40 keys.
static NEW_KEY_THREADS: AtomicU64 = AtomicU64::new(0);

/// A key no cache has held: the top bit set.
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

/// [`DRAWS`] keys drawn before timing.
#[derive(Debug)]
pub struct Walk {
    keys: Box<[u64]>,
}

impl Walk {
    pub fn uniform(keys: &[u64], rng: &mut Rng) -> Walk {
        assert!(!keys.is_empty(), "a walk needs keys");
        Walk {
            keys: (0..DRAWS)
                .map(|_| keys[rng.below(keys.len() as u64) as usize])
                .collect(),
        }
    }

    pub fn mix(keys: &[u64], rng: &mut Rng) -> Walk {
        let mut walk = Walk::uniform(keys, rng);
        for k in walk.keys.iter_mut() {
            if rng.below(MIX_WRITE_ONE_IN) == 0 {
                *k |= TOP_BIT;
            }
        }
        walk
    }

    pub fn writes(&self) -> usize {
        self.keys.iter().filter(|&&k| k & TOP_BIT != 0).count()
    }

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
    held: usize,
    reads: Walk,
    mix: Walk,
}

impl<C: CacheUnderTest> Loaded<C> {
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

    pub fn cache(&self) -> &C {
        &self.cache
    }

    pub fn held(&self) -> usize {
        self.held
    }

    #[inline]
    pub fn get_next(&self) -> bool {
        let k = self.reads.next();
        self.cache.get(k) == Some(k)
    }

    #[inline]
    pub fn overwrite_next(&self) -> bool {
        let k = self.reads.next();
        self.cache.insert(k, k);
        true
    }

    #[inline]
    pub fn insert_new(&self) -> bool {
        let k = new_key();
        self.cache.insert(k, k);
        true
    }

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

/// `quick_cache::sync::Cache::new(n)`: sharded S3-FIFO (CLOCK-like queues and ghost keys).
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

/// `parking_lot::Mutex<lru::LruCache<u64, u64>>` of `n` entries.
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

/// `moka::sync::Cache::builder().max_capacity(n).time_to_live(300 s).build()`: TinyLFU admission.
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

/// `Cache::builder(300 s).capacity(n).build()`.
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

/// What holding `entries` entries costs one cache on the heap.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheMemory {
    pub name: &'static str,
    pub entries: usize,
    pub held: usize,
    pub bytes_per_entry: f64,
    pub blocks: i64,
    pub reported_per_entry: Option<f64>,
}

impl CacheMemory {
    pub fn blocks_per_entry(&self) -> f64 {
        self.blocks as f64 / self.entries as f64
    }
}

/// The heap per entry of a `C` filled to capacity `n` (`None` without the counting allocator).
pub fn per_entry<C: CacheUnderTest>(n: usize) -> Option<CacheMemory> {
    let fill = || {
        let cache = C::with_capacity(n);
        for i in 0..n {
            let k = resident_key(i);
            cache.insert(k, k);
        }
        cache.settle();
        cache
    };
    let (cache, bytes, blocks) = held_by(fill)?;
    let held = cache.len();
    let reported_per_entry = cache.allocated_bytes().map(|b| b as f64 / n as f64);
    Some(CacheMemory {
        name: C::NAME,
        entries: n,
        held,
        bytes_per_entry: bytes as f64 / n as f64,
        blocks,
        reported_per_entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_each_cache_holds() {
        let n = 10_000;
        let lru = per_entry::<LruMutex>(n).expect("the unit tests install the allocator");
        assert_eq!((lru.name, lru.entries, lru.held), (LruMutex::NAME, n, n));
        // A boxed node per entry (32 B at least) and a table slot pointing at it.
        assert!(lru.blocks >= n as i64, "{lru:?}");
        assert!((40.0..200.0).contains(&lru.bytes_per_entry), "{lru:?}");
        assert_eq!(lru.reported_per_entry, None);
        let moka = per_entry::<MokaTtl>(n).expect("installed");
        assert!(moka.blocks_per_entry() >= 1.0, "{moka:?}");
        let quick = per_entry::<QuickCache>(n).expect("installed");
        assert!(quick.blocks_per_entry() < 0.1, "{quick:?}");
        assert!(quick.bytes_per_entry >= 16.0, "{quick:?}");
        let keel = per_entry::<Keel>(n).expect("installed");
        let account = keel.reported_per_entry.expect("keel's allocated_bytes");
        assert!(keel.bytes_per_entry >= 16.0, "{keel:?}");
        assert!(
            account > 0.0 && account <= keel.bytes_per_entry + 1.0,
            "{keel:?}"
        );
    }

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
