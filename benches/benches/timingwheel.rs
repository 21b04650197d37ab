//! `cargo bench -p keel-benches --bench timingwheel`: keel-timingwheel against tokio-util's
//! `DelayQueue`, plain and keyed through a `HashMap<u64, Key>` (see
//! `keel_benches::suites::timingwheel`), and the heap bytes per outstanding timer, counted
//! by the allocator installed here. The expiry groups' figures are per batch
//! of 100 000 timers.

use criterion::{criterion_group, criterion_main};
use keel_benches::limiter::memory::CountingAlloc;
use keel_benches::profile::Profile;
use keel_benches::suites::timingwheel;

/// Counts only on the thread and for the span the memory figures ask for.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = timingwheel::all
}
criterion_main!(suite);
