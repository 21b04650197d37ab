//! `cargo bench -p keel-benches --bench mapreduce`: keel-mapreduce's tokio and thread
//! flavours against futures, tokio's `JoinSet`, rayon and crossbeam pipelines, and a fan-out
//! of 8 × 1 ms (see `keel_benches::suites::mapreduce`). Figures are per call of 100 000
//! items: divide by 100 000 for the time per item.

keel_benches::bench_main!(keel_benches::suites::mapreduce::all);
