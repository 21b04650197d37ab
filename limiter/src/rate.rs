//! [`Rate`] and the token-bucket arithmetic (GCRA form).
//!
//! A token bucket of capacity `burst` refilled continuously at `rate` is the generic cell
//! rate algorithm: keep one number, the theoretical arrival time `tat` (when the bucket
//! will be full again), instead of a token count and a timestamp. With `T` the emission
//! interval (`period / tokens`) and `τ = burst × T`:
//!
//! ```text
//! tokens(now) = burst − (max(tat, now) − now) / T      (a bucket at rest is full: tat ≤ now)
//! allow n     ⇔ max(tat, now) + n·T ≤ now + τ           ⇔ tokens(now) ≥ n
//! then        tat := max(tat, now) + n·T
//! retry after   max(tat, now) + n·T − τ − now
//! ```
//!
//! One `u64` per bucket, updated with one compare-and-swap; a bucket whose `tat` has
//! passed is full, so forgetting it changes nothing (which makes idle-key eviction exact).

use std::fmt;
use std::time::Duration;

use crate::ConfigError;

/// A rate: `tokens` per `period`.
///
/// ```
/// use keel_limiter::Rate;
/// use std::time::Duration;
///
/// let r = Rate::per_second(100);
/// assert_eq!(r.interval(), Duration::from_millis(10));
/// assert_eq!(Rate::new(3, Duration::from_secs(60)).interval(), Duration::from_secs(20));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    tokens: u32,
    period: Duration,
}

impl Rate {
    /// `tokens` per `period`. Zero tokens or a zero period are refused when a limiter is
    /// built ([`ConfigError::ZeroRate`]).
    pub const fn new(tokens: u32, period: Duration) -> Rate {
        Rate { tokens, period }
    }

    /// `tokens` per second.
    pub const fn per_second(tokens: u32) -> Rate {
        Rate::new(tokens, Duration::from_secs(1))
    }

    /// `tokens` per minute.
    pub const fn per_minute(tokens: u32) -> Rate {
        Rate::new(tokens, Duration::from_secs(60))
    }

    /// Tokens per period.
    pub const fn tokens(&self) -> u32 {
        self.tokens
    }

    /// The period.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// The time one token takes to refill: `period / tokens`, in whole nanoseconds.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns())
    }

    /// Tokens per second, as a float (for the Redis script and for display).
    pub fn per_second_f64(&self) -> f64 {
        f64::from(self.tokens) / self.period.as_secs_f64()
    }

    fn interval_ns(&self) -> u64 {
        if self.tokens == 0 {
            return 0;
        }
        u64::try_from(self.period.as_nanos() / u128::from(self.tokens)).unwrap_or(u64::MAX)
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.tokens, self.period)
    }
}

/// The longest a bucket may take to fill from empty (`τ = burst × T`): 2^62 − 1 ns, about
/// 146 years. With clock readings capped at [`HORIZON_NS`] every sum in [`Gcra::step`] then
/// stays below 2^64: `tat ≤ now + τ` once stored, so `max(tat, now) + n·T ≤ 2^63 + 2 × τ`.
pub(crate) const MAX_TOLERANCE_NS: u64 = (1 << 62) - 1;

/// The last clock reading a token bucket tells apart (2^63 − 1 ns, about 292 years after the
/// clock's origin): later readings count as this one, so time stops there for the buckets
/// (they drain and no longer refill) instead of their arithmetic overflowing.
pub(crate) const HORIZON_NS: u64 = (1 << 63) - 1;

/// The bucket parameters in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// T: nanoseconds per token.
    pub(crate) interval: u64,
    /// τ = burst × T: how far `tat` may run ahead of now.
    pub(crate) tolerance: u64,
    pub(crate) burst: u32,
}

/// What one decision on a bucket came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Allowed: store this `tat`.
    Allow(u64),
    /// Denied: enough tokens in this many nanoseconds.
    Deny(u64),
}

impl Gcra {
    pub(crate) fn new(rate: Rate, burst: u32) -> Result<Gcra, ConfigError> {
        if rate.tokens == 0 || rate.period.is_zero() {
            return Err(ConfigError::ZeroRate);
        }
        if burst == 0 {
            return Err(ConfigError::ZeroBurst);
        }
        let interval = rate.interval_ns();
        if interval == 0 {
            return Err(ConfigError::RateTooHigh { rate });
        }
        let tolerance = interval
            .checked_mul(u64::from(burst))
            .filter(|&t| t <= MAX_TOLERANCE_NS)
            .ok_or(ConfigError::BurstTooLong { rate, burst })?;
        Ok(Gcra {
            interval,
            tolerance,
            burst,
        })
    }

