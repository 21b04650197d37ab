//! `cargo bench -p keel-benches --bench baseline`: this machine's atomic and lock floor (see
//! `keel_benches::suites::baseline`).

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::baseline;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = baseline::all
}
criterion_main!(suite);
