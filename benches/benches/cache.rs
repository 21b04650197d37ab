//! `cargo bench -p keel-benches --bench cache`: keel-collection's expiring LRU cache against
//! moka (with a TTL), quick_cache and lru behind a `parking_lot::Mutex`, at 100 000 entries
//! (see `keel_benches::suites::cache`); then the heap bytes per entry, counted by the
//! allocator installed here, and the hit ratios on Zipf traces.

use criterion::{criterion_group, criterion_main};
use keel_benches::limiter::memory::CountingAlloc;
use keel_benches::profile::Profile;
use keel_benches::suites::cache;

/// Counts only on the thread and for the span the memory figures ask for.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = cache::all
}
criterion_main!(suite);
