//! `cargo bench -p keel-benches --bench rollingwindow`: the rolling-window suite against the
//! peers (see `keel_benches::suites::rollingwindow`).

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::rollingwindow;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = rollingwindow::all
}
criterion_main!(suite);