    /// The decision for `n` tokens (1 ≤ n ≤ burst) at `now` (at most [`HORIZON_NS`]) on a
    /// bucket at `tat` (a value `step` returned, or 0). No sum here can overflow: see
    /// [`MAX_TOLERANCE_NS`].
    #[inline]
    pub(crate) fn step(&self, tat: u64, now: u64, n: u32) -> Step {
        debug_assert!(now <= HORIZON_NS);
        let base = tat.max(now);
        let next = base + self.interval * u64::from(n);
        let limit = now + self.tolerance;
        if next <= limit {
            Step::Allow(next)
        } else {
            Step::Deny(next - limit)
        }
    }

    /// Tokens left in a bucket at `tat` at `now` (fractional).
    pub(crate) fn tokens(&self, tat: u64, now: u64) -> f64 {
        let owed = tat.saturating_sub(now) as f64 / self.interval as f64;
        (f64::from(self.burst) - owed).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_at_rest_is_full_and_refills_continuously() {
        let g = Gcra::new(Rate::per_second(10), 3).unwrap(); // T = 100 ms, τ = 300 ms
        let ms = 1_000_000;
        let mut tat = 0;
        let now = 1000 * ms;
        for _ in 0..3 {
            match g.step(tat, now, 1) {
                Step::Allow(t) => tat = t,
                Step::Deny(_) => panic!("a full bucket holds 3"),
            }
        }
        assert_eq!(g.step(tat, now, 1), Step::Deny(100 * ms));
        assert!(matches!(g.step(tat, now + 100 * ms, 1), Step::Allow(_)));
        assert_eq!(g.step(tat, now + 50 * ms, 2), Step::Deny(150 * ms));
        assert_eq!(g.tokens(tat, now + 150 * ms), 1.5);
        assert_eq!(g.tokens(0, now), 3.0);
    }

    #[test]
    fn bad_rates_are_refused() {
        assert_eq!(
            Gcra::new(Rate::per_second(0), 1),
            Err(ConfigError::ZeroRate)
        );
        assert_eq!(
            Gcra::new(Rate::new(1, Duration::ZERO), 1),
            Err(ConfigError::ZeroRate)
        );
        assert_eq!(
            Gcra::new(Rate::per_second(1), 0),
            Err(ConfigError::ZeroBurst)
        );
        assert!(matches!(
            Gcra::new(Rate::new(u32::MAX, Duration::from_nanos(1)), 1),
            Err(ConfigError::RateTooHigh { .. })
        ));
        assert!(matches!(
            Gcra::new(Rate::new(1, Duration::from_secs(u64::MAX / 4)), u32::MAX),
            Err(ConfigError::BurstTooLong { .. })
        ));
    }

    #[test]
    fn the_longest_refill_is_accepted_and_one_nanosecond_more_is_not() {
        let at_most = Rate::new(1, Duration::from_nanos(MAX_TOLERANCE_NS));
        let g = Gcra::new(at_most, 1).unwrap();
        assert_eq!(g.tolerance, MAX_TOLERANCE_NS);
        let over = Rate::new(1, Duration::from_nanos(MAX_TOLERANCE_NS + 1));
        assert_eq!(
            Gcra::new(over, 1),
            Err(ConfigError::BurstTooLong {
                rate: over,
                burst: 1
            })
        );
        // A 584-year period saturates its interval to u64::MAX ns: too long too.
        assert!(Gcra::new(Rate::new(1, Duration::MAX), 1).is_err());
    }

    #[test]
    fn a_bucket_at_the_horizon_drains_and_stays_empty() {
        // The longest refill, at the last distinct time: the sums reach their maximum.
        let g = Gcra::new(Rate::new(2, Duration::from_nanos(MAX_TOLERANCE_NS - 1)), 2).unwrap();
        let mut tat = 0;
        for _ in 0..2 {
            match g.step(tat, HORIZON_NS, 1) {
                Step::Allow(t) => tat = t,
                Step::Deny(_) => panic!("a full bucket holds 2"),
            }
        }
        assert!(matches!(g.step(tat, HORIZON_NS, 1), Step::Deny(_)));
        assert!(matches!(g.step(tat, HORIZON_NS, 2), Step::Deny(_)));
        assert_eq!(g.tokens(tat, HORIZON_NS), 0.0);
    }
}
