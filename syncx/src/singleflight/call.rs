//! One flight's shared state and the two roles around it: the [`Leader`] that runs the
//! closure and the [`Follower`]s that wait for its outcome.
//!
//! # Ground rules
//!
//! - A [`Call`] is allocated by the first follower, under the shard lock, and stored in the
//!   flight's slot. A leader without followers never allocates one.
//! - `waiters` counts followers that still expect something: registered, and not yet given an
//!   outcome, promoted to leader or gone. It changes under the call lock, and (except for a
//!   promotion) under the shard lock too, so a leader that is leaving and holds the shard lock
//!   sees an exact count.
//! - `outcome` is written once, by the leader, after it removed the slot, and before it takes
//!   the wakers of async followers under the call lock. A follower reads it without a lock
//!   first (the common case once the flight ended: the followers a leader wakes all read it
//!   at once), and again under the call lock before it stores its waker, so a follower either
//!   sees the outcome or has its waker taken: no lost wake-up.
//! - `leaderless` is set when an async leader is dropped mid-flight with followers waiting.
//!   The first follower to see it (under the call lock) clears it and leads; the slot stays in
//!   the table throughout, so newcomers keep joining the same flight.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;

use super::FlightError;
use super::shards::Shards;
use crate::sync::{Arc, Condvar, Mutex, lock, wait};

/// The state followers of one flight share.
pub(super) struct Call<V, E> {
    state: Mutex<State>,
    /// Signalled when `outcome` is set or the flight becomes leaderless (sync followers).
    changed: Condvar,
    /// The leader's outcome, set once. On a line of its own: the followers woken together
    /// read it while they drop their handles to the call (its reference count shares the
    /// lock's line), and a read needs no lock.
    outcome: CachePadded<OnceLock<Outcome<V, E>>>,
}

struct State {
    leaderless: bool,
    waiters: usize,
    /// One entry per async follower that polled, by index; `None` once it left or was woken
    /// with the outcome.
    wakers: Vec<Option<Waker>>,
}

/// What the leader left for its followers. The error is in a std `Arc`, as in the public
/// [`FlightError::Failed`], even under loom (which models only the synchronisation around it).
enum Outcome<V, E> {
    Value(V),
    Failed(std::sync::Arc<E>),
    Panicked,
}

impl<V: Clone, E> Outcome<V, E> {
    fn to_result(&self) -> Result<V, FlightError<E>> {
        match self {
            Self::Value(value) => Ok(value.clone()),
            Self::Failed(error) => Err(FlightError::Failed(std::sync::Arc::clone(error))),
            Self::Panicked => Err(FlightError::LeaderPanicked),
        }
    }
}

impl<V, E> Call<V, E> {
    /// A call with no follower registered yet.
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                leaderless: false,
                waiters: 0,
                wakers: Vec::new(),
            }),
            changed: Condvar::new(),
            outcome: CachePadded::new(OnceLock::new()),
        }
    }

    /// Followers registered and still waiting.
    pub(super) fn waiting(&self) -> usize {
        lock(&self.state).waiters
    }

    /// Registers a follower, and an async one's waker (returning its index) unless the
    /// flight is leaderless (that follower must look at once: it may have to lead); the
    /// caller holds the shard lock.
    pub(super) fn register(&self, waker: Option<&Waker>) -> Option<usize> {
        let mut state = lock(&self.state);
        state.waiters += 1;
        let waker = waker.filter(|_| !state.leaderless)?;
        state.wakers.push(Some(waker.clone()));
        Some(state.wakers.len() - 1)
    }

    /// Stores the outcome and wakes every follower.
    fn publish(&self, outcome: Outcome<V, E>) {
        let first = self.outcome.set(outcome).is_ok();
        debug_assert!(first, "a flight has one outcome");
        // Taken under the lock after the outcome is set: a follower that found no outcome
        // under the lock has stored its waker by now.
        let wakers = {
            let mut state = lock(&self.state);
            debug_assert!(!state.leaderless);
            std::mem::take(&mut state.wakers)
        };
        self.changed.notify_all();
        wakers.into_iter().flatten().for_each(Waker::wake);
    }
}

