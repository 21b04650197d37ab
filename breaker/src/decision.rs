//! go-zero's drop formula, as pure functions of a [`History`].

use std::time::Duration;

use crate::History;

/// Lower bound of the effective K (go-zero's `minK`).
pub(crate) const MIN_K: f64 = 1.1;

/// Relative margin of [`Params::drops`]' division-free comparison: 2^-48, 32 times the
/// rounding error of one double operation, several times what the comparison and the
/// formula's own roundings can add up to.
const MARGIN: f64 = 1.0 / (1u64 << 48) as f64;

/// The fixed parameters of the formula.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    /// The SRE "K" multiplier on accepts (go-zero: 1.5).
    pub(crate) k: f64,
    /// Requests subtracted from the total before anything is dropped (go-zero: 5).
    pub(crate) protection: f64,
    /// Buckets in the window: the scale of the failing/working runs (go-zero: constant 40).
    pub(crate) buckets: f64,
    /// At least one request passes this often while throttling (go-zero: 1 s).
    pub(crate) force_pass: Duration,
    /// go-zero's effective K, `max(k - (k - minK) × failing / buckets, minK)`, for each
    /// failing-bucket count from 0 to `buckets`. Each entry is go-zero's own expression
    /// evaluated once, so a lookup is the very same double and a decision divides nothing
    /// for it (16 bytes a bucket with the next table; the window holds 24 a bucket per
    /// writing thread).
    effective_k: Box<[f64]>,
    /// go-zero's recovery scale `(buckets - working) / buckets` for each working-bucket
    /// count from 0 to `buckets`, the same way.
    recovery_scale: Box<[f64]>,
}

/// A positive pressure, kept as its two terms: go-zero's drop ratio is
/// `excess / denominator`, divided only when someone needs the number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pressure {
    /// `(total - protection) - K × accepts`, positive.
    excess: f64,
    /// `total + 1`.
    denominator: f64,
}

impl Params {
    /// The parameters and their tables; `buckets` is at least 1.
    pub(crate) fn new(k: f64, protection: f64, buckets: u32, force_pass: Duration) -> Params {
        let mut params = Params {
            k,
            protection,
            buckets: f64::from(buckets),
            force_pass,
            effective_k: Box::default(),
            recovery_scale: Box::default(),
        };
        params.effective_k = (0..=buckets)
            .map(|failing| params.effective_k_formula(failing))
            .collect();
        params.recovery_scale = (0..=buckets)
            .map(|working| params.recovery_scale_formula(working))
            .collect();
        params
    }

    /// go-zero's expression for the effective K (`w.max(minK)`), evaluated in its order.
    fn effective_k_formula(&self, failing: u32) -> f64 {
        let w = self.k - (self.k - MIN_K) * f64::from(failing) / self.buckets;
        w.max(MIN_K)
    }

    /// go-zero's recovery scale, evaluated in its order: `(buckets - working) / buckets`,
    /// with `working` capped at `buckets` (0 once the whole window works).
    fn recovery_scale_formula(&self, working: u32) -> f64 {
        let working = f64::from(working).min(self.buckets);
        (self.buckets - working) / self.buckets
    }

    #[inline]
    fn effective_k(&self, failing: u32) -> f64 {
        match self.effective_k.get(failing as usize) {
            Some(&k) => k,
            None => self.effective_k_formula(failing),
        }
    }

    #[inline]
    fn recovery_scale(&self, working: u32) -> f64 {
        match self.recovery_scale.get(working as usize) {
            Some(&scale) => scale,
            None => self.recovery_scale_formula(working),
        }
    }

    /// go-zero's pressure before the force-pass rule: `((total - protection) -
    /// max(w, minK) × accepts) / (total + 1)` with `w = k - (k - minK) × failing / buckets`.
    /// `None` (not positive) means "accept" with no randomness and no force-pass
    /// bookkeeping.
    #[inline]
    pub(crate) fn pressure(&self, h: &History) -> Option<Pressure> {
        let total = h.total as f64;
        let excess =
            (total - self.protection) - self.effective_k(h.failing_buckets) * h.accepts as f64;
        (excess > 0.0).then_some(Pressure {
            excess,
            denominator: total + 1.0,
        })
    }

    /// The drop probability of a positive pressure: go-zero's ratio scaled down linearly by
    /// the trailing run of working buckets, reaching 0 when the whole window works. Computed
    /// as go-zero does, bit for bit.
    #[inline]
    pub(crate) fn drop_probability(&self, pressure: Pressure, h: &History) -> f64 {
        (pressure.excess / pressure.denominator) * self.recovery_scale(h.working_buckets)
    }

    /// Whether a uniform `draw` in `[0, 1)` drops the request: exactly
    /// `draw < self.drop_probability(pressure, h)`, without its division unless the two are
    /// within a relative 2^-48 of each other (about once in 10^14 draws).
    ///
    /// Why it is exact: `draw × denominator` and `excess × scale` are each within one
    /// rounding (a relative 2^-53) of their true values, and the probability within two
    /// roundings of `excess × scale / denominator`; outside the margin no combination of
    /// those errors can change the comparison's answer.
    #[inline]
    pub(crate) fn drops(&self, draw: f64, pressure: Pressure, h: &History) -> bool {
        let scaled_draw = draw * pressure.denominator;
        let scaled_probability = pressure.excess * self.recovery_scale(h.working_buckets);
        if scaled_draw < scaled_probability * (1.0 - MARGIN) {
            true
        } else if scaled_draw > scaled_probability * (1.0 + MARGIN) {
            false
        } else {
            self.drops_exactly(draw, pressure, h)
        }
    }

