//! keel-collection's cache, as the suite drives it.

use keel_collection::cache::Cache;

use super::{CacheUnderTest, TTL};

/// `Cache::builder(300 s).capacity(n).build()`: every entry with a TTL of 300 s and the
/// default ±5% jitter, a sharded LRU bound of `n`, expiry read from the default
/// `CoarseClock` (a cached tick).
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
