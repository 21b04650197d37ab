//! [`Profile`]: how long criterion samples, shared by the bench targets and the report.

use std::time::Duration;

use criterion::Criterion;

/// A criterion configuration with a name the report can print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Standard,
    Full,
}

impl Profile {
    pub fn criterion(self) -> Criterion {
        let (samples, warm_up, measurement, resamples) = self.settings();
        Criterion::default()
            .sample_size(samples)
            .warm_up_time(warm_up)
            .measurement_time(measurement)
            // Point estimates do not depend on the bootstrap; fewer resamples shorten the analysis.
            .nresamples(resamples)
    }

    pub fn describe(self) -> String {
        let (samples, warm_up, measurement, resamples) = self.settings();
        format!(
            "{samples} samples, {} s warm-up, {} s measurement, {resamples} bootstrap resamples",
            warm_up.as_secs_f64(),
            measurement.as_secs_f64(),
        )
    }

    fn settings(self) -> (usize, Duration, Duration, usize) {
        match self {
            Profile::Standard => (20, Duration::from_secs(1), Duration::from_secs(2), 20_000),
            Profile::Full => (50, Duration::from_secs(2), Duration::from_secs(5), 50_000),
        }
    }
}
