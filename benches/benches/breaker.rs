//! `cargo bench -p keel-benches --bench breaker`: the circuit-breaker suite against the peers
//! (see `keel_benches::suites::breaker`). It spends 10 s filling the breakers' windows before
//! the first sample.

keel_benches::bench_main!(keel_benches::suites::breaker::all);
