//! quick_cache's sync cache, as the suite drives it.

use quick_cache::sync::Cache;

use super::CacheUnderTest;

/// `quick_cache::sync::Cache::new(n)`: sharded S3-FIFO (CLOCK-like queues and ghost keys),
/// no expiry; its default hasher (foldhash).
#[derive(Debug)]
pub struct QuickCache(Cache<u64, u64>);

impl CacheUnderTest for QuickCache {
    const NAME: &'static str = "quick_cache (no TTL)";

    fn with_capacity(capacity: usize) -> Self {
        QuickCache(Cache::new(capacity))
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
