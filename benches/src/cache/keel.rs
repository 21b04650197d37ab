//! keel-collection's cache, as the suite drives it: the default configuration, and the same
//! cache with exact LRU and with second chance.

use keel_collection::cache::{Cache, Eviction};

use super::{CacheUnderTest, TTL};

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
