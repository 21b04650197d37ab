//! The criterion suites: one module per keel crate, plus `baseline` for the machine's floor.
//! Each `pub fn` takes `&mut Criterion` so
//! the bench targets (`benches/*.rs`) and the report binary run the same code.

pub mod baseline;
pub mod breaker;
pub mod cache;
pub mod limiter;
pub mod mapreduce;
pub mod metrics_cost;
pub mod rediscache;
pub mod rollingwindow;
pub mod shedder;
pub mod syncx;
pub mod timex;
pub mod timingwheel;
