//! [`BreakerUnderTest`]: the adapter the breaker suite drives, and its implementations for
//! keel and each peer.

use std::sync::Arc;
use std::time::Duration;

use failsafe::backoff::EqualJittered;
use failsafe::failure_policy::{ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use failsafe::{CircuitBreaker as _, Config, StateMachine};
use keel_breaker::{Breaker, Mode};
use rust_zero_core::{CircuitBreaker, CircuitBreakerConfig, RollingCircuitBreakerConfig};

pub const TRIP_ATTEMPTS: u32 = 10_000;

/// A circuit breaker as the suite sees it: one generic driver runs every implementation.
pub trait BreakerUnderTest: Send + Sync + 'static {
    const NAME: &'static str;
    const REJECTION_NAME: &'static str = Self::NAME;

    /// A new, closed breaker.
    fn healthy() -> Self;

    /// A breaker that rejects: a new one.
    fn tripped() -> Self;

    /// One protected call through the breaker's closure API, whose closure returns `Ok`.
    fn call_ok(&self) -> bool;

    /// The permit API: ask, then report `success` (else a failure), with no closure in between.
    fn permit(&self, success: bool) -> bool;

    /// Ask, then report a success: `false` if the breaker refused.
    #[inline]
    fn allow_success(&self) -> bool {
        self.permit(true)
    }

    /// Asks to call a dependency that is down: `true` if the breaker refused.
    #[inline]
    fn reject(&self) -> bool {
        !self.permit(false)
    }
}

/// The policy `failsafe::Config::new()` builds: a success-rate EMA over 30 s.
type DefaultPolicy =
    OrElse<SuccessRateOverTimeWindow<EqualJittered>, ConsecutiveFailures<EqualJittered>>;

/// `failsafe::Config::new().build()`, used as published.
#[derive(Debug)]
pub struct Failsafe(StateMachine<DefaultPolicy, ()>);

impl BreakerUnderTest for Failsafe {
    const NAME: &'static str = "failsafe";

    fn healthy() -> Self {
        Failsafe(Config::new().build())
    }

    fn tripped() -> Self {
        let breaker = Config::new().build();
        while breaker.is_call_permitted() {
            let _ = breaker.call(|| Err::<(), ()>(()));
        }
        Failsafe(breaker)
    }

    #[inline]
    fn call_ok(&self) -> bool {
        self.0.call(|| Ok::<(), ()>(())).is_ok()
    }

    #[inline]
    fn permit(&self, success: bool) -> bool {
        let permitted = self.0.is_call_permitted();
        match (permitted, success) {
            (true, true) => self.0.on_success(),
            (true, false) => self.0.on_error(),
            (false, _) => {}
        }
        permitted
    }
}

/// `rust-zero-core`'s SRE breaker over 10 s in 40 buckets, in the `Arc` its `acquire` needs.
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

    #[inline]
    fn permit(&self, success: bool) -> bool {
        self.0
            .acquire()
            .map(|permit| permit.finish(success))
            .is_some()
    }
}

crate::opaque_debug!(RustZeroCore);

/// keel's [`Breaker`] with go-zero's defaults on the `CoarseClock` (`Breaker::new`).
#[derive(Debug)]
pub struct Keel(Breaker);

impl BreakerUnderTest for Keel {
    const NAME: &'static str = "keel";
    const REJECTION_NAME: &'static str = "keel (adaptive)";

    fn healthy() -> Self {
        Keel(Breaker::new())
    }

    fn tripped() -> Self {
        // Unseeded, as users build it: a seeded one draws from one shared, contended sequence.
        let breaker = Breaker::new();
        for _ in 0..TRIP_ATTEMPTS {
            if let Ok(permit) = breaker.allow() {
                permit.failure();
            }
        }
        Keel(breaker)
    }

    #[inline]
    fn call_ok(&self) -> bool {
        self.0.call(|| Ok::<(), &str>(())).is_ok()
    }

    #[inline]
    fn permit(&self, success: bool) -> bool {
        match self.0.allow() {
            Ok(permit) if success => permit.success(),
            Ok(permit) => permit.failure(),
            Err(_) => return false,
        }
        true
    }
}

/// The same breaker switched to [`Mode::ForcedOpen`] by an operator: the cheapest rejection.
#[derive(Debug)]
pub struct KeelForcedOpen(Keel);

impl BreakerUnderTest for KeelForcedOpen {
    const NAME: &'static str = "keel (forced open)";

    fn healthy() -> Self {
        KeelForcedOpen(Keel::healthy())
    }

    fn tripped() -> Self {
        let keel = Keel::healthy();
        keel.0.set_mode(Mode::ForcedOpen);
        KeelForcedOpen(keel)
    }

    #[inline]
    fn call_ok(&self) -> bool {
        self.0.call_ok()
    }

    #[inline]
    fn permit(&self, success: bool) -> bool {
        self.0.permit(success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaches_the_breaker<B: BreakerUnderTest>() {
        let healthy = B::healthy();
        for _ in 0..100 {
            assert!(healthy.call_ok(), "{}: a healthy call was refused", B::NAME);
            assert!(
                healthy.allow_success(),
                "{}: a healthy permit was refused",
                B::NAME
            );
        }
        let tripped = B::tripped();
        let refused = (0..1000).filter(|_| tripped.reject()).count();
        // rust-zero-core lets every 100th call through as a probe (about 97% refused).
        assert!(
            refused >= 900,
            "{}: refused {refused} of 1000",
            B::REJECTION_NAME
        );
        assert!(
            !tripped.call_ok() || !tripped.call_ok(),
            "{}",
            B::REJECTION_NAME
        );
    }

    #[test]
    fn every_adapter_reaches_its_breaker() {
        reaches_the_breaker::<Keel>();
        reaches_the_breaker::<KeelForcedOpen>();
        reaches_the_breaker::<Failsafe>();
        reaches_the_breaker::<RustZeroCore>();
    }
}
