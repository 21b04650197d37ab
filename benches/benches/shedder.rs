//! `cargo bench -p keel-benches --bench shedder`: the load-shedder suite against the peers
//! (see `keel_benches::suites::shedder`). keel's high-load shedder is warmed for one 5 s
//! window before its first sample.

keel_benches::bench_main!(keel_benches::suites::shedder::all);
