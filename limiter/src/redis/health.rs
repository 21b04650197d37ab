//! [`Backend`]: a limiter's store, health flag, counters and prober.
//!
//! Health is per limiter (go-zero's `redisAlive` and monitor are per `TokenLimiter`): the
//! first decision that fails for a server-wide reason switches the limiter to its failure
//! policy and starts its one prober; the prober's first answered `PING` switches it back
//! and ends the prober. A key-local error is counted and changes nothing else.
//!
//! On a Redis Cluster the server is the master serving the key's slot: a server error
//! switches the keys of that master only (by the store's slot map), the prober pings each
//! master that is off (reading the slot map again first: a master that no longer serves
//! any slot is back, its slots are someone else's), and ends when none is. Without a
//! slot map (none could be read yet) the whole cluster is off until one is read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use redis::Value;

use super::cluster::slot;
use super::scripts::Call;
use super::{BackendError, Blame, ErrorCounts, RedisErrorKind, RedisStats, RedisStore};
use crate::metrics::RedisMetrics;

pub(crate) struct Backend {
    pub(crate) store: RedisStore,
    /// The limiter's prefix, for log events.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    prefix: String,
    /// Mirrors `State::off.is_empty()` for the lock-free check of every decision.
    healthy: AtomicBool,
    /// Mirrors `State::probing`.
    probing: AtomicBool,
    decisions: AtomicU64,
    probes: AtomicU64,
    /// `NOSCRIPT` answered by `EVAL`.
    script_reloads: AtomicU64,
    /// The same events as counters of the `metrics` facade (feature `metrics`; empty
    /// without): switches, errors, script reloads.
    metrics: RedisMetrics,
    state: Mutex<State>,
}

/// Switches happen under this lock, so a failure racing the prober's success either
/// comes before it (and is cleared by it) or after it (and finds no prober, so starts one).
struct State {
    /// What decisions do not go to: nothing when healthy.
    off: Off,
    probing: bool,
    errors: u64,
    key_errors: u64,
    server_errors: u64,
    by_kind: ErrorCounts,
    switches_to_fallback: u64,
    switches_back: u64,
    last_error: Option<String>,
    last_error_kind: Option<RedisErrorKind>,
}

/// What a limiter does not send decisions to until a probe says it answers again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Off {
    /// The server, or on a cluster every master (a server error no master could be found
    /// for: there is no slot map yet).
    all: bool,
    /// Cluster masters (`host:port`) whose keys go to the failure policy.
    nodes: Vec<String>,
}

impl Off {
    fn is_empty(&self) -> bool {
        !self.all && self.nodes.is_empty()
    }
}

/// What a failed decision's server error takes off Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    All,
    Node(String),
}

impl Backend {
    pub(crate) fn new(store: RedisStore, prefix: String, metrics: RedisMetrics) -> Arc<Backend> {
        Arc::new(Backend {
            store,
            prefix,
            metrics,
            healthy: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            decisions: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            script_reloads: AtomicU64::new(0),
            state: Mutex::new(State {
                off: Off::default(),
                probing: false,
                errors: 0,
                key_errors: 0,
                server_errors: 0,
                by_kind: ErrorCounts::default(),
                switches_to_fallback: 0,
                switches_back: 0,
                last_error: None,
                last_error_kind: None,
            }),
        })
    }

    /// Whether the decision on the Redis key `key` (made only if needed: on a cluster
    /// with masters off) goes to Redis.
    #[inline]
    pub(crate) fn is_healthy(self: &Arc<Self>, key: impl FnOnce() -> String) -> bool {
        if self.healthy.load(Ordering::Acquire) {
            return true;
        }
        self.is_healthy_slow(key)
    }

    #[cold]
    fn is_healthy_slow(self: &Arc<Self>, key: impl FnOnce() -> String) -> bool {
        if !self.probing.load(Ordering::Acquire) {
            self.retry_prober();
        }
        if !self.store.is_cluster() {
            return false;
        }
        let owner = self
            .store
            .topology()
            .and_then(|t| t.owner(slot(key().as_bytes())).map(str::to_owned));
        let state = self.state.lock();
        if state.off.all {
            return false;
        }
        match owner {
            Some(node) => !state.off.nodes.contains(&node),
            // A slot no master serves (as last read): Redis answers for itself.
            None => true,
        }
    }

