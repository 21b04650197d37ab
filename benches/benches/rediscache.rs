//! `cargo bench -p keel-benches --bench rediscache`: keel-rediscache's two-tier cache
//! against multi-tier-cache (moka L1 + Redis L2) and the floors under each tier (a local
//! `Cache` get, a raw `GET` on a `ConnectionManager`), on the shared Redis at
//! `redis://127.0.0.1:6379/` (or `$KEEL_BENCH_REDIS_URL`); skipped, with the reason printed,
//! when it does not answer (see `keel_benches::suites::rediscache`). The cold-key stampede
//! count: `cargo run -p keel-benches --release --bin stampede`.

keel_benches::bench_main!(keel_benches::suites::rediscache::all);
