//! moka's sync cache with a time to live, as the suite drives it.

use moka::sync::Cache;

use super::{CacheUnderTest, TTL};

/// `moka::sync::Cache::builder().max_capacity(n).time_to_live(300 s).build()`: TinyLFU
/// admission, LRU eviction, per-entry expiry. Its maintenance (applying buffered reads and
/// writes, evicting) runs on the calling threads, every so many operations.
#[derive(Debug)]
pub struct MokaTtl(Cache<u64, u64>);

impl CacheUnderTest for MokaTtl {
    const NAME: &'static str = "moka (TTL)";

    fn with_capacity(capacity: usize) -> Self {
        MokaTtl(
            Cache::builder()
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
