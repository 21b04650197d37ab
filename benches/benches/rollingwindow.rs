//! `cargo bench -p keel-benches --bench rollingwindow`: the rolling-window suite against the
//! peers (see `keel_benches::suites::rollingwindow`).

keel_benches::bench_main!(keel_benches::suites::rollingwindow::all);
