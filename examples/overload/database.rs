//! The simulated flaky database: deterministic given the seed (in the virtual-time run,
//! where queries arrive in a fixed order).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::env::Env;
use crate::resource::Resource;
use crate::rng::Rng;
use crate::scenario::Scenario;

/// What a request reads: three rows per user, fetched in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    User,
    Profile,
    Settings,
}

pub(crate) const KINDS: [Kind; 3] = [Kind::User, Kind::Profile, Kind::Settings];

pub(crate) type Key = (Kind, u32);

/// A row (its content does not matter to the demo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) key: Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbError {
    /// The query failed (the degraded phase's errors).
    Failed,
    /// The driver gave up waiting (outage, or a database far beyond its capacity).
    Timeout,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbError::Failed => "query failed",
            DbError::Timeout => "query timed out",
        })
    }
}

impl std::error::Error for DbError {}

/// Each run has its own instance, so the unprotected run's overload never slows the
/// protected one down (and the other way round).
#[derive(Debug)]
pub(crate) struct Database {
    scenario: Arc<Scenario>,
    slots: Resource,
    rng: Mutex<Rng>,
    queries: AtomicU64,
}

impl Database {
    pub(crate) fn new(scenario: Arc<Scenario>, stream: u64) -> Database {
        Database {
            slots: Resource::new(scenario.model.db_capacity),
            rng: Mutex::new(Rng::new(scenario.seed).fork(stream)),
            queries: AtomicU64::new(0),
            scenario,
        }
    }

    /// Reads one row: `Ok(None)` for an id that does not exist.
    pub(crate) async fn get<E: Env>(&self, env: &E, key: Key) -> Result<Option<Row>, DbError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let now = env.elapsed();
        let db = self.scenario.phase_at(now).db;
        let timeout = self.scenario.model.db_timeout;
        let (fail_draw, jitter) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            (rng.unit(), rng.unit())
        };
        // In an outage the query hangs (holding its slot) until the driver's timeout.
        let work = if db.down {
            timeout
        } else {
            db.latency.mul_f64(0.5 + jitter)
        };
        let job = self.slots.start(now, work, timeout);
        env.sleep(job.took).await;
        if db.down || !job.finished {
            Err(DbError::Timeout)
        } else if fail_draw < db.error_rate {
            Err(DbError::Failed)
        } else {
            Ok((key.1 < self.scenario.model.users).then_some(Row { key }))
        }
    }

    /// Queries received so far.
    pub(crate) fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}
