//! `cargo bench -p keel-benches --bench breaker`: the circuit-breaker suite against the peers
//! (see `keel_benches::suites::breaker`). It spends 10 s filling the breakers' windows before
//! the first sample.

use criterion::{criterion_group, criterion_main};
use keel_benches::profile::Profile;
use keel_benches::suites::breaker;

criterion_group! {
    name = suite;
    config = Profile::Standard.criterion();
    targets = breaker::all
}
criterion_main!(suite);