    #[cold]
    #[inline(never)]
    fn drops_exactly(&self, draw: f64, pressure: Pressure, h: &History) -> bool {
        draw < self.drop_probability(pressure, h)
    }

    /// The probability that the next request is dropped, for reporting: 0 when the pressure
    /// is not positive.
    pub(crate) fn effective_drop_ratio(&self, h: &History) -> f64 {
        self.pressure(h)
            .map_or(0.0, |pressure| self.drop_probability(pressure, h))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::new(1.5, 5.0, 40, Duration::from_secs(1))
    }

    fn h(accepts: u64, total: u64, working: u32, failing: u32) -> History {
        History {
            accepts,
            total,
            working_buckets: working,
            failing_buckets: failing,
        }
    }

    /// go-zero's ratio as it writes it, divisions and all.
    fn go_zero_ratio(p: &Params, h: &History) -> f64 {
        let total = h.total as f64;
        let w = p.k - (p.k - MIN_K) * f64::from(h.failing_buckets) / p.buckets;
        let ratio = ((total - p.protection) - w.max(MIN_K) * h.accepts as f64) / (total + 1.0);
        if ratio <= 0.0 {
            return 0.0;
        }
        let working = f64::from(h.working_buckets).min(p.buckets);
        ratio * ((p.buckets - working) / p.buckets)
    }

    #[test]
    fn protection_and_k_keep_a_healthy_or_idle_window_open() {
        let p = params();
        assert!(p.pressure(&h(0, 0, 0, 0)).is_none());
        assert!(
            p.pressure(&h(0, 5, 0, 0)).is_none(),
            "protection: 5 failures pass"
        );
        assert!(p.pressure(&h(0, 6, 0, 1)).is_some());
        assert!(
            p.pressure(&h(100, 150, 0, 0)).is_none(),
            "1.5 x 100 >= 150 - 5"
        );
        assert!(p.pressure(&h(100, 160, 0, 0)).is_some());
    }

    #[test]
    fn the_formula_matches_go_zero_by_hand() {
        let p = params();
        // 10 accepts, 100 total, 20 failing buckets: w = 1.5 - 0.4 * 20/40 = 1.3.
        let ratio = p.effective_drop_ratio(&h(10, 100, 0, 20));
        assert!((ratio - (95.0 - 13.0) / 101.0).abs() < 1e-12, "{ratio}");
        // 30 working buckets scale it by 10/40.
        let scaled = p.effective_drop_ratio(&h(10, 100, 30, 20));
        assert!((scaled - ratio * 0.25).abs() < 1e-12);
        assert_eq!(p.effective_drop_ratio(&h(10, 100, 40, 20)), 0.0);
        // K decays towards 1.1, never below it, also past the table (400 > 40 buckets).
        let floor = p.effective_drop_ratio(&h(10, 100, 0, 400));
        assert!((floor - (95.0 - 11.0) / 101.0).abs() < 1e-12, "{floor}");
    }

    #[test]
    fn the_tables_give_go_zeros_doubles_bit_for_bit() {
        for (k, buckets) in [(1.5, 40), (1.1, 1), (2.0, 7), (3.7, 4096), (1.25, 10)] {
            let p = Params::new(k, 5.0, buckets, Duration::from_secs(1));
            for failing in 0..=buckets + 2 {
                for working in [0, 1, buckets / 2, buckets, buckets + 3] {
                    for (accepts, total) in [(0, 6), (10, 100), (3, 1_000), (999, 1_000_000)] {
                        let hist = h(accepts, total, working, failing);
                        assert_eq!(
                            p.effective_drop_ratio(&hist).to_bits(),
                            go_zero_ratio(&p, &hist).to_bits(),
                            "k {k}, buckets {buckets}, {hist:?}"
                        );
                    }
                }
            }
        }
    }

    /// `drops` against the division it avoids, on draws right at the probability, one and
    /// a few ulps either side, and spread over [0, 1).
    #[test]
    fn drops_answers_as_the_division_would_even_at_the_boundary() {
        let p = params();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut boundary_checks = 0;
        for _ in 0..20_000 {
            let total = next() % 100_000 + 6;
            let hist = h(
                next() % total,
                total,
                (next() % 41) as u32,
                (next() % 41) as u32,
            );
            let Some(pressure) = p.pressure(&hist) else {
                continue;
            };
            let probability = p.drop_probability(pressure, &hist);
            let mut draws = vec![(next() >> 11) as f64 / (1u64 << 53) as f64, 0.0];
            let mut up = probability;
            let mut down = probability;
            for _ in 0..4 {
                draws.extend([up, down]);
                up = f64::from_bits(up.to_bits() + 1);
                down = if down > 0.0 {
                    f64::from_bits(down.to_bits() - 1)
                } else {
                    0.0
                };
            }
            for draw in draws.into_iter().filter(|d| (0.0..1.0).contains(d)) {
                assert_eq!(
                    p.drops(draw, pressure, &hist),
                    draw < probability,
                    "{hist:?}, draw {draw}, probability {probability}"
                );
                boundary_checks += 1;
            }
        }
        assert!(boundary_checks > 10_000, "{boundary_checks}");
    }
}
