//! The virtual-time run (`--virtual-time`): both services on one `ManualClock`, driven by
//! the executor of `executor.rs`. No Redis (its clock is the server's) and no progress bar:
//! it takes a few seconds.

use std::error::Error;
use std::sync::Arc;

use keel_limiter::{Rate, TokenLimiter};

use crate::env::Env;
use crate::executor::Simulator;
use crate::report::Report;
use crate::scenario::Scenario;
use crate::service::{Guards, Service, feed};
use crate::stats::Schedule;

pub(crate) fn run(scenario: Arc<Scenario>) -> Result<Report, Box<dyn Error>> {
    let mut sim = Simulator::new();
    let env = sim.env();
    let m = &scenario.model;
    let limiter = TokenLimiter::builder(Rate::per_second(m.client_rate), m.client_burst)
        .name("per-client")
        .build_with_clock(env.clock())?;
    let guards = Guards::new(&scenario, env.clock(), limiter, true)?;
    let protected = Arc::new(Service::new(
        env.clone(),
        Arc::clone(&scenario),
        Some(guards),
        1,
    ));
    let unprotected = Arc::new(Service::new(env.clone(), Arc::clone(&scenario), None, 2));
    let arrivals = scenario.arrivals();
    let schedule = Schedule::new(&scenario, &arrivals);
    env.spawn(Arc::clone(&protected).sample_cpu());
    env.spawn(feed(
        env.clone(),
        arrivals,
        vec![Arc::clone(&protected), Arc::clone(&unprotected)],
    ));
    sim.run();
    Ok(Report::new(
        &scenario,
        &schedule,
        &protected,
        &unprotected,
        "in memory".into(),
    ))
}
