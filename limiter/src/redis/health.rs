//! [`Backend`]: a limiter's store, health flag, counters and prober.
//!
//! Health is per limiter (go-zero's `redisAlive` and monitor are per `TokenLimiter`): the
//! first decision that fails for a server-wide reason switches the limiter to its failure
//! policy and starts its one prober; the prober's first answered `PING` switches it back
//! and ends the prober. A key-local error is counted and changes nothing else.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use redis::Value;

use super::scripts::Call;
use super::{BackendError, Blame, ErrorCounts, RedisErrorKind, RedisStats, RedisStore};
use crate::metrics::RedisMetrics;

pub(crate) struct Backend {
    pub(crate) store: RedisStore,
    /// The limiter's prefix, for log events.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    prefix: String,
    /// Mirrors `State::healthy` for the lock-free check of every decision.
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
    healthy: bool,
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
                healthy: true,
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

    /// Whether decisions go to Redis.
    #[inline]
    pub(crate) fn is_healthy(self: &Arc<Self>) -> bool {
        if self.healthy.load(Ordering::Acquire) {
            return true;
        }
        if !self.probing.load(Ordering::Acquire) {
            self.retry_prober();
        }
        false
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

    /// Counts a decision's outcome: a server-wide error switches to the failure policy, a
    /// key-local one is only counted (the caller's policy answers that request either
    /// way).
    #[inline]
    pub(crate) fn record<T>(
        self: &Arc<Self>,
        r: Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        match &r {
            Ok(_) => {
                self.decisions.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed(e),
        }
        r
    }

    #[cold]
    fn failed(self: &Arc<Self>, e: &BackendError) {
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
                if state.healthy {
                    state.healthy = false;
                    self.healthy.store(false, Ordering::Release);
                    state.switches_to_fallback += 1;
                    self.metrics.switched_to_fallback();
                    #[cfg(feature = "tracing")]
                    tracing::warn!(
                        prefix = %self.prefix,
                        error = %e,
                        "redis failed: the limiter decides by its failure policy until redis answers a ping"
                    );
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
        if !state.healthy {
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

    /// A probe's `PING` was answered.
    fn recovered(&self) {
        let mut state = self.state.lock();
        if !state.healthy {
            state.healthy = true;
            state.switches_back += 1;
            self.metrics.switched_to_redis();
            self.healthy.store(true, Ordering::Release);
            #[cfg(feature = "tracing")]
            tracing::info!(prefix = %self.prefix, "redis answers again: the limiter decides on redis");
        }
        state.probing = false;
        self.probing.store(false, Ordering::Release);
    }

    pub(crate) fn stats(&self) -> RedisStats {
        let state = self.state.lock();
        RedisStats {
            healthy: state.healthy,
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

/// The prober: `PING` every `interval` until one is answered or the limiter is gone. It
/// holds the backend only during a ping.
fn probe(backend: &Weak<Backend>, interval: Duration) {
    loop {
        thread::sleep(interval);
        let Some(backend) = backend.upgrade() else {
            return;
        };
        backend.probes.fetch_add(1, Ordering::Relaxed);
        if backend.store.ping().is_ok() {
            backend.recovered();
            return;
        }
    }
}
