//! The metric handles of feature `metrics` (see METRICS.md in the repository).
//!
//! Each primitive registers its handles once, when it is built, from its name: one handle per
//! label combination, so the hot paths only touch a handle (no lock, no allocation, no label
//! lookup). Without the feature the same types are zero-sized and every method is an empty
//! `#[inline(always)]` function, so call sites carry no `cfg` and compile to nothing.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keel_singleflight_calls_total` | counter | `name`, `role` = `leader` \| `follower` |
//! | `keel_limit_acquires_total` | counter | `name`, `result` = `acquired` \| `rejected` \| `timeout` |
//! | `keel_limit_in_use` | gauge | `name` |
//! | `keel_pool_gets_total` | counter | `name`, `result` = `reused` \| `created` \| `rejected` \| `timeout` \| `error` |
//! | `keel_pool_idle`, `keel_pool_in_use` | gauge | `name` |
//! | `keel_pool_wait_duration_seconds` | histogram | `name` |

// Without the feature, the names and arguments are unused.
#![cfg_attr(not(feature = "metrics"), allow(unused_variables, dead_code))]

#[cfg(feature = "metrics")]
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use keel_timex::Clock;
#[cfg(feature = "metrics")]
use keel_timex::Nanos;

/// `keel_singleflight_calls_total`.
pub(crate) const SINGLEFLIGHT_CALLS: &str = "keel_singleflight_calls_total";
/// `keel_limit_acquires_total`.
pub(crate) const LIMIT_ACQUIRES: &str = "keel_limit_acquires_total";
/// `keel_limit_in_use`.
pub(crate) const LIMIT_IN_USE: &str = "keel_limit_in_use";
/// `keel_pool_gets_total`.
pub(crate) const POOL_GETS: &str = "keel_pool_gets_total";
/// `keel_pool_idle`.
pub(crate) const POOL_IDLE: &str = "keel_pool_idle";
/// `keel_pool_in_use`.
pub(crate) const POOL_IN_USE: &str = "keel_pool_in_use";
/// `keel_pool_wait_duration_seconds`.
pub(crate) const POOL_WAIT: &str = "keel_pool_wait_duration_seconds";

/// The handles of a [`SingleFlight`](crate::singleflight::SingleFlight).
#[derive(Clone)]
pub(crate) struct SingleFlightMetrics {
    #[cfg(feature = "metrics")]
    leader: Counter,
    #[cfg(feature = "metrics")]
    follower: Counter,
}

impl SingleFlightMetrics {
    /// Registers the handles of the group named `name`.
    pub(crate) fn new(name: &str) -> Self {
        SingleFlightMetrics {
            #[cfg(feature = "metrics")]
            leader: counter!(SINGLEFLIGHT_CALLS, "name" => name.to_owned(), "role" => "leader"),
            #[cfg(feature = "metrics")]
            follower: counter!(SINGLEFLIGHT_CALLS, "name" => name.to_owned(), "role" => "follower"),
        }
    }

    /// Handles that record nothing and register nothing.
    pub(crate) fn none() -> Self {
        SingleFlightMetrics {
            #[cfg(feature = "metrics")]
            leader: Counter::noop(),
            #[cfg(feature = "metrics")]
            follower: Counter::noop(),
        }
    }

    /// A call runs its function.
    #[inline(always)]
    pub(crate) fn leader(&self) {
        #[cfg(feature = "metrics")]
        self.leader.increment(1);
    }

    /// A call got another call's result.
    #[inline(always)]
    pub(crate) fn follower(&self) {
        #[cfg(feature = "metrics")]
        self.follower.increment(1);
    }
}

/// The handles of a [`Limit`](crate::limit::Limit).
pub(crate) struct LimitMetrics {
    #[cfg(feature = "metrics")]
    acquired: Counter,
    #[cfg(feature = "metrics")]
    rejected: Counter,
    #[cfg(feature = "metrics")]
    timeout: Counter,
    #[cfg(feature = "metrics")]
    in_use: Gauge,
}

impl LimitMetrics {
    /// Registers the handles of the limit named `name`.
    pub(crate) fn new(name: &str) -> Self {
        LimitMetrics {
            #[cfg(feature = "metrics")]
            acquired: counter!(LIMIT_ACQUIRES, "name" => name.to_owned(), "result" => "acquired"),
            #[cfg(feature = "metrics")]
            rejected: counter!(LIMIT_ACQUIRES, "name" => name.to_owned(), "result" => "rejected"),
            #[cfg(feature = "metrics")]
            timeout: counter!(LIMIT_ACQUIRES, "name" => name.to_owned(), "result" => "timeout"),
            #[cfg(feature = "metrics")]
            in_use: gauge!(LIMIT_IN_USE, "name" => name.to_owned()),
        }
    }

    /// A caller got a permit.
    #[inline(always)]
    pub(crate) fn acquired(&self) {
        #[cfg(feature = "metrics")]
        self.acquired.increment(1);
    }

