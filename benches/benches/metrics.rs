//! `cargo bench -p keel-benches --bench metrics [--features metrics]`: the hot paths with
//! and without the `metrics` feature (see `keel_benches::suites::metrics_cost`).

keel_benches::bench_main!(keel_benches::suites::metrics_cost::all);
