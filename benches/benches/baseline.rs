//! `cargo bench -p keel-benches --bench baseline`: this machine's atomic and lock floor (see
//! `keel_benches::suites::baseline`).

keel_benches::bench_main!(keel_benches::suites::baseline::all);
