//! keel's own breaker, as the suite measures it.

use keel_breaker::{Breaker, Mode};

use super::{BreakerUnderTest, TRIP_ATTEMPTS};

/// keel's [`Breaker`] with go-zero's defaults on the `CoarseClock` (`Breaker::new`), opened
/// adaptively by [`TRIP_ATTEMPTS`] failed calls (force-pass lets one a second through).
#[derive(Debug)]
pub struct Keel(Breaker);

impl BreakerUnderTest for Keel {
    const NAME: &'static str = "keel";
    const REJECTION_NAME: &'static str = "keel (adaptive)";

    fn healthy() -> Self {
        Keel(Breaker::new())
    }

    fn tripped() -> Self {
        // Unseeded, as users build it: a seeded breaker draws from one shared sequence
        // (for reproducible tests), which two rejecting threads would contend on.
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

/// The same breaker switched to [`Mode::ForcedOpen`] by an operator: the cheapest rejection,
/// a mode load and nothing else.
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
