//! The virtual-time executor: the same scenario as a deterministic discrete-event simulation.
//!
//! A single-threaded executor runs every task (the traffic feed, each request of both
//! runs, the CPU sampler) until all of them wait on a timer, then moves a `ManualClock` to
//! the earliest timer and wakes it. Requests arrive on the seeded schedule, database
//! queries and CPU work complete at the times the models computed, and shedder guards and
//! breaker permits are released when their request completes in virtual time, exactly as
//! in the real-time run. With one thread, FIFO wake-ups, timers ordered by (deadline,
//! registration) and every keel primitive on the manual clock with its randomness seeded or
//! off, a seed gives the same numbers on every run.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use keel_timex::{Clock, ManualClock, Nanos};

use crate::env::Env;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where virtual time starts: not at zero, so that no primitive mistakes the start for
/// "never" (the breaker's last forced pass is 0 before the first one).
const ORIGIN: Nanos = Nanos::from_nanos(1_000_000_000);

#[derive(Default)]
struct State {
    /// Pending timers by (deadline in clock nanos, registration number).
    timers: BTreeMap<(u64, u64), Waker>,
    next_timer: u64,
    /// Tasks to poll, in wake-up order (a task may appear twice: a spurious poll is fine).
    ready: VecDeque<usize>,
    /// Tasks spawned since the executor last looked.
    spawned: Vec<Task>,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The [`Env`] of a simulation: a handle to its clock and executor.
#[derive(Clone)]
pub(crate) struct SimEnv {
    clock: ManualClock,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimEnv")
            .field("now", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl Env for SimEnv {
    type Clock = ManualClock;

    fn clock(&self) -> ManualClock {
        self.clock.clone()
    }

    fn elapsed(&self) -> Duration {
        self.clock.now() - ORIGIN
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send + 'static {
        Sleep {
            deadline: ORIGIN.saturating_add(at).as_nanos(),
            clock: self.clock.clone(),
            shared: Arc::clone(&self.shared),
            key: None,
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.shared.lock().spawned.push(Box::pin(task));
    }
}

/// A virtual-time timer. Dropping it (a deadline that won the race) removes its entry, so
/// the clock never jumps to a time nobody waits for.
struct Sleep {
    deadline: u64,
    clock: ManualClock,
    shared: Arc<Shared>,
    key: Option<(u64, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now().as_nanos() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let mut state = self.shared.lock();
        let key = match self.key {
            Some(key) => key,
            None => {
                state.next_timer += 1;
                (self.deadline, state.next_timer)
            }
        };
        state.timers.insert(key, cx.waker().clone());
        drop(state);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Sleep {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.lock().timers.remove(&key);
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Wakes task `id` by queueing it.
struct TaskWaker {
    id: usize,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.lock().ready.push_back(self.id);
    }
}

/// Runs tasks on virtual time.
pub(crate) struct Simulator {
    env: SimEnv,
    tasks: Vec<Option<Task>>,
    free: Vec<usize>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("env", &self.env)
            .field("tasks", &(self.tasks.len() - self.free.len()))
            .finish()
    }
}

impl Simulator {
    pub(crate) fn new() -> Simulator {
        Simulator {
            env: SimEnv {
                clock: ManualClock::starting_at(ORIGIN),
                shared: Arc::new(Shared {
                    state: Mutex::default(),
                }),
            },
            tasks: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn env(&self) -> SimEnv {
        self.env.clone()
    }

    /// Runs until every task has finished.
    pub(crate) fn run(&mut self) {
        loop {
            self.adopt_spawned();
            let next = self.env.shared.lock().ready.pop_front();
            if let Some(id) = next {
                self.poll(id);
                continue;
            }
            // Every task waits: move time to the earliest timer and wake all that are due.
            let due = {
                let mut state = self.env.shared.lock();
                let Some((&(deadline, _), _)) = state.timers.first_key_value() else {
                    break;
                };
                self.env.clock.advance_to(Nanos::from_nanos(deadline));
                let later = state.timers.split_off(&(deadline + 1, 0));
                std::mem::replace(&mut state.timers, later)
            };
            due.into_values().for_each(Waker::wake);
        }
        debug_assert!(
            self.tasks.iter().all(Option::is_none),
            "a task never woke up"
        );
    }

    fn adopt_spawned(&mut self) {
        let spawned = std::mem::take(&mut self.env.shared.lock().spawned);
        for task in spawned {
            let id = match self.free.pop() {
                Some(id) => {
                    self.tasks[id] = Some(task);
                    id
                }
                None => {
                    self.tasks.push(Some(task));
                    self.tasks.len() - 1
                }
            };
            self.env.shared.lock().ready.push_back(id);
        }
    }

    fn poll(&mut self, id: usize) {
        let Some(task) = self.tasks[id].as_mut() else {
            return; // finished already: a stale wake-up
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            shared: Arc::clone(&self.env.shared),
        }));
        if task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
        {
            self.tasks[id] = None;
            self.free.push(id);
        }
    }
}
