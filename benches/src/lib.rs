//! criterion suites that measure keel against peer crates, shared by the `cargo bench`
//! targets and the `report` binary that writes `BENCHMARKS.md`.
//!
//! Every primitive is driven through a small adapter trait (`...UnderTest`), so one
//! generic driver per benchmark runs keel and every peer inside the same criterion group;
//! threads share one object and the figure is the latency each sees
//! ([`threads::time_on_threads`]). Commands: see `benches/README.md`.

/// `Debug` for types around a peer's that has none (the workspace lints want one).
macro_rules! opaque_debug {
    ($($t:ident),+) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )+};
}
pub(crate) use opaque_debug;

/// A bench target's `main`: `$suite` under the standard profile (`counting_alloc`: heap figures).
#[macro_export]
macro_rules! bench_main {
    ($suite:path) => {
        ::criterion::criterion_group! {
            name = suite;
            config = $crate::profile::Profile::Standard.criterion();
            targets = $suite
        }
        ::criterion::criterion_main!(suite);
    };
    ($suite:path, counting_alloc) => {
        #[global_allocator]
        static ALLOCATOR: $crate::limiter::memory::CountingAlloc =
            $crate::limiter::memory::CountingAlloc;
        $crate::bench_main!($suite);
    };
}

pub mod breaker;
pub mod cache;
pub mod clocks;
pub mod figures;
pub mod limiter;
pub mod mapreduce;
pub mod profile;
pub mod rediscache;
pub mod shedder;
pub mod suites;
pub mod syncx;
pub mod tally;
pub mod threads;
pub mod timingwheel;
pub mod window;
