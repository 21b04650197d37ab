//! The service under test, written once for both runs and both clocks: the protected run
//! puts every keel primitive in the request path, the unprotected run the same handler
//! with none of them.
//!
//! Protected request path:
//!
//! ```text
//! per-client token limiter (429) -> load shedder (503) -> deadline (504) {
//!     CPU work -> map-reduce fan-out of 3 reads: cache take (coalescing, negative caching)
//!                 -> on a miss: breaker (503) -> database (500)
//! }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keel_breaker::{Breaker, BreakerError};
use keel_collection::cache::{Cache, TakeError};
use keel_limiter::TokenLimiter;
use keel_mapreduce::{Cancel, Options, tokio as mr};
use keel_shedder::Shedder;
use keel_shedder::cpu::ManualCpu;
use keel_timex::Clock;

use crate::database::{Database, DbError, KINDS, Key, Row};
use crate::env::{Env, within};
use crate::resource::Resource;
use crate::scenario::{Request, Scenario};
use crate::stats::{Outcome, Record, Recorder, ShedderSample};

/// How often the modelled CPU usage is handed to the shedder (as go-zero samples it).
pub(crate) const CPU_SAMPLE: Duration = Duration::from_millis(250);
/// Weight of the past in the CPU average. go-zero (and `SystemCpu`) smooth over about
/// 5 s; the demo's phases last a few seconds, so the signal follows within about 1 s.
const CPU_BETA: f64 = 0.5;
/// A database call the breaker counts as failed even if it succeeds (or is cancelled) later.
const SLOW_QUERY: Duration = Duration::from_millis(100);

/// The keel primitives of the protected run, all on the run's clock.
pub(crate) struct Guards<C: Clock> {
    pub(crate) limiter: TokenLimiter<C>,
    pub(crate) shedder: Shedder<C>,
    /// The shedder's CPU signal: the modelled cores' utilisation (see [`Service::sample_cpu`]).
    pub(crate) cpu: ManualCpu,
    pub(crate) cache: Cache<Key, Row, C>,
    pub(crate) breaker: Breaker<C>,
}

impl<C: Clock> fmt::Debug for Guards<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guards")
            .field("limiter", &self.limiter.name())
            .field("shedder", &self.shedder)
            .field("cpu", &self.cpu)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> Guards<C> {
    /// Everything but the limiter, which the caller builds (in memory or on Redis).
    /// `deterministic` turns off the cache's random expiry jitter and keeps one shard.
    pub(crate) fn new(
        scenario: &Scenario,
        clock: C,
        limiter: TokenLimiter<C>,
        deterministic: bool,
    ) -> Result<Guards<C>, Box<dyn std::error::Error>> {
        let cpu = ManualCpu::new(0);
        let shedder = Shedder::builder()
            .name("api")
            .cpu_source(cpu.clone())
            // Every request timed: deterministic (no sampling) and exact at our rates.
            .exact_statistics()
            .build_with_clock(clock.clone())?;
        let mut cache = Cache::builder(scenario.model.cache_ttl)
            .negative_ttl(scenario.model.negative_ttl)
            .name("rows");
        if deterministic {
            cache = cache.jitter(0.0).shards(1);
        }
        let cache = cache.clock(clock.clone()).build()?;
        // A 2 s window instead of go-zero's 10 s: the phases are short, and the breaker's
        // README suggests a shorter window for a faster reaction.
        let breaker = Breaker::builder()
            .name("db")
            .window(Duration::from_secs(2))
            .buckets(20)
            // The deadline cancels a query hanging in the outage, and a cancelled call
            // records nothing by default (`OnCancel::Ignore`): without a slow-call threshold
            // the breaker would never hear of the outage. A query cancelled after this long
            // (20x the healthy latency) counts as a failure.
            .slow_call(SLOW_QUERY)
            .seed(scenario.seed)
            .build_with_clock(clock)?;
        Ok(Guards {
            limiter,
            shedder,
            cpu,
            cache,
            breaker,
        })
    }
}

/// Why one of a request's reads failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadError {
    Rejected,
    Db(DbError),
}

impl ReadError {
    fn from_take(e: &TakeError<BreakerError<DbError>>) -> ReadError {
        match e.failed() {
            Some(BreakerError::Rejected(_)) => ReadError::Rejected,
            Some(BreakerError::Inner(db)) => ReadError::Db(*db),
            Some(BreakerError::TimedOut(_)) | None => ReadError::Db(DbError::Failed),
        }
    }
}

/// One run's service: its own database, cores and (if protected) keel primitives.
pub(crate) struct Service<E: Env> {
    env: E,
    scenario: Arc<Scenario>,
    db: Database,
    cores: Resource,
    guards: Option<Guards<E::Clock>>,
    pub(crate) recorder: Recorder,
    /// What the CPU sampler saw the shedder do, for the report's note on the spike.
    shedder_trace: Mutex<Vec<ShedderSample>>,
}

