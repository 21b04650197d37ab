//! Peer: `rust_zero_core::CircuitBreaker` from crates.io, with its go-zero-style policy.

use std::sync::Arc;
use std::time::Duration;

use rust_zero_core::{CircuitBreaker, CircuitBreakerConfig, RollingCircuitBreakerConfig};

use super::{BreakerUnderTest, TRIP_ATTEMPTS};

/// `rust-zero-core`'s breaker with its rolling (go-zero SRE) policy over go-zero's window of
/// 10 s in 40 buckets; its `acquire` needs an `Arc`, so the breaker lives in one.
pub struct RustZeroCore(Arc<CircuitBreaker>);

impl RustZeroCore {
    fn new() -> Self {
        let rolling = RollingCircuitBreakerConfig::new().with_window(Duration::from_secs(10), 40);
        RustZeroCore(Arc::new(CircuitBreaker::new(
            CircuitBreakerConfig::rolling(rolling),
        )))
    }
}

impl BreakerUnderTest for RustZeroCore {
    const NAME: &'static str = "rust-zero-core (rolling)";

    fn healthy() -> Self {
        RustZeroCore::new()
    }

    fn tripped() -> Self {
        let breaker = RustZeroCore::new();
        for _ in 0..TRIP_ATTEMPTS {
            breaker.reject();
        }
        breaker
    }

    #[inline]
    fn call_ok(&self) -> bool {
        self.0.execute(|| Ok::<(), ()>(())).is_ok()
    }

    /// Its permit API: `acquire()`, then `finish(success)`.
    #[inline]
    fn permit(&self, success: bool) -> bool {
        self.0
            .acquire()
            .map(|permit| permit.finish(success))
            .is_some()
    }
}

crate::opaque_debug!(RustZeroCore);
