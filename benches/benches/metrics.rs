//! `cargo bench -p keel-benches --bench metrics [--features metrics]`: the hot paths with
//! and without the `metrics` feature (see `keel_benches::suites::metrics_cost`).

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::metrics_cost;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = metrics_cost::all
}
criterion_main!(suite);
