//! `cargo bench -p keel-benches --bench cache`: keel-collection's expiring LRU cache against
//! moka (with a TTL), quick_cache and lru behind a `parking_lot::Mutex`, at 100 000 entries
//! (see `keel_benches::suites::cache`); then the heap bytes per entry, counted by the
//! allocator installed here, and the hit ratios on Zipf traces.

keel_benches::bench_main!(keel_benches::suites::cache::all, counting_alloc);