    /// A `try_acquire` found no permit free.
    #[inline(always)]
    pub(crate) fn rejected(&self) {
        #[cfg(feature = "metrics")]
        self.rejected.increment(1);
    }

    /// An `acquire_timeout*` gave up.
    #[inline(always)]
    pub(crate) fn timeout(&self) {
        #[cfg(feature = "metrics")]
        self.timeout.increment(1);
    }

    /// A permit left the count (to a caller or a queued waiter).
    #[inline(always)]
    pub(crate) fn taken(&self) {
        #[cfg(feature = "metrics")]
        self.in_use.increment(1.0);
    }

    /// A permit went back to the count.
    #[inline(always)]
    pub(crate) fn given_back(&self) {
        #[cfg(feature = "metrics")]
        self.in_use.decrement(1.0);
    }
}

/// The handles of a [`Pool`](crate::pool::Pool).
pub(crate) struct PoolMetrics {
    #[cfg(feature = "metrics")]
    reused: Counter,
    #[cfg(feature = "metrics")]
    created: Counter,
    #[cfg(feature = "metrics")]
    rejected: Counter,
    #[cfg(feature = "metrics")]
    timeout: Counter,
    #[cfg(feature = "metrics")]
    error: Counter,
    #[cfg(feature = "metrics")]
    idle: Gauge,
    #[cfg(feature = "metrics")]
    in_use: Gauge,
    #[cfg(feature = "metrics")]
    wait: Histogram,
}

/// When a `get` started to wait: a reading of the pool's clock with the feature, nothing
/// without (the clock is then not read).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitStart {
    #[cfg(feature = "metrics")]
    at: Nanos,
}

impl PoolMetrics {
    /// Registers the handles of the pool named `name`.
    pub(crate) fn new(name: &str) -> Self {
        PoolMetrics {
            #[cfg(feature = "metrics")]
            reused: counter!(POOL_GETS, "name" => name.to_owned(), "result" => "reused"),
            #[cfg(feature = "metrics")]
            created: counter!(POOL_GETS, "name" => name.to_owned(), "result" => "created"),
            #[cfg(feature = "metrics")]
            rejected: counter!(POOL_GETS, "name" => name.to_owned(), "result" => "rejected"),
            #[cfg(feature = "metrics")]
            timeout: counter!(POOL_GETS, "name" => name.to_owned(), "result" => "timeout"),
            #[cfg(feature = "metrics")]
            error: counter!(POOL_GETS, "name" => name.to_owned(), "result" => "error"),
            #[cfg(feature = "metrics")]
            idle: gauge!(POOL_IDLE, "name" => name.to_owned()),
            #[cfg(feature = "metrics")]
            in_use: gauge!(POOL_IN_USE, "name" => name.to_owned()),
            #[cfg(feature = "metrics")]
            wait: histogram!(POOL_WAIT, "name" => name.to_owned()),
        }
    }

    /// A `get` handed out an idle object.
    #[inline(always)]
    pub(crate) fn reused(&self) {
        #[cfg(feature = "metrics")]
        self.reused.increment(1);
    }

    /// A `get` handed out a new object.
    #[inline(always)]
    pub(crate) fn created(&self) {
        #[cfg(feature = "metrics")]
        self.created.increment(1);
    }

    /// A `try_get` found nothing idle and no room.
    #[inline(always)]
    pub(crate) fn rejected(&self) {
        #[cfg(feature = "metrics")]
        self.rejected.increment(1);
    }

    /// A `get_timeout*` gave up.
    #[inline(always)]
    pub(crate) fn timeout(&self) {
        #[cfg(feature = "metrics")]
        self.timeout.increment(1);
    }

    /// The factory failed or panicked.
    #[inline(always)]
    pub(crate) fn error(&self) {
        #[cfg(feature = "metrics")]
        self.error.increment(1);
    }

    /// The objects idle and the others (handed out, being created or destroyed), read under
    /// the pool's lock: set there, the gauges end on the pool's last state.
    #[inline(always)]
    pub(crate) fn sizes(&self, idle: usize, in_use: usize) {
        #[cfg(feature = "metrics")]
        {
            self.idle.set(idle as f64);
            self.in_use.set(in_use as f64);
        }
    }

    /// A `get` starts to wait.
    #[inline(always)]
    pub(crate) fn wait_start<C: Clock>(&self, clock: &C) -> WaitStart {
        WaitStart {
            #[cfg(feature = "metrics")]
            at: clock.now_precise(),
        }
    }

    /// A `get` that waited since `start` stopped waiting (an object, a slot, a timeout or a
    /// cancellation).
    #[inline(always)]
    pub(crate) fn wait_end<C: Clock>(&self, clock: &C, start: WaitStart) {
        #[cfg(feature = "metrics")]
        self.wait
            .record((clock.now_precise() - start.at).as_secs_f64());
    }
}

impl std::fmt::Debug for SingleFlightMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlightMetrics")
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LimitMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitMetrics").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMetrics").finish_non_exhaustive()
    }
}
