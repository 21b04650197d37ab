//! [`ResourceManager`]: keyed shared resources, created once, closed together.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use super::error::{CloseErrors, Closed, ResourceError};
use crate::sync::{Condvar, Mutex, lock, wait};

/// A resource a [`ResourceManager`] can close (go-zero's `io.Closer`).
///
/// `close` takes `&self` because callers may still hold `Arc`s to the resource when the
/// manager closes; make later use fail (or reconnect) as suits the resource. Implement it on a
/// newtype to manage a foreign type; use `Error = std::convert::Infallible` when closing
/// cannot fail.
///
/// ```
/// use keel_syncx::resource::Close;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// struct Client { open: AtomicBool }
///
/// impl Close for Client {
///     type Error = &'static str;
///     fn close(&self) -> Result<(), &'static str> {
///         if self.open.swap(false, Ordering::AcqRel) { Ok(()) } else { Err("already closed") }
///     }
/// }
///
/// let client = Client { open: AtomicBool::new(true) };
/// assert_eq!(client.close(), Ok(()));
/// assert_eq!(client.close(), Err("already closed"));
/// ```
pub trait Close {
    /// Why closing failed.
    type Error;

    /// Releases what the resource holds (connections, files, threads).
    fn close(&self) -> Result<(), Self::Error>;
}

/// Shared resources by key: each is created once, on first use, and all are closed by
/// [`close`](ResourceManager::close). Typical use: one client per downstream address.
///
/// - Concurrent [`get_or_create`](Self::get_or_create) calls for one key run one `create`;
///   the others wait and share its result, resource or error. Errors are not cached: the
///   next call creates again.
/// - [`inject`](Self::inject) puts a resource in directly (tests, warm-up), replacing any
///   other for its key. A resource injected while a create for its key runs wins: the
///   created one is closed and every caller gets the injected one.
/// - After [`close`](Self::close), every call fails with [`Closed`]; a create that was
///   running then has its resource closed and its callers get `Closed` too.
/// - A panic in `create` propagates to the caller that ran it; callers that waited for it
///   wake and try again (one of them creates). No key is left creating.
///
/// Resources that the manager closes on its own (a created one that lost to an injection or
/// to `close`, an injection after `close`) have their close error dropped: no caller is left
/// to report it to.
///
/// ```
/// use keel_syncx::resource::{Close, ResourceManager};
/// use std::sync::Arc;
///
/// #[derive(Debug)]
/// struct Pool(&'static str);
/// impl Close for Pool {
///     type Error = String;
///     fn close(&self) -> Result<(), String> { Err(format!("{} busy", self.0)) }
/// }
///
/// let pools: ResourceManager<&str, Pool> = ResourceManager::new();
/// let orders = pools.get_or_create("orders", || Ok::<_, String>(Pool("orders"))).unwrap();
/// let again = pools.get_or_create("orders", || Err("not called".to_string())).unwrap();
/// assert!(Arc::ptr_eq(&orders, &again));
///
/// let errors = pools.close().unwrap_err();
/// assert_eq!(errors.to_string(), "orders busy");
/// let late = pools.get_or_create("orders", || Ok::<_, String>(Pool("orders")));
/// assert!(late.unwrap_err().is_closed());
/// ```
///
/// # Differences from go-zero
///
/// - Use after close returns [`ResourceError::Closed`] / [`Closed`]; go-zero panics on a
///   successful create or an inject after `Close` (it writes to a nil map).
/// - Resources are typed (`Arc<R>`, `R:` [`Close`]) and errors too; close errors keep their
///   keys ([`CloseErrors`]).
/// - Waiters on a create whose caller panicked retry instead of getting zero values.
/// - An injection during a create wins (go-zero's create would overwrite it).
pub struct ResourceManager<K, R> {
    state: Mutex<State<K, R>>,
}

struct State<K, R> {
    resources: HashMap<K, Arc<R>, ahash::RandomState>,
    /// Keys whose create is running, and how waiters learn its outcome.
    creating: HashMap<K, Creating<R>, ahash::RandomState>,
    closed: bool,
}

/// A key's running create and the callers that joined it.
struct Creating<R> {
    flight: Arc<Flight<R>>,
    /// Callers that took `flight` to wait for its outcome (not the one creating).
    waiters: usize,
}

