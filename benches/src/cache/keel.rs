//! keel-collection's cache, as the suite drives it: the default configuration and the same
//! cache with exact LRU.

use keel_collection::cache::{Cache, Eviction};

use super::{CacheUnderTest, TTL};

/// `Cache::builder(300 s).capacity(n).build()`, then `.eviction(Eviction::Lru)` when `EXACT_LRU`:
/// every entry with a TTL of 300 s and the default ±5% jitter, a sharded bound of `n`,
/// expiry read from the default `CoarseClock` (a cached tick).
#[derive(Debug)]
pub struct KeelCache<const EXACT_LRU: bool>(Cache<u64, u64>);

/// The default: the bound evicts by second chance.
pub type Keel = KeelCache<false>;

/// go-zero's exact LRU, where every read moves its entry to the front of the recency list.
pub type KeelLru = KeelCache<true>;

impl<const EXACT_LRU: bool> KeelCache<EXACT_LRU> {
    /// The cache.
    pub fn cache(&self) -> &Cache<u64, u64> {
        &self.0
    }
}

impl<const EXACT_LRU: bool> CacheUnderTest for KeelCache<EXACT_LRU> {
    const NAME: &'static str = if EXACT_LRU {
        "keel (exact LRU)"
    } else {
        "keel"
    };

    fn with_capacity(capacity: usize) -> Self {
        let eviction = if EXACT_LRU {
            Eviction::Lru
        } else {
            Eviction::SecondChance
        };
        KeelCache(
            Cache::builder(TTL)
                .capacity(capacity)
                .eviction(eviction)
                .build()
                .expect("valid settings"),
        )
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
