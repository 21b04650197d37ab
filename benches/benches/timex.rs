//! `cargo bench -p keel-benches --bench timex`: the clock suite (see
//! `keel_benches::suites::timex`).

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::timex;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = timex::all
}
criterion_main!(suite);
