//! The start of the spike, measured: when the shedder's CPU signal crossed its threshold,
//! how many requests were in flight then, and how long the shedder refused nearly
//! everything afterwards. The report explains that stretch with these numbers.
//!
//! Why it happens (go-zero's rule, which keel-shedder follows): the shedder only acts once
//! the smoothed CPU reaches its threshold, which lags a step in load; everything sent
//! before then is admitted, and once the signal crosses, those requests in flight far
//! exceed what the service sustains, so nearly every new one is refused until they finish.

use std::time::Duration;

use crate::scenario::Scenario;
use crate::stats::{Outcome, Record, ShedderSample};

/// Resolution of the "refused nearly everything" search: finer than the chart's bins.
const STEP: Duration = Duration::from_millis(100);
/// "Nearly everything": this share of the requests that reached the shedder, or more.
const NEARLY_ALL: f64 = 0.9;

/// What the protected run's shedder did at the start of the spike.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpikeStart {
    /// When the spike began.
    pub(crate) began: Duration,
    /// The first CPU sample of the spike at or over the shedder's threshold.
    pub(crate) crossed: Option<ShedderSample>,
    /// The longest stretch of the spike, in steps of 100 ms by send time, in which the
    /// shedder refused at least 90% of the requests the limiter let through: (from, to).
    pub(crate) refused_nearly_all: Option<(Duration, Duration)>,
}

impl SpikeStart {
    /// `None` without a spike phase (a phase with a crowd).
    pub(crate) fn measure(
        scenario: &Scenario,
        records: &[Record],
        trace: &[ShedderSample],
    ) -> Option<SpikeStart> {
        let phase = scenario.phases.iter().find(|p| p.crowd > 0.0)?;
        let crossed = trace
            .iter()
            .find(|s| s.at > phase.start && s.at <= phase.end && s.overloaded)
            .copied();
        let steps = ((phase.end - phase.start).as_nanos() / STEP.as_nanos()) as usize;
        // (reached the shedder, shed) per step.
        let mut counts = vec![(0u64, 0u64); steps];
        for r in records {
            if r.at < phase.start || r.at >= phase.end || r.outcome == Outcome::Limited {
                continue;
            }
            let i = ((r.at - phase.start).as_nanos() / STEP.as_nanos()) as usize;
            let Some(c) = counts.get_mut(i) else { continue };
            c.0 += 1;
            c.1 += u64::from(r.outcome == Outcome::Shed);
        }
        Some(SpikeStart {
            began: phase.start,
            crossed,
            refused_nearly_all: longest_run(&counts).map(|(from, to)| {
                (
                    phase.start + STEP * from as u32,
                    phase.start + STEP * to as u32,
                )
            }),
        })
    }
}

/// The longest run of consecutive steps whose shed share is at least [`NEARLY_ALL`], as
/// (first step, one past the last); the earliest of equally long runs.
fn longest_run(counts: &[(u64, u64)]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = None;
    for (i, &(reached, shed)) in counts.iter().chain([&(0, 0)]).enumerate() {
        let nearly_all = reached > 0 && shed as f64 >= reached as f64 * NEARLY_ALL;
        match (nearly_all, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if best.is_none_or(|(a, b)| i - s > b - a) {
                    best = Some((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_run_of_nearly_all_shed_steps_is_found() {
        // 9 of 10 shed counts; 8 of 10 does not; an empty step breaks a run.
        let counts = [(10, 9), (10, 8), (5, 5), (4, 4), (6, 6), (0, 0), (3, 3)];
        assert_eq!(longest_run(&counts), Some((2, 5)));
        assert_eq!(longest_run(&[(10, 1), (10, 0)]), None);
        // A run reaching the last step ends there.
        assert_eq!(longest_run(&[(1, 0), (2, 2)]), Some((1, 2)));
    }
}