    /// Runs `call` on a blocking connection (see [`RedisStore::eval`]).
    pub(crate) fn eval(&self, call: &Call) -> Result<Value, BackendError> {
        self.store.eval(call, &|| self.script_reloaded())
    }

    /// Runs `call` on the shared async connection.
    pub(crate) async fn eval_async(&self, call: &Call) -> Result<Value, BackendError> {
        self.store
            .eval_async(call, &|| self.script_reloaded())
            .await
    }

    /// A `NOSCRIPT` is being answered with `EVAL`.
    #[cold]
    fn script_reloaded(&self) {
        self.script_reloads.fetch_add(1, Ordering::Relaxed);
        self.metrics.script_reloaded();
    }

    /// Counts the outcome of a decision on the Redis key `key`: a server-wide error
    /// switches to the failure policy (on a cluster, the keys of `key`'s master), a
    /// key-local one is only counted (the caller's policy answers that request either
    /// way).
    #[inline]
    pub(crate) fn record<T>(
        self: &Arc<Self>,
        key: &str,
        r: Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        match &r {
            Ok(_) => {
                self.decisions.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed(key, e),
        }
        r
    }

    /// What a server error on `key` takes off Redis.
    fn target(&self, key: &str) -> Target {
        if !self.store.is_cluster() {
            return Target::All;
        }
        match self
            .store
            .topology()
            .and_then(|t| t.owner(slot(key.as_bytes())).map(str::to_owned))
        {
            Some(node) => Target::Node(node),
            None => Target::All,
        }
    }

    #[cold]
    fn failed(self: &Arc<Self>, key: &str, e: &BackendError) {
        let target = match e.kind.blame() {
            Blame::Server => Some(self.target(key)),
            Blame::Key => None,
        };
        let mut state = self.state.lock();
        state.errors += 1;
        let _before = state.by_kind.add(e.kind);
        self.metrics.error(e.kind);
        state.last_error = Some(e.to_string());
        state.last_error_kind = Some(e.kind);
        match e.kind.blame() {
            Blame::Key => {
                // One key is broken (another program wrote it, or it lives on another
                // node), not Redis: the policy answers this request, every other key stays
                // on Redis.
                state.key_errors += 1;
                #[cfg(feature = "tracing")]
                if _before == 0 {
                    tracing::warn!(
                        prefix = %self.prefix,
                        error = %e,
                        "a key's value is not the limiter's: the failure policy answers its requests, other keys stay on redis (logged once per kind)"
                    );
                } else {
                    tracing::debug!(prefix = %self.prefix, error = %e, "key error");
                }
            }
            Blame::Server => {
                state.server_errors += 1;
                let switched = match target {
                    Some(Target::Node(node)) if !state.off.all => {
                        if state.off.nodes.contains(&node) {
                            false
                        } else {
                            #[cfg(feature = "tracing")]
                            tracing::warn!(
                                prefix = %self.prefix,
                                node = %node,
                                error = %e,
                                "a redis cluster master failed: the limiter decides its keys by its failure policy until it answers a ping"
                            );
                            state.off.nodes.push(node);
                            true
                        }
                    }
                    Some(Target::Node(_)) => false,
                    _ => {
                        let switched = !state.off.all;
                        if switched {
                            #[cfg(feature = "tracing")]
                            tracing::warn!(
                                prefix = %self.prefix,
                                error = %e,
                                "redis failed: the limiter decides by its failure policy until redis answers a ping"
                            );
                        }
                        state.off.all = true;
                        switched
                    }
                };
                if switched {
                    self.healthy.store(false, Ordering::Release);
                    state.switches_to_fallback += 1;
                    self.metrics.switched_to_fallback();
                }
                self.start_prober(&mut state);
            }
        }
    }

    /// Unhealthy and no prober: starting one failed (no thread available), or the
    /// prober is switching back right now. Try again in the first case.
    #[cold]
    fn retry_prober(self: &Arc<Self>) {
        let mut state = self.state.lock();
        if !state.off.is_empty() {
            self.start_prober(&mut state);
        }
    }

    /// Starts the prober unless one runs.
    fn start_prober(self: &Arc<Self>, state: &mut State) {
        if state.probing {
            return;
        }
        let backend = Arc::downgrade(self);
        let interval = self.store.probe_interval_value();
        let spawned = thread::Builder::new()
            .name("keel-redis-probe".to_owned())
            .spawn(move || probe(&backend, interval));
        match spawned {
            Ok(_) => {
                state.probing = true;
                self.probing.store(true, Ordering::Release);
            }
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    prefix = %self.prefix,
                    error = %_e,
                    "could not start the redis probe thread; retrying on the next decision"
                );
            }
        }
    }

    /// One probe: `PING` (on a cluster: the slot map, then each master that is off).
    /// Whether nothing is off any more (the prober has ended then).
    fn probe_once(&self) -> bool {
        if !self.store.is_cluster() {
            let answered = self.store.ping().is_ok();
            return self.recovered(&[], answered);
        }
        let fresh = self.store.refresh_topology().ok();
        let off = self.state.lock().off.clone();
        let mut back = Vec::new();
        for node in &off.nodes {
            // A master that serves no slot any more (a replica took over, or its slots
            // moved): its keys are someone else's now.
            let gone = fresh.as_ref().is_some_and(|t| !t.serves(node));
            if gone || self.store.ping_node(node).is_ok() {
                back.push(node.clone());
            }
        }
        self.recovered(&back, off.all && fresh.is_some())
    }

    /// A probe found `nodes` (and with `all`, the server or the whole cluster) answering:
    /// they are back on Redis. Whether nothing is off any more, in which case the prober
    /// ends (under the lock, so a failure racing it either was cleared by it or finds no
    /// prober and starts one).
    fn recovered(&self, nodes: &[String], all: bool) -> bool {
        let mut state = self.state.lock();
        let mut back = 0u64;
        if all && state.off.all {
            state.off.all = false;
            back += 1;
            #[cfg(feature = "tracing")]
            tracing::info!(prefix = %self.prefix, "redis answers again: the limiter decides on redis");
        }
        let before = state.off.nodes.len();
        state.off.nodes.retain(|node| {
            let answered = nodes.contains(node);
            #[cfg(feature = "tracing")]
            if answered {
                tracing::info!(prefix = %self.prefix, node = %node, "a redis cluster master answers again: the limiter decides its keys on redis");
            }
            !answered
        });
        back += (before - state.off.nodes.len()) as u64;
        state.switches_back += back;
        for _ in 0..back {
            self.metrics.switched_to_redis();
        }
        if state.off.is_empty() {
            self.healthy.store(true, Ordering::Release);
            state.probing = false;
            self.probing.store(false, Ordering::Release);
            true
        } else {
            false
        }
    }

    pub(crate) fn stats(&self) -> RedisStats {
        let state = self.state.lock();
        RedisStats {
            healthy: state.off.is_empty(),
            unhealthy_nodes: state.off.nodes.clone(),
            decisions: self.decisions.load(Ordering::Relaxed),
            errors: state.errors,
            key_errors: state.key_errors,
            server_errors: state.server_errors,
            errors_by_kind: state.by_kind,
            script_reloads: self.script_reloads.load(Ordering::Relaxed),
            switches_to_fallback: state.switches_to_fallback,
            switches_back: state.switches_back,
            probes: self.probes.load(Ordering::Relaxed),
            last_error: state.last_error.clone(),
            last_error_kind: state.last_error_kind,
        }
    }
}

/// The prober: `PING` every `interval` until one is answered (on a cluster: until every
/// master that was off answered) or the limiter is gone. It holds the backend only during
/// a probe.
fn probe(backend: &Weak<Backend>, interval: Duration) {
    loop {
        thread::sleep(interval);
        let Some(backend) = backend.upgrade() else {
            return;
        };
        backend.probes.fetch_add(1, Ordering::Relaxed);
        if backend.probe_once() {
            return;
        }
    }
}