/// What a follower's wait ended with.
pub(super) enum Wait<'a, K, V, E> {
    /// The leader's outcome.
    Done(Result<V, FlightError<E>>),
    /// The leader was cancelled and this follower leads now.
    Lead(Leader<'a, K, V, E>),
}

/// The caller that runs the closure. Dropped without [`Leader::finish`], it either publishes
/// [`FlightError::LeaderPanicked`] (if it was running user code, i.e. unwinding out of it) or
/// hands the flight to a waiting follower (an async leader dropped between polls).
pub(super) struct Leader<'a, K, V, E> {
    shards: &'a Shards<K, V, E>,
    hash: u64,
    id: u64,
    /// True while the leader's closure or future runs: a drop then means a panic.
    pub(super) running: bool,
}

impl<'a, K, V, E> Leader<'a, K, V, E> {
    pub(super) fn new(shards: &'a Shards<K, V, E>, hash: u64, id: u64) -> Self {
        Self {
            shards,
            hash,
            id,
            running: false,
        }
    }

    /// Ends the flight with the closure's result: removes the key, then hands the result to
    /// the followers, if any.
    pub(super) fn finish(self, result: Result<V, E>) -> Result<V, FlightError<E>>
    where
        V: Clone,
    {
        let call = lock(self.shards.shard(self.hash)).remove(self.hash, self.id);
        std::mem::forget(self);
        let result = result.map_err(std::sync::Arc::new);
        if let Some(call) = call {
            let outcome = match &result {
                // A panicking `clone` must not leave the followers waiting.
                Ok(value) => match catch_unwind(AssertUnwindSafe(|| value.clone())) {
                    Ok(value) => Outcome::Value(value),
                    Err(panic) => {
                        call.publish(Outcome::Panicked);
                        resume_unwind(panic);
                    }
                },
                Err(error) => Outcome::Failed(std::sync::Arc::clone(error)),
            };
            call.publish(outcome);
        }
        result.map_err(FlightError::Failed)
    }

    #[cold]
    fn panicked(&self) {
        let call = lock(self.shards.shard(self.hash)).remove(self.hash, self.id);
        if let Some(call) = call {
            call.publish(Outcome::Panicked);
        }
    }

    #[cold]
    fn cancelled(&self) {
        let mut shard = lock(self.shards.shard(self.hash));
        if let Some(call) = shard.call(self.hash, self.id) {
            let mut state = lock(&call.state);
            if state.waiters > 0 {
                state.leaderless = true;
                let wakers: Vec<Waker> = state.wakers.iter().flatten().cloned().collect();
                drop(state);
                drop(shard);
                call.changed.notify_all();
                wakers.into_iter().for_each(Waker::wake);
                return;
            }
        }
        shard.remove(self.hash, self.id);
    }
}

impl<K, V, E> Drop for Leader<'_, K, V, E> {
    fn drop(&mut self) {
        if self.running {
            self.panicked();
        } else {
            self.cancelled();
        }
    }
}

/// A caller waiting for another's flight. Dropped while registered (an async follower
/// cancelled), it unregisters, and removes a leaderless flight nobody waits for any more.
pub(super) struct Follower<'a, K, V, E> {
    shards: &'a Shards<K, V, E>,
    hash: u64,
    id: u64,
    call: Arc<Call<V, E>>,
    /// This follower's index in `wakers`, once it polled.
    waker: Option<usize>,
    /// Its waker was stored as it joined, in the poll that will now return `Pending`: its
    /// first `poll_wait` need not look. The flight was neither over (the leader publishes
    /// only after removing the slot the join found) nor leaderless then, so the leader's
    /// outcome or a hand-over will wake it.
    parked: bool,
    /// Registered in `waiters`, with no outcome or leadership received yet.
    registered: bool,
}

