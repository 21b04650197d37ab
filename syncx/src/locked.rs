//! [`LockedCalls`]: per-key serialisation. Calls with the same key run one at a time, each
//! its own closure; results are not shared (for sharing, use
//! [`SingleFlight`](crate::singleflight::SingleFlight)).
//!
//! ```
//! use keel_syncx::locked::LockedCalls;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! let calls = LockedCalls::new();
//! let balance = AtomicUsize::new(100);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             // A read-modify-write that is only safe one at a time per account.
//!             calls.run("account:7", || {
//!                 let b = balance.load(Ordering::Relaxed);
//!                 balance.store(b - 10, Ordering::Relaxed);
//!             })
//!         });
//!     }
//! });
//! assert_eq!(balance.load(Ordering::Relaxed), 60);
//! assert_eq!(calls.held(), 0); // no key is left behind
//! ```
//!
//! # Fairness: FIFO handover
//!
//! When the holder of a key finishes and callers are waiting, the key is handed to the
//! *oldest* waiter: it stays held, so a caller arriving in between queues behind instead of
//! barging in. Each waiter is woken once, when it is its turn. The cost is one `VecDeque` per
//! contended key and a short idle gap while the next waiter wakes up (the key cannot be taken
//! by a thread that happens to be running); for calls that do real work, fairness and no
//! thundering herd are worth it.
//!
//! # Cancellation and panics
//!
//! - A panic in the closure (or in the future it returns) releases the key on unwind and
//!   propagates to the caller; the next waiter proceeds.
//! - Dropping a [`run_async`](LockedCalls::run_async) future while it waits removes it from
//!   the queue; if the key had already been handed to it, the key passes on to the next waiter
//!   (or is removed). Dropping it while its future runs releases the key as well.
//! - No key stays in the map once every call has finished or been dropped:
//!   [`held`](LockedCalls::held) returns to 0.
//!
//! # Differences from go-zero
//!
//! - go-zero wakes every waiter of a key when it is released and lets them race; here the key
//!   is handed over in arrival order (see above).
//! - An async variant, [`run_async`](LockedCalls::run_async), which needs no runtime: its
//!   waker waits in the key's queue.
//! - go-zero returns `(any, error)`; here the closure's own return type comes back as is.
//! - As in go-zero, calling `run` for a key inside a call that holds the same key deadlocks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};

use crate::sync::{Mutex, lock};

/// Serialises calls per key: a call waits while another call holds its key, then runs its own
/// closure holding the key. See the [module docs](self) for fairness, cancellation and
/// panics.
///
/// Keys are cloned once when a call takes a free key. The state is one mutex around a hash
/// map of held keys, entered twice per uncontended call.
pub struct LockedCalls<K> {
    state: Mutex<State<K>>,
}

struct State<K> {
    /// Held keys only: a key is removed when its last call releases it.
    keys: HashMap<K, KeyState, ahash::RandomState>,
    /// Ticket for the next waiter (identifies it in its key's queue).
    next_id: u64,
}

#[derive(Default)]
struct KeyState {
    /// Waiters in arrival order.
    queue: VecDeque<Waiter>,
    /// The waiter the key was handed to, until it wakes and notices. While set, the key is
    /// held on that waiter's behalf.
    handed_to: Option<u64>,
}

struct Waiter {
    id: u64,
    wake: Wake,
}

enum Wake {
    Thread(Thread),
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Thread(thread) => thread.unpark(),
            Wake::Task(waker) => waker.wake(),
        }
    }
}

impl<K: Hash + Eq + Clone> LockedCalls<K> {
    /// No key held.
    pub fn new() -> LockedCalls<K> {
        LockedCalls {
            state: Mutex::new(State {
                keys: HashMap::with_hasher(ahash::RandomState::new()),
                next_id: 0,
            }),
        }
    }

    /// Runs `f` holding `key`, first blocking the thread while another call holds it.
    /// Waiters take the key in arrival order.
    ///
    /// # Panics
    ///
    /// A panic in `f` releases the key and is propagated. Calling `run` (or blocking on
    /// `run_async`) for the same key inside `f` deadlocks.
    pub fn run<R>(&self, key: K, f: impl FnOnce() -> R) -> R {
        let _held = self.acquire(key);
        f()
    }

