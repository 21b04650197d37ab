//! go-zero's drop formula, as pure functions of a [`History`].

use std::time::Duration;

use crate::History;

/// Lower bound of the effective K (go-zero's `minK`).
pub(crate) const MIN_K: f64 = 1.1;

/// The fixed parameters of the formula.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// The SRE "K" multiplier on accepts (go-zero: 1.5).
    pub(crate) k: f64,
    /// Requests subtracted from the total before anything is dropped (go-zero: 5).
    pub(crate) protection: f64,
    /// Buckets in the window: the scale of the failing/working runs (go-zero: constant 40).
    pub(crate) buckets: f64,
    /// At least one request passes this often while throttling (go-zero: 1 s).
    pub(crate) force_pass: Duration,
}

impl Params {
    /// go-zero's drop ratio before the force-pass rule: `((total - protection) -
    /// max(w, minK) × accepts) / (total + 1)` with `w = k - (k - minK) × failing / buckets`.
    /// Zero or less means "accept" with no randomness and no force-pass bookkeeping.
    #[inline]
    pub(crate) fn pressure(&self, h: &History) -> f64 {
        let total = h.total as f64;
        let w = self.k - (self.k - MIN_K) * f64::from(h.failing_buckets) / self.buckets;
        let excess = (total - self.protection) - w.max(MIN_K) * h.accepts as f64;
        if excess <= 0.0 {
            return excess;
        }
        excess / (total + 1.0)
    }

    /// The drop probability once the pressure is positive: scaled down linearly by the
    /// trailing run of working buckets, reaching 0 when the whole window works.
    #[inline]
    pub(crate) fn drop_probability(&self, pressure: f64, h: &History) -> f64 {
        let working = f64::from(h.working_buckets).min(self.buckets);
        // go-zero's order: `dropRatio *= (buckets - working) / buckets`. The two divisions
        // (this one and the pressure's) do not depend on each other, so they overlap.
        pressure * ((self.buckets - working) / self.buckets)
    }

    /// The probability that the next request is dropped, for reporting: 0 when the pressure
    /// is not positive.
    pub(crate) fn effective_drop_ratio(&self, h: &History) -> f64 {
        let pressure = self.pressure(h);
        if pressure <= 0.0 {
            0.0
        } else {
            self.drop_probability(pressure, h)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            k: 1.5,
            protection: 5.0,
            buckets: 40.0,
            force_pass: Duration::from_secs(1),
        }
    }

    fn h(accepts: u64, total: u64, working: u32, failing: u32) -> History {
        History {
            accepts,
            total,
            working_buckets: working,
            failing_buckets: failing,
        }
    }

    #[test]
    fn protection_and_k_keep_a_healthy_or_idle_window_open() {
        let p = params();
        assert!(p.pressure(&h(0, 0, 0, 0)) <= 0.0);
        assert!(
            p.pressure(&h(0, 5, 0, 0)) <= 0.0,
            "protection: 5 failures pass"
        );
        assert!(p.pressure(&h(0, 6, 0, 1)) > 0.0);
        assert!(
            p.pressure(&h(100, 150, 0, 0)) <= 0.0,
            "1.5 x 100 >= 150 - 5"
        );
        assert!(p.pressure(&h(100, 160, 0, 0)) > 0.0);
    }

    #[test]
    fn the_formula_matches_go_zero_by_hand() {
        let p = params();
        // 10 accepts, 100 total, 20 failing buckets: w = 1.5 - 0.4 * 20/40 = 1.3.
        let ratio = p.pressure(&h(10, 100, 0, 20));
        assert!((ratio - (95.0 - 13.0) / 101.0).abs() < 1e-12, "{ratio}");
        // 30 working buckets scale it by 10/40.
        let scaled = p.drop_probability(ratio, &h(10, 100, 30, 0));
        assert!((scaled - ratio * 0.25).abs() < 1e-12);
        assert_eq!(p.drop_probability(ratio, &h(10, 100, 40, 0)), 0.0);
        // K decays towards 1.1, never below it.
        let floor = p.pressure(&h(10, 100, 0, 400));
        assert!((floor - (95.0 - 11.0) / 101.0).abs() < 1e-12, "{floor}");
    }
}
