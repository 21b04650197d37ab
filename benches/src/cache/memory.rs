//! Heap bytes and blocks per entry, counted by the limiter suite's
//! [`CountingAlloc`](crate::limiter::memory::CountingAlloc) (installed by the `cache` bench
//! target and the report): what building a cache and inserting `n` entries into it left
//! allocated on the calling thread, divided by `n`.

use super::{CacheUnderTest, resident_key};
use crate::limiter::memory::held_by;

/// What holding `entries` entries costs one cache on the heap.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheMemory {
    /// The cache.
    pub name: &'static str,
    /// Entries inserted (the cache's capacity).
    pub entries: usize,
    /// Entries it holds afterwards.
    pub held: usize,
    /// Live heap bytes per entry inserted: what building the cache and filling it
    /// allocated, less what it freed (tables outgrown), over `entries`. The empty cache's
    /// own tables and shards are included.
    pub bytes_per_entry: f64,
    /// Live heap blocks in all: a few tables, or one (or more) per entry.
    pub blocks: i64,
    /// The cache's own account (`allocated_bytes()`) over `entries`, where it has one.
    pub reported_per_entry: Option<f64>,
}

impl CacheMemory {
    /// Live heap blocks per entry inserted.
    pub fn blocks_per_entry(&self) -> f64 {
        self.blocks as f64 / self.entries as f64
    }
}

/// Builds a `C` of capacity `n`, inserts the resident keys `0..n` (each its own value) and
/// settles it, counting the heap this left allocated. `None` without the counting
/// allocator.
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
    use crate::cache::{Keel, LruMutex, MokaTtl, QuickCache};

    #[test]
    fn counts_what_each_cache_holds() {
        let n = 10_000;
        let lru = per_entry::<LruMutex>(n).expect("the unit tests install the allocator");
        assert_eq!((lru.name, lru.entries, lru.held), (LruMutex::NAME, n, n));
        // A boxed node per entry (two keys' worth of payload and two links: 32 B at least)
        // and a table slot pointing at it.
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
}
