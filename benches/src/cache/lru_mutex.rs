//! lru's `LruCache` behind a `parking_lot::Mutex`, as the suite drives it.

use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;

use super::CacheUnderTest;

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
