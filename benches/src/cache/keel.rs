//! keel-collection's cache, as the suite drives it.

use keel_collection::cache::{Cache, Eviction};

use super::{CacheUnderTest, TTL};

/// `Cache::builder(300 s).capacity(n).build()`: every entry with a TTL of 300 s and the
/// default ±5% jitter, a sharded bound of `n` evicting by second chance (the default),
/// expiry read from the default `CoarseClock` (a cached tick).
#[derive(Debug)]
pub struct Keel(Cache<u64, u64>);

impl Keel {
    /// The cache.
    pub fn cache(&self) -> &Cache<u64, u64> {
        &self.0
    }
}

impl CacheUnderTest for Keel {
    const NAME: &'static str = "keel";

    fn with_capacity(capacity: usize) -> Self {
        Keel(
            Cache::builder(TTL)
                .capacity(capacity)
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

/// [`Keel`] with `.eviction(Eviction::Lru)`: go-zero's exact LRU, where every read moves its
/// entry to the front of the recency list.
#[derive(Debug)]
pub struct KeelLru(Cache<u64, u64>);

impl CacheUnderTest for KeelLru {
    const NAME: &'static str = "keel (exact LRU)";

    fn with_capacity(capacity: usize) -> Self {
        KeelLru(
            Cache::builder(TTL)
                .capacity(capacity)
                .eviction(Eviction::Lru)
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
