//! `cargo bench -p keel-benches --bench timingwheel`: keel-timingwheel against tokio-util's
//! `DelayQueue`, plain and keyed through a `HashMap<u64, Key>` (see
//! `keel_benches::suites::timingwheel`), and the heap bytes per outstanding timer, counted
//! by the allocator installed here. The expiry groups' figures are per batch
//! of 100 000 timers.

keel_benches::bench_main!(keel_benches::suites::timingwheel::all, counting_alloc);
