//! A shared resource that slows down when oversubscribed: the database's query slots and
//! the service's CPU cores are both one of these.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Serves `capacity` jobs at full speed; with `n > capacity` jobs at once each one takes
/// `n / capacity` times longer (processor sharing). A job's duration is fixed when it
/// starts, from the jobs running then: simple, and it keeps the property that matters here,
/// that offered work beyond capacity piles up and latency grows without bound.
#[derive(Debug)]
pub(crate) struct Resource {
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When each running job ends (scenario time).
    ends: BinaryHeap<Reverse<Duration>>,
    /// With metering: (start, end) of the jobs that may overlap the next reading.
    jobs: Option<Vec<(Duration, Duration)>>,
}

/// How a job went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job {
    /// How long it takes (at most the limit it was given).
    pub(crate) took: Duration,
    /// `false` if it was cut off at its limit.
    pub(crate) finished: bool,
}

impl Resource {
    pub(crate) fn new(capacity: f64) -> Resource {
        Resource {
            capacity,
            state: Mutex::default(),
        }
    }

    /// A resource whose utilisation can be read ([`utilisation`](Resource::utilisation)):
    /// it remembers its recent jobs.
    pub(crate) fn metered(capacity: f64) -> Resource {
        let resource = Resource::new(capacity);
        resource.lock().jobs = Some(Vec::new());
        resource
    }

    /// Starts `work` at `now`; a job that would take longer than `limit` is cut off there
    /// (and stops occupying the resource then).
    pub(crate) fn start(&self, now: Duration, work: Duration, limit: Duration) -> Job {
        let mut state = self.lock();
        while state.ends.peek().is_some_and(|Reverse(end)| *end <= now) {
            state.ends.pop();
        }
        let running = state.ends.len() as f64 + 1.0;
        let took = work.mul_f64((running / self.capacity).max(1.0));
        let job = if took > limit {
            Job {
                took: limit,
                finished: false,
            }
        } else {
            Job {
                took,
                finished: true,
            }
        };
        state.ends.push(Reverse(now + job.took));
        if let Some(jobs) = &mut state.jobs {
            jobs.push((now, now + job.took));
        }
        job
    }

    /// The share of the capacity that was busy over `from..to` (0..=1), what a CPU meter
    /// reports: `min(running, capacity) / capacity`, averaged over the interval. It stays
    /// at 1 while a backlog drains, however few new requests are let in. Forgets the jobs
    /// that ended by `to` (call it with consecutive intervals). 0 without metering.
    pub(crate) fn utilisation(&self, from: Duration, to: Duration) -> f64 {
        let mut state = self.lock();
        let Some(jobs) = &mut state.jobs else {
            return 0.0;
        };
        if to <= from {
            return 0.0;
        }
        // Sweep the interval: +1 where a job starts running, -1 where it ends.
        let mut edges: Vec<(Duration, i64)> = Vec::with_capacity(jobs.len() * 2);
        for &(start, end) in jobs.iter() {
            let (start, end) = (start.max(from), end.min(to));
            if start < end {
                edges.push((start, 1));
                edges.push((end, -1));
            }
        }
        edges.sort_unstable();
        let (mut busy, mut running, mut last) = (0.0, 0i64, from);
        for (t, step) in edges {
            busy += (t - last).as_secs_f64() * (running as f64).min(self.capacity);
            running += step;
            last = t;
        }
        jobs.retain(|&(_, end)| end > to);
        busy / (self.capacity * (to - from).as_secs_f64())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