/// One running create: its outcome, once known.
struct Flight<R> {
    outcome: Mutex<Option<Outcome<R>>>,
    done: Condvar,
}

enum Outcome<R> {
    Created(Arc<R>),
    /// The create error, type-erased because each call picks its own `E`. A waiter whose
    /// `E` differs cannot share it and creates itself.
    Failed(Arc<dyn Any + Send + Sync>),
    Closed,
    /// The creating caller panicked: try again.
    Retry,
}

impl<R> Clone for Outcome<R> {
    fn clone(&self) -> Outcome<R> {
        match self {
            Outcome::Created(r) => Outcome::Created(Arc::clone(r)),
            Outcome::Failed(e) => Outcome::Failed(Arc::clone(e)),
            Outcome::Closed => Outcome::Closed,
            Outcome::Retry => Outcome::Retry,
        }
    }
}

impl<R> Flight<R> {
    fn finish(&self, outcome: Outcome<R>) {
        *lock(&self.outcome) = Some(outcome);
        self.done.notify_all();
    }

    fn wait(&self) -> Outcome<R> {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(o) = &*outcome {
                return o.clone();
            }
            outcome = wait(&self.done, outcome);
        }
    }
}

impl<K: Hash + Eq + Clone, R: Close> ResourceManager<K, R> {
    /// An empty, open manager.
    pub fn new() -> ResourceManager<K, R> {
        ResourceManager {
            state: Mutex::new(State {
                resources: HashMap::with_hasher(ahash::RandomState::new()),
                creating: HashMap::with_hasher(ahash::RandomState::new()),
                closed: false,
            }),
        }
    }

    /// The resource for `key`, created with `create` if there is none. Concurrent calls for
    /// one key run one `create` and share its result.
    ///
    /// # Errors
    ///
    /// [`ResourceError::Closed`] once the manager is closed; [`ResourceError::Create`] with
    /// the error of the `create` that ran (this caller's, or one it waited for).
    ///
    /// # Panics
    ///
    /// A panic in this caller's `create` propagates; waiters retry.
    pub fn get_or_create<E, F>(&self, key: K, create: F) -> Result<Arc<R>, ResourceError<E>>
    where
        F: FnOnce() -> Result<R, E>,
        E: Send + Sync + 'static,
    {
        let mut create = Some(create);
        loop {
            let flight = {
                let mut guard = lock(&self.state);
                let state = &mut *guard;
                if state.closed {
                    return Err(ResourceError::Closed(Closed::new()));
                }
                if let Some(resource) = state.resources.get(&key) {
                    return Ok(Arc::clone(resource));
                }
                match state.creating.get_mut(&key) {
                    Some(creating) => {
                        creating.waiters += 1;
                        Arc::clone(&creating.flight)
                    }
                    None => {
                        let flight = Arc::new(Flight {
                            outcome: Mutex::new(None),
                            done: Condvar::new(),
                        });
                        state.creating.insert(
                            key.clone(),
                            Creating {
                                flight: Arc::clone(&flight),
                                waiters: 0,
                            },
                        );
                        drop(guard);
                        // This branch returns, so it is reached at most once.
                        let create = create.take().expect("create runs at most once");
                        return self.create(key, &flight, create);
                    }
                }
            };
            match flight.wait() {
                Outcome::Created(resource) => return Ok(resource),
                Outcome::Closed => return Err(ResourceError::Closed(Closed::new())),
                Outcome::Failed(error) => {
                    if let Ok(error) = error.downcast::<E>() {
                        return Err(ResourceError::Create(error));
                    }
                }
                Outcome::Retry => {}
            }
        }
    }