    /// Runs the future `f` returns holding `key`, first waiting (without blocking the
    /// thread) while another call holds it. Needs no particular runtime.
    ///
    /// `f` is called only once the key is held. Sync and async calls on one `LockedCalls`
    /// share the queue.
    ///
    /// # Cancellation
    ///
    /// Dropping the returned future at any point releases whatever it holds: a queued
    /// caller leaves the queue (passing the key on if it had just been handed to it), and a
    /// running one releases the key.
    pub async fn run_async<F, Fut>(&self, key: K, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut,
        Fut: Future,
    {
        let _held = Acquire {
            calls: self,
            key: Some(key),
            queued: None,
        }
        .await;
        f().await
    }

    /// How many keys are held right now (by a running call, or handed to a waiter that has
    /// not woken yet).
    pub fn held(&self) -> usize {
        lock(&self.state).keys.len()
    }

    /// Takes `key`, parking the thread until it is this caller's turn.
    fn acquire(&self, key: K) -> Held<'_, K> {
        let id = {
            let mut guard = lock(&self.state);
            let state = &mut *guard;
            match state.keys.get_mut(&key) {
                None => {
                    state.keys.insert(key.clone(), KeyState::default());
                    return Held { calls: self, key };
                }
                Some(ks) => {
                    let id = state.next_id;
                    state.next_id += 1;
                    ks.queue.push_back(Waiter {
                        id,
                        wake: Wake::Thread(thread::current()),
                    });
                    id
                }
            }
        };
        loop {
            // Park may return spuriously or on a stale token: check the handover each time.
            thread::park();
            let mut state = lock(&self.state);
            let ks = state
                .keys
                .get_mut(&key)
                .expect("a queued waiter's key stays held");
            if ks.handed_to == Some(id) {
                ks.handed_to = None;
                return Held { calls: self, key };
            }
        }
    }

    /// Releases `key` on behalf of its holder: hands it to the oldest waiter, or removes it.
    fn release(&self, key: &K) {
        let next = pass_on(&mut lock(&self.state), key);
        // Wake outside the lock so the woken thread does not block on it at once.
        if let Some(wake) = next {
            wake.wake();
        }
    }
}

/// Hands `key` to its oldest waiter (returning how to wake it) or removes it if none waits.
fn pass_on<K: Hash + Eq>(state: &mut State<K>, key: &K) -> Option<Wake> {
    let ks = state.keys.get_mut(key).expect("a released key is held");
    match ks.queue.pop_front() {
        Some(next) => {
            ks.handed_to = Some(next.id);
            Some(next.wake)
        }
        None => {
            state.keys.remove(key);
            None
        }
    }
}

impl<K: Hash + Eq + Clone> Default for LockedCalls<K> {
    fn default() -> LockedCalls<K> {
        LockedCalls::new()
    }
}

impl<K> fmt::Debug for LockedCalls<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedCalls")
            .field("held", &lock(&self.state).keys.len())
            .finish()
    }
}

/// A held key; dropping it (also on unwind) releases the key.
struct Held<'a, K: Hash + Eq + Clone> {
    calls: &'a LockedCalls<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Held<'_, K> {
    fn drop(&mut self) {
        self.calls.release(&self.key);
    }
}

/// Waits for a key without blocking: resolves to the held key.
struct Acquire<'a, K: Hash + Eq + Clone> {
    calls: &'a LockedCalls<K>,
    /// Taken into the `Held` on completion.
    key: Option<K>,
    /// This waiter's ticket while it is in the key's queue (or the key was handed to it).
    queued: Option<u64>,
}

// No field is structurally pinned: the future only ever moves `key` out by value.
impl<K: Hash + Eq + Clone> Unpin for Acquire<'_, K> {}

impl<'a, K: Hash + Eq + Clone> Future for Acquire<'a, K> {
    type Output = Held<'a, K>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Held<'a, K>> {
        let this = self.get_mut();
        let calls = this.calls;
        let mut guard = lock(&calls.state);
        let state = &mut *guard;
        let key = this.key.as_ref().expect("Acquire polled after completion");
        match this.queued {
            None => match state.keys.get_mut(key) {
                None => {
                    state.keys.insert(key.clone(), KeyState::default());
                }
                Some(ks) => {
                    let id = state.next_id;
                    state.next_id += 1;
                    ks.queue.push_back(Waiter {
                        id,
                        wake: Wake::Task(cx.waker().clone()),
                    });
                    this.queued = Some(id);
                    return Poll::Pending;
                }
            },
            Some(id) => {
                let ks = state
                    .keys
                    .get_mut(key)
                    .expect("a queued waiter's key stays held");
                if ks.handed_to == Some(id) {
                    ks.handed_to = None;
                    this.queued = None;
                } else {
                    // Not our turn yet (a spurious poll): keep the newest waker.
                    if let Some(Waiter {
                        wake: Wake::Task(waker),
                        ..
                    }) = ks.queue.iter_mut().find(|w| w.id == id)
                    {
                        waker.clone_from(cx.waker());
                    }
                    return Poll::Pending;
                }
            }
        }
        drop(guard);
        let key = this.key.take().expect("checked above");
        Poll::Ready(Held { calls, key })
    }
}

impl<K: Hash + Eq + Clone> Drop for Acquire<'_, K> {
    fn drop(&mut self) {
        let (Some(id), Some(key)) = (self.queued, self.key.as_ref()) else {
            return; // never queued, or completed: nothing to undo
        };
        let next = {
            let mut state = lock(&self.calls.state);
            let ks = state
                .keys
                .get_mut(key)
                .expect("a queued waiter's key stays held");
            if ks.handed_to == Some(id) {
                // Handed over but cancelled before it noticed: pass the key on.
                ks.handed_to = None;
                pass_on(&mut state, key)
            } else {
                ks.queue.retain(|w| w.id != id);
                None
            }
        };
        if let Some(wake) = next {
            wake.wake();
        }
    }
}
