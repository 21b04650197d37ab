//! The arithmetic of a shedding decision, as pure functions (go-zero's formulas).

/// go-zero's CPU scale: 1000 millis = every CPU the process may use.
pub(crate) const CPU_MAX: u32 = 1000;
/// The smallest share of the max in-flight allowance kept at full CPU.
pub(crate) const OVERLOAD_FACTOR_FLOOR: f64 = 0.1;
/// The min latency assumed while the window holds none: large, so nothing is dropped.
pub(crate) const DEFAULT_MIN_RT_MS: f64 = 1000.0;
/// Weight of the past in the in-flight average, per sampled completion.
pub(crate) const FLYING_BETA: f64 = 0.9;

/// Little's law: the concurrency the service has shown it sustains, at least 1.
///
/// `max_pass` is the most passes one bucket held, `min_rt_ms` the lowest per-bucket mean
/// latency and `window_scale` buckets per second / 1000, so `max_pass × buckets/s` is the
/// peak throughput and `min_rt_ms / 1000` the best latency in seconds.
#[inline]
pub(crate) fn max_flight(max_pass: u64, min_rt_ms: f64, window_scale: f64) -> f64 {
    (max_pass as f64 * min_rt_ms * window_scale).max(1.0)
}

/// How much of the allowance is kept at `cpu`: 1 at the threshold, falling linearly to
/// [`OVERLOAD_FACTOR_FLOOR`] as the CPU approaches 1000.
///
/// The threshold is validated to lie in 1..=999, so the denominator is never zero (go-zero
/// accepts 1000 and then divides by zero).
#[inline]
pub(crate) fn overload_factor(cpu: u32, threshold: u32) -> f64 {
    let headroom = f64::from(CPU_MAX.saturating_sub(cpu));
    let span = f64::from(CPU_MAX - threshold);
    (headroom / span).clamp(OVERLOAD_FACTOR_FLOOR, 1.0)
}

/// A latency in whole milliseconds, rounded up as go-zero records it (so anything faster
/// than a millisecond counts as 1 ms and minRt is never 0).
#[inline]
pub(crate) fn rt_ms(elapsed_ns: u64) -> u64 {
    elapsed_ns.div_ceil(1_000_000).max(1)
}

/// The per-bucket mean latency rounded half away from zero (go-zero's `math.Round`).
#[inline]
pub(crate) fn bucket_rt(sum_ms: u64, count: u64) -> f64 {
    (sum_ms as f64 / count as f64).round()
}

/// One step of the in-flight average.
#[inline]
pub(crate) fn ema(avg: f64, flying: f64) -> f64 {
    avg * FLYING_BETA + flying * (1.0 - FLYING_BETA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_is_one_at_threshold_and_floors_at_a_tenth() {
        assert_eq!(overload_factor(900, 900), 1.0);
        assert_eq!(overload_factor(500, 900), 1.0);
        assert!((overload_factor(950, 900) - 0.5).abs() < 1e-12);
        assert!((overload_factor(990, 900) - 0.1).abs() < 1e-12);
        assert_eq!(overload_factor(1000, 900), 0.1);
        assert_eq!(overload_factor(5000, 900), 0.1);
        assert_eq!(overload_factor(1000, 999), 0.1);
    }

    #[test]
    fn max_flight_is_littles_law_with_a_floor_of_one() {
        assert_eq!(max_flight(900, 6.0, 0.01), 54.0);
        assert_eq!(max_flight(1, 1000.0, 0.01), 10.0);
        assert_eq!(max_flight(0, 1.0, 0.01), 1.0);
    }

    #[test]
    fn latency_rounds_up_to_whole_millis() {
        assert_eq!(rt_ms(0), 1);
        assert_eq!(rt_ms(1), 1);
        assert_eq!(rt_ms(1_000_000), 1);
        assert_eq!(rt_ms(1_000_001), 2);
        assert_eq!(bucket_rt(55, 10), 6.0); // 5.5 rounds away from zero
        assert_eq!(bucket_rt(54, 10), 5.0);
    }
}
