//! `cargo bench -p keel-benches --bench timex`: the clock suite (see
//! `keel_benches::suites::timex`).

keel_benches::bench_main!(keel_benches::suites::timex::all);
