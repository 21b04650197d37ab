//! [`BreakerUnderTest`]: the adapter the breaker suite drives, and its implementations for
//! keel and each peer.

mod failsafe;
mod keel;
mod rust_zero_core;

pub use self::failsafe::Failsafe;
pub use self::keel::{Keel, KeelForcedOpen};
pub use self::rust_zero_core::RustZeroCore;

/// Calls to a failing dependency that open an adaptive breaker (keel, rust-zero-core) in
/// [`BreakerUnderTest::tripped`].
pub const TRIP_ATTEMPTS: u32 = 10_000;

/// A circuit breaker as the suite sees it: one generic driver runs every implementation, so
/// each one only says how to build it, how to make one protected call, and how to open it.
pub trait BreakerUnderTest: Send + Sync + 'static {
    /// The benchmark id in the healthy groups, and the name in the report.
    const NAME: &'static str;
    /// The benchmark id in the rejection group.
    const REJECTION_NAME: &'static str = Self::NAME;

    /// A new, closed breaker.
    fn healthy() -> Self;

    /// A breaker that rejects: a new one, opened the way its design opens (failures, or an
    /// operator's override for [`KeelForcedOpen`]).
    fn tripped() -> Self;

    /// One protected call through the breaker's closure API, whose closure returns `Ok`.
    fn call_ok(&self) -> bool;

    /// The permit API: ask, then report `success` (else a failure), with no closure in
    /// between. `false` if the breaker refused.
    fn permit(&self, success: bool) -> bool;

    /// Ask, then report a success: `false` if the breaker refused.
    #[inline]
    fn allow_success(&self) -> bool {
        self.permit(true)
    }

    /// Asks to call a dependency that is down: `true` if the breaker refused. A call it lets
    /// through (a probe, a force-pass) reports a failure, so the breaker stays open.
    #[inline]
    fn reject(&self) -> bool {
        !self.permit(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the wiring of each adapter: a benchmark whose call never reached the breaker,
    /// or whose "rejection" was in fact an admitted call, would measure the wrong thing.
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
        // rust-zero-core lets every 100th call through as a probe, and its rejections do not
        // count in its window, so its drop ratio stays a little below 1 (about 97% refused);
        // force-pass (keel) and half-open (failsafe) let far fewer through.
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
