//! The real-time run (the default): both services on a tokio multi-thread runtime, every
//! keel primitive on the process's coarse clock, a progress bar while it runs.

use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keel_limiter::redis::RedisStore;
use keel_limiter::{Rate, TokenLimiter};
use keel_timex::CoarseClock;
use tokio::time::Instant;

use crate::env::Env;
use crate::progress::Progress;
use crate::report::{Report, ms, phase_line};
use crate::scenario::Scenario;
use crate::service::{Guards, Service, feed};
use crate::stats::{Record, Schedule, Totals};

/// After the scenario, how long stragglers (the unprotected run's backlog) may take.
const DRAIN: Duration = Duration::from_secs(5);
/// A phase's line is printed this long after it ends, when most of its requests are done.
/// At least every client's deadline: a request still waiting then can no longer be good,
/// so the line's goodput is final (a test checks).
pub(crate) const SETTLE: Duration = Duration::from_secs(1);
const REFRESH: Duration = Duration::from_millis(200);

/// Real time on tokio.
#[derive(Debug, Clone)]
pub(crate) struct RealEnv {
    start: Instant,
    clock: CoarseClock,
}

impl Env for RealEnv {
    type Clock = CoarseClock;

    fn clock(&self) -> CoarseClock {
        self.clock.clone()
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(self.start + at)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

pub(crate) fn run(scenario: Arc<Scenario>, redis: Option<&str>) -> Result<Report, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(drive(scenario, redis));
    // Requests still waiting past the drain limit are abandoned, not awaited.
    runtime.shutdown_background();
    report
}

async fn drive(scenario: Arc<Scenario>, redis: Option<&str>) -> Result<Report, Box<dyn Error>> {
    let (limiter, where_) = build_limiter(&scenario, redis)?;
    let env = RealEnv {
        start: Instant::now(),
        clock: CoarseClock::new(),
    };
    let guards = Guards::new(&scenario, env.clock(), limiter.clone(), false)?;
    let protected = Arc::new(Service::new(
        env.clone(),
        Arc::clone(&scenario),
        Some(guards),
        1,
    ));
    let unprotected = Arc::new(Service::new(env.clone(), Arc::clone(&scenario), None, 2));
    let arrivals = scenario.arrivals();
    let expected = arrivals.len();
    let schedule = Schedule::new(&scenario, &arrivals);
    env.spawn(Arc::clone(&protected).sample_cpu());
    env.spawn(feed(
        env.clone(),
        arrivals,
        vec![Arc::clone(&protected), Arc::clone(&unprotected)],
    ));

    let progress = Progress::new(scenario.duration());
    let mut printed = 0;
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tick.tick().await;
        let now = env.elapsed();
        let (p, u) = (protected.recorder.records(), unprotected.recorder.records());
        while printed < scenario.phases.len() && now >= scenario.phases[printed].end + SETTLE {
            let phase = &scenario.phases[printed];
            let (_, pc) = schedule.phase_totals(&scenario, &p, printed);
            let (_, uc) = schedule.phase_totals(&scenario, &u, printed);
            progress.line(&phase_line(phase, &pc, &uc));
            printed += 1;
        }
        if now < scenario.duration() {
            let i = scenario.phase_index(now);
            let (pt, ut) = (in_phase(&scenario, &p, i), in_phase(&scenario, &u, i));
            let cpu = protected
                .guards()
                .and_then(|g| g.shedder.snapshot().cpu)
                .unwrap_or(0);
            progress.update(
                now,
                format!(
                    "{} | protected good {}/{} answered, p99 {}, cpu {}% | unprotected good {}/{} answered, p99 {}",
                    scenario.phases[i].name,
                    pt.good,
                    pt.offered,
                    ms(pt.p99),
                    cpu / 10,
                    ut.good,
                    ut.offered,
                    ms(ut.p99),
                ),
            );
        }
        let done = p.len() == expected && u.len() == expected;
        if printed == scenario.phases.len() && (done || now >= scenario.duration() + DRAIN) {
            break;
        }
    }
    progress.finish();

    let mut limiter_note = where_;
    if let Some(stats) = limiter.snapshot().redis {
        limiter_note += &format!(
            "; Redis answered {} decisions, {} errors went to the local rescue limiter",
            stats.decisions, stats.errors
        );
    }
    Ok(Report::new(
        &scenario,
        &schedule,
        &protected,
        &unprotected,
        limiter_note,
    ))
}

/// The answered requests sent in `phase` (the live line: the rest are still running).
fn in_phase(scenario: &Scenario, records: &[Record], phase: usize) -> Totals {
    Totals::of(
        scenario,
        records
            .iter()
            .filter(|r| scenario.phase_index(r.at) == phase),
    )
}

/// The per-client limiter: in memory, or on Redis under a prefix of its own.
fn build_limiter(
    scenario: &Scenario,
    redis: Option<&str>,
) -> Result<(TokenLimiter<CoarseClock>, String), Box<dyn Error>> {
    let m = &scenario.model;
    let builder =
        TokenLimiter::builder(Rate::per_second(m.client_rate), m.client_burst).name("per-client");
    let Some(url) = redis else {
        return Ok((builder.build()?, "in memory".into()));
    };
    let store = RedisStore::open(url)?
        .timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(500));
    // A fresh prefix per run, so an earlier run's buckets (kept for two fill times) never
    // count against this one; nothing else in the server is touched.
    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let prefix = format!("keel-overload:{}:{started}", std::process::id());
    let note = format!("on Redis at {url}, keys {{{prefix}:<client>}}");
    Ok((builder.redis(store, prefix).build()?, note))
}