impl<E: Env> fmt::Debug for Service<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("protected", &self.guards.is_some())
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl<E: Env> Service<E> {
    /// `guards: None` is the unprotected run. `db_stream` picks the database's random
    /// stream, so the two runs' databases draw independently.
    pub(crate) fn new(
        env: E,
        scenario: Arc<Scenario>,
        guards: Option<Guards<E::Clock>>,
        db_stream: u64,
    ) -> Service<E> {
        Service {
            db: Database::new(Arc::clone(&scenario), db_stream),
            cores: Resource::metered(scenario.model.cores),
            env,
            scenario,
            guards,
            recorder: Recorder::default(),
            shedder_trace: Mutex::default(),
        }
    }

    pub(crate) fn guards(&self) -> Option<&Guards<E::Clock>> {
        self.guards.as_ref()
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Serves one request and records how it went.
    pub(crate) async fn handle(self: Arc<Self>, req: Request) {
        let outcome = match &self.guards {
            Some(guards) => self.serve_protected(guards, req).await,
            None => self.work(req).await,
        };
        self.recorder.record(Record {
            at: req.at,
            done: self.env.elapsed(),
            client: req.client,
            outcome,
        });
    }

    /// The shedder's readings so far (protected run; empty for the other).
    pub(crate) fn shedder_trace(&self) -> Vec<ShedderSample> {
        self.shedder_trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn serve_protected(&self, g: &Guards<E::Clock>, req: Request) -> Outcome {
        // The limiter first: an abusive client must not use up the shedder's capacity.
        let client = &self.scenario.clients[usize::from(req.client)].name;
        if g.limiter.allow_key_n_async(client, 1).await.is_err() {
            return Outcome::Limited;
        }
        let Ok(guard) = g.shedder.allow() else {
            return Outcome::Shed;
        };
        let outcome = within(&self.env, self.scenario.model.deadline, self.work(req))
            .await
            .unwrap_or(Outcome::TimedOut);
        // go-zero's rule: a 5xx is a failure for the shedder's statistics.
        match outcome {
            Outcome::Ok | Outcome::NotFound => guard.pass(),
            _ => guard.fail(),
        }
        outcome
    }

    /// The handler proper: some CPU, then the user, profile and settings rows in parallel.
    async fn work(&self, req: Request) -> Outcome {
        // The protected run's deadline cancels the request, and with it the CPU work still
        // to do: its job stops occupying the modelled cores there. Without the limit the
        // cores kept serving requests already answered 504, so at the start of the spike
        // every request timed out and then the shedder, seeing the CPU pinned at 100% by
        // that dead work, refused nearly everything: about 0.8 s without a good answer.
        let limit = if self.guards.is_some() {
            self.scenario.model.deadline
        } else {
            Duration::MAX
        };
        let job = self
            .cores
            .start(self.env.elapsed(), self.scenario.model.work, limit);
        self.env.sleep(job.took).await;
        let rows = mr::map_reduce(
            |source| async move {
                for kind in KINDS {
                    if !source.send(kind).await {
                        return;
                    }
                }
            },
            // Every read runs to its end, even after a sibling failed: cancelling a read
            // would drop its breaker permit mid-call, which the breaker counts as a
            // failure, and after an outage it would never see the database work again.
            |kind, results, _cancel: Cancel<()>| async move {
                results.write(self.read((kind, req.user)).await).await;
            },
            |mut results, outcome, _cancel| async move {
                let mut worst = Outcome::Ok;
                while let Some(result) = results.recv().await {
                    worst = worst.max(match result {
                        Ok(Some(_)) => Outcome::Ok,
                        Ok(None) => Outcome::NotFound,
                        Err(ReadError::Rejected) => Outcome::Rejected,
                        Err(ReadError::Db(_)) => Outcome::Failed,
                    });
                }
                outcome.write(worst).await;
            },
            Options::new().workers(KINDS.len()),
        )
        .await;
        rows.unwrap_or(Outcome::Failed)
    }

    /// One row: through the cache and the breaker when protected, else straight from the
    /// database.
    async fn read(&self, key: Key) -> Result<Option<Row>, ReadError> {
        let Some(g) = &self.guards else {
            return self.db.get(&self.env, key).await.map_err(ReadError::Db);
        };
        g.cache
            .take_optional_async(key, || g.breaker.call_async(self.db.get(&self.env, key)))
            .await
            .map_err(|e| ReadError::from_take(&e))
    }

    /// Feeds the shedder a CPU signal until the scenario ends: the modelled cores'
    /// utilisation, smoothed. The demo's own process barely uses a CPU (its "work" is a
    /// timer), so the real signal would never let the shedder act.
    pub(crate) async fn sample_cpu(self: Arc<Self>) {
        let Some(g) = &self.guards else { return };
        let mut average: Option<f64> = None;
        let mut last = Duration::ZERO;
        while last < self.scenario.duration() {
            let next = last + CPU_SAMPLE;
            self.env.sleep_until(next).await;
            let usage = self.cores.utilisation(last, next) * 1000.0;
            let smoothed = average.map_or(usage, |a| a * CPU_BETA + usage * (1.0 - CPU_BETA));
            average = Some(smoothed);
            g.cpu.set(smoothed.round() as u32);
            let s = g.shedder.snapshot();
            self.shedder_trace
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ShedderSample {
                    at: next,
                    cpu: s.cpu.unwrap_or(0),
                    overloaded: s.overloaded,
                    in_flight: s.in_flight,
                    max_flight: s.max_flight,
                });
            last = next;
        }
    }
}

/// Offers the schedule to every service: each request is spawned at its arrival time, in
/// each run, so both runs see exactly the same traffic.
pub(crate) async fn feed<E: Env>(env: E, arrivals: Vec<Request>, services: Vec<Arc<Service<E>>>) {
    for req in arrivals {
        env.sleep_until(req.at).await;
        for service in &services {
            env.spawn(Arc::clone(service).handle(req));
        }
    }
}
