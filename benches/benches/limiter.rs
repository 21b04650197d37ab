//! `cargo bench -p keel-benches --bench limiter`: the rate-limiter suite against governor
//! (see `keel_benches::suites::limiter`), and the heap bytes per key, counted by the
//! allocator installed here.

use criterion::{criterion_group, criterion_main};
use keel_benches::limiter::memory::CountingAlloc;
use keel_benches::profile::Profile;
use keel_benches::suites::limiter;

/// Counts only on the thread and for the span the memory figures ask for.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = limiter::all
}
criterion_main!(suite);
