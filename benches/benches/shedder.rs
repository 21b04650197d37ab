//! `cargo bench -p keel-benches --bench shedder`: the load-shedder suite against the peers
//! (see `keel_benches::suites::shedder`). keel's high-load shedder is warmed for one 5 s
//! window before its first sample.

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::shedder;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = shedder::all
}
criterion_main!(suite);
