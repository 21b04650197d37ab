//! `cargo bench -p keel-benches --bench limiter`: the rate-limiter suite against governor
//! (see `keel_benches::suites::limiter`), and the heap bytes per key, counted by the
//! allocator installed here.

keel_benches::bench_main!(keel_benches::suites::limiter::all, counting_alloc);
