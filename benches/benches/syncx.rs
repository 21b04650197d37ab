//! `cargo bench -p keel-benches --bench syncx`: keel-syncx's singleflight, limit and pool
//! against async_singleflight, tokio's `Semaphore` and hand-written mutex peers (see
//! `keel_benches::suites::syncx`). The 100-task group's figures are per batch of 100 tasks.

keel_benches::bench_main!(keel_benches::suites::syncx::all);