    /// Runs `create` for `key` (whose flight this caller registered) and publishes the
    /// outcome.
    fn create<E, F>(
        &self,
        key: K,
        flight: &Arc<Flight<R>>,
        create: F,
    ) -> Result<Arc<R>, ResourceError<E>>
    where
        F: FnOnce() -> Result<R, E>,
        E: Send + Sync + 'static,
    {
        let on_panic = AbandonOnPanic {
            manager: self,
            key: &key,
            flight,
        };
        let created = create();
        std::mem::forget(on_panic);

        let mut guard = lock(&self.state);
        let state = &mut *guard;
        state.creating.remove(&key);
        let mut orphan = None;
        let (outcome, result) = match created {
            Err(error) => {
                let error = Arc::new(error);
                (
                    Outcome::Failed(error.clone()),
                    Err(ResourceError::Create(error)),
                )
            }
            Ok(resource) if state.closed => {
                orphan = Some(resource);
                (Outcome::Closed, Err(ResourceError::Closed(Closed::new())))
            }
            Ok(resource) => match state.resources.entry(key) {
                Entry::Occupied(injected) => {
                    orphan = Some(resource);
                    let injected = Arc::clone(injected.get());
                    (Outcome::Created(Arc::clone(&injected)), Ok(injected))
                }
                Entry::Vacant(slot) => {
                    let resource = Arc::clone(slot.insert(Arc::new(resource)));
                    (Outcome::Created(Arc::clone(&resource)), Ok(resource))
                }
            },
        };
        drop(guard);
        flight.finish(outcome);
        if let Some(orphan) = orphan {
            let _ = orphan.close();
        }
        result
    }

    /// Puts `resource` in for `key`, replacing any other (which is not closed: it is dropped
    /// when its last `Arc` goes).
    ///
    /// # Errors
    ///
    /// [`Closed`] once the manager is closed; `resource` is then closed and dropped.
    pub fn inject(&self, key: K, resource: R) -> Result<(), Closed> {
        let mut state = lock(&self.state);
        if state.closed {
            drop(state);
            let _ = resource.close();
            return Err(Closed::new());
        }
        state.resources.insert(key, Arc::new(resource));
        Ok(())
    }

    /// The resource for `key`, if it has been created or injected (and the manager is not
    /// closed). Never creates.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<R>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.state).resources.get(key).cloned()
    }

    /// How many callers are waiting for the create running for `key` (not the one running
    /// it; a snapshot, 0 if no create for `key` runs): they will share its outcome (or retry,
    /// as [`get_or_create`](Self::get_or_create) says). For metrics and for tests that must
    /// know their callers have joined a create.
    pub fn waiting<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.state)
            .creating
            .get(key)
            .map_or(0, |creating| creating.waiters)
    }

    /// How many resources the manager holds (0 once closed).
    pub fn len(&self) -> usize {
        lock(&self.state).resources.len()
    }

    /// Whether the manager holds no resource.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Closes the manager and every resource it holds, outside its lock. From now on every
    /// call fails with [`Closed`] and the manager is empty. Calling it again closes nothing
    /// and returns `Ok`.
    ///
    /// # Errors
    ///
    /// The close errors of all resources whose close failed, with their keys (every resource
    /// is closed regardless).
    ///
    /// # Panics
    ///
    /// A panicking [`Close::close`] propagates; the resources not closed yet are dropped
    /// unclosed.
    pub fn close(&self) -> Result<(), CloseErrors<K, R::Error>> {
        let resources = {
            let mut state = lock(&self.state);
            state.closed = true;
            std::mem::take(&mut state.resources)
        };
        let errors: Vec<(K, R::Error)> = resources
            .into_iter()
            .filter_map(|(key, resource)| resource.close().err().map(|e| (key, e)))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CloseErrors::new(errors))
        }
    }
}

/// Ends a create that unwinds: the key stops creating and waiters retry.
struct AbandonOnPanic<'a, K: Hash + Eq, R> {
    manager: &'a ResourceManager<K, R>,
    key: &'a K,
    flight: &'a Flight<R>,
}

impl<K: Hash + Eq, R> Drop for AbandonOnPanic<'_, K, R> {
    fn drop(&mut self) {
        lock(&self.manager.state).creating.remove(self.key);
        self.flight.finish(Outcome::Retry);
    }
}

impl<K: Hash + Eq + Clone, R: Close> Default for ResourceManager<K, R> {
    fn default() -> ResourceManager<K, R> {
        ResourceManager::new()
    }
}

impl<K, R> fmt::Debug for ResourceManager<K, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("ResourceManager")
            .field("resources", &state.resources.len())
            .field("creating", &state.creating.len())
            .field("closed", &state.closed)
            .finish()
    }
}
