//! Peer: `failsafe`'s default circuit breaker from crates.io.

use failsafe::backoff::EqualJittered;
use failsafe::failure_policy::{ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use failsafe::{CircuitBreaker, Config, StateMachine};

use super::BreakerUnderTest;

/// The policy `failsafe::Config::new()` builds: a success-rate EMA over 30 s, or else five
/// consecutive failures, each backing off 10 s to 300 s (equal jitter).
type DefaultPolicy =
    OrElse<SuccessRateOverTimeWindow<EqualJittered>, ConsecutiveFailures<EqualJittered>>;

/// `failsafe::Config::new().build()`, used as published: a closed/open/half-open state
/// machine behind one `parking_lot::Mutex`, with `Instant::now()` reads in its policy.
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

    /// Its permit API: `is_call_permitted()`, then `on_success()` or `on_error()` (half-open
    /// after its back-off, the failed probe opens it again).
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