impl<'a, K, V: Clone, E> Follower<'a, K, V, E> {
    pub(super) fn new(
        shards: &'a Shards<K, V, E>,
        hash: u64,
        id: u64,
        call: Arc<Call<V, E>>,
        waker: Option<usize>,
    ) -> Self {
        Self {
            shards,
            hash,
            id,
            call,
            waker,
            parked: waker.is_some(),
            registered: true,
        }
    }

    /// Blocks until the flight ends or this follower has to lead it.
    pub(super) fn wait(mut self) -> Wait<'a, K, V, E> {
        let (call, mut end) = self.parts();
        let mut state = lock(&call.state);
        loop {
            if let Some(wait) = end.try_end(call, &mut state) {
                return wait;
            }
            state = wait(&call.changed, state);
        }
    }

    /// Polls for the end of the flight or a leadership handover.
    pub(super) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Wait<'a, K, V, E>> {
        if std::mem::take(&mut self.parked) {
            return Poll::Pending;
        }
        let (call, mut end) = self.parts();
        if let Some(outcome) = call.outcome.get() {
            *end.registered = false;
            return Poll::Ready(Wait::Done(outcome.to_result()));
        }
        let mut state = lock(&call.state);
        if let Some(wait) = end.try_end(call, &mut state) {
            return Poll::Ready(wait);
        }
        match *end.waker {
            Some(index) => match &mut state.wakers[index] {
                Some(waker) => waker.clone_from(cx.waker()),
                none => *none = Some(cx.waker().clone()),
            },
            None => {
                *end.waker = Some(state.wakers.len());
                state.wakers.push(Some(cx.waker().clone()));
            }
        }
        Poll::Pending
    }

    /// The call, and the rest of the follower apart from it: borrowing the call's state
    /// and updating the follower at once needs no `Arc` clone (two atomic operations per
    /// poll).
    fn parts(&mut self) -> (&Call<V, E>, Ending<'_, 'a, K, V, E>) {
        (
            &self.call,
            Ending {
                shards: self.shards,
                hash: self.hash,
                id: self.id,
                waker: &mut self.waker,
                registered: &mut self.registered,
            },
        )
    }
}

/// A follower's fields but its call (see [`Follower::parts`]).
struct Ending<'f, 'a, K, V, E> {
    shards: &'a Shards<K, V, E>,
    hash: u64,
    id: u64,
    waker: &'f mut Option<usize>,
    registered: &'f mut bool,
}

impl<'a, K, V: Clone, E> Ending<'_, 'a, K, V, E> {
    /// The outcome or the leadership, if either is there; unregisters then.
    fn try_end(&mut self, call: &Call<V, E>, state: &mut State) -> Option<Wait<'a, K, V, E>> {
        debug_assert!(*self.registered);
        if let Some(outcome) = call.outcome.get() {
            *self.registered = false;
            return Some(Wait::Done(outcome.to_result()));
        }
        if state.leaderless {
            state.leaderless = false;
            state.waiters -= 1;
            if let Some(index) = *self.waker {
                state.wakers[index] = None;
            }
            *self.registered = false;
            return Some(Wait::Lead(Leader::new(self.shards, self.hash, self.id)));
        }
        None
    }
}

impl<K, V, E> Drop for Follower<'_, K, V, E> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        let mut shard = lock(self.shards.shard(self.hash));
        let mut state = lock(&self.call.state);
        if self.call.outcome.get().is_some() {
            return; // the flight ended; the slot is gone already
        }
        state.waiters -= 1;
        if let Some(index) = self.waker {
            state.wakers[index] = None;
        }
        if state.leaderless && state.waiters == 0 {
            drop(state);
            shard.remove(self.hash, self.id);
        }
    }
}
