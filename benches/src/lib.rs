//! criterion suites that measure keel against peer crates, shared by the `cargo bench`
//! targets and the `report` binary that writes `BENCHMARKS.md`.
//!
//! Every primitive is driven through a small adapter trait, in the style of parking_lot's
//! `benchmark` crate: [`window::WindowUnderTest`] for rolling windows,
//! [`breaker::BreakerUnderTest`] for circuit breakers,
//! [`shedder::ShedderUnderTest`] for load shedders and [`clocks::ClockUnderTest`] for
//! clocks. One generic driver per benchmark runs keel and
//! every peer inside the same criterion group, so one run prints (and the report compares)
//! both under identical conditions.
//!
//! ```text
//! cargo bench -p keel-benches                                    # full criterion output
//! cargo bench -p keel-benches --bench rollingwindow -- "add 2t"  # one group
//! cargo bench -p keel-benches --bench breaker -- "call\(ok\) 1t"  # the filter is a regex
//! cargo run -p keel-benches --release --bin report [-- --full]   # writes BENCHMARKS.md
//! ```
//!
//! Multi-threaded benchmarks follow the method of the peer figures: the threads share one
//! object, start together at a barrier, and the figure is the per-operation latency each
//! thread sees (see [`threads::time_on_threads`]).

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

/// A bench target's `main`: `$suite` under the standard profile; with `counting_alloc`,
/// [`limiter::memory::CountingAlloc`] installed for the suite's heap figures (it counts
/// only on the thread and for the span those figures ask for).
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
