//! The smoothing step: one meter sample folded into an exponential moving average. Pure and
//! single-threaded; [`SystemCpu`](super::SystemCpu) runs it on a thread and publishes.

use std::time::Duration;

use keel_timex::Nanos;

use super::CpuMeter;

/// Weight of the previous average per sample: at 4 samples a second the average spans
/// roughly the last 5 s (go-zero's value).
pub(crate) const BETA: f64 = 0.95;

/// How often the meter re-reads its limit, so a resized container quota is noticed.
pub(crate) const LIMIT_REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct Sampler {
    meter: Box<dyn CpuMeter>,
    /// The average in millis; `None` until the first real sample, and again after a failed
    /// read (the signal is then absent rather than stale).
    ema: Option<f64>,
    next_refresh: Option<Nanos>,
}

impl Sampler {
    pub(crate) fn new(meter: Box<dyn CpuMeter>) -> Sampler {
        Sampler {
            meter,
            ema: None,
            next_refresh: None,
        }
    }

    /// Takes one sample at `now` and returns the smoothed usage after it.
    pub(crate) fn step(&mut self, now: Nanos) -> Option<u32> {
        self.maybe_refresh(now);
        match self.meter.sample(now) {
            // NaN cannot come from our meters; a foreign one's is dropped, not averaged in.
            Ok(Some(x)) if x.is_finite() => {
                let x = x.clamp(0.0, 1000.0);
                // Seeded with the first sample: ramping up from 0 (go-zero) would hide a
                // busy CPU for the first seconds of the process.
                self.ema = Some(self.ema.map_or(x, |e| e * BETA + x * (1.0 - BETA)));
            }
            Ok(_) => {}
            Err(_) => self.ema = None,
        }
        self.usage()
    }

    /// The smoothed usage, rounded (go-zero truncates, which keeps the average at 0 for
    /// any steady usage below 20 and biases it low).
    pub(crate) fn usage(&self) -> Option<u32> {
        self.ema.map(|e| e.round() as u32)
    }

    pub(crate) fn limit_cpus(&self) -> f64 {
        self.meter.limit_cpus()
    }

    fn maybe_refresh(&mut self, now: Nanos) {
        match self.next_refresh {
            None => {}
            Some(at) if now < at => return,
            // A failed refresh keeps the previous limit; the samples still make sense.
            Some(_) => drop(self.meter.refresh_limit()),
        }
        self.next_refresh = Some(now + LIMIT_REFRESH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{CpuError, MeterKind};
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Script = VecDeque<Result<Option<f64>, CpuError>>;

    struct Scripted {
        script: Script,
        refreshes: Arc<AtomicUsize>,
    }

    impl CpuMeter for Scripted {
        fn sample(&mut self, _: Nanos) -> Result<Option<f64>, CpuError> {
            self.script.pop_front().unwrap_or(Ok(None))
        }
        fn limit_cpus(&self) -> f64 {
            2.0
        }
        fn refresh_limit(&mut self) -> Result<(), CpuError> {
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    fn sampler(script: Vec<Result<Option<f64>, CpuError>>) -> (Sampler, Arc<AtomicUsize>) {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let meter = Scripted {
            script: script.into(),
            refreshes: Arc::clone(&refreshes),
        };
        (Sampler::new(Box::new(meter)), refreshes)
    }

    #[test]
    fn seeded_then_averaged_then_reset_by_errors() {
        let (mut s, _) = sampler(vec![
            Ok(None),
            Ok(Some(400.0)),
            Ok(Some(800.0)),
            Ok(None),
            Ok(Some(f64::NAN)),
            Err(CpuError::NoData("gone")),
            Ok(Some(10.4)),
            Ok(Some(2000.0)),
        ]);
        let t = Nanos::ZERO;
        assert_eq!(s.step(t), None, "priming sample");
        assert_eq!(s.step(t), Some(400), "seeded with the first sample");
        assert_eq!(s.step(t), Some(420), "400*0.95 + 800*0.05");
        assert_eq!(s.step(t), Some(420), "no sample keeps the average");
        assert_eq!(s.step(t), Some(420), "NaN is ignored");
        assert_eq!(s.step(t), None, "an error drops the signal");
        assert_eq!(s.step(t), Some(10), "and the next sample seeds again");
        // 10.4*0.95 + 1000*0.05 = 59.88: over-range input is clamped to 1000.
        assert_eq!(s.step(t), Some(60));
        assert_eq!(s.limit_cpus(), 2.0);
        assert_eq!(s.meter.kind(), MeterKind::Custom);
    }

    #[test]
    fn small_steady_usage_is_not_truncated_to_zero() {
        let (mut s, _) = sampler((0..200).map(|_| Ok(Some(19.0))).collect());
        let last = (0..200).map(|_| s.step(Nanos::ZERO)).last().flatten();
        assert_eq!(last, Some(19));
    }

    #[test]
    fn limit_is_refreshed_once_a_minute() {
        let (mut s, refreshes) = sampler(vec![]);
        let t0 = Nanos::from_nanos(1);
        s.step(t0);
        s.step(t0 + Duration::from_secs(59));
        assert_eq!(refreshes.load(Ordering::Relaxed), 0);
        s.step(t0 + LIMIT_REFRESH);
        assert_eq!(refreshes.load(Ordering::Relaxed), 1);
        s.step(t0 + Duration::from_secs(119));
        assert_eq!(refreshes.load(Ordering::Relaxed), 1);
        s.step(t0 + Duration::from_secs(121));
        assert_eq!(refreshes.load(Ordering::Relaxed), 2);
    }
}
