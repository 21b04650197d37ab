//! `cargo bench -p keel-benches --bench syncx`: keel-syncx's singleflight, limit and pool
//! against async_singleflight, tokio's `Semaphore` and hand-written mutex peers (see
//! `keel_benches::suites::syncx`). The 100-task group's figures are per batch of 100 tasks.

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::syncx;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = syncx::all
}
criterion_main!(suite);
