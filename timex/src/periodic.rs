//! [`Periodic`] work on one shared background thread (feature `periodic`): what keel's
//! crates use to publish counters they batch on their hot paths (feature `metrics`) at
//! least once per [`PERIOD`], also while no call passes by to do it.
//!
//! One thread per process serves every registered task. It starts with the first
//! [`register`], holds only [`Weak`] references (a registration never keeps a primitive
//! alive), drops the tasks whose owners are gone, and exits when none is left; the next
//! `register` starts it again. The thread sleeps on real time whatever clock the primitives
//! use: publishing is bookkeeping, not part of any primitive's semantics.

use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

/// How often the thread runs every registered task.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Work run on the shared thread every [`PERIOD`] for as long as its owner lives.
///
/// Keep [`run`](Periodic::run) short and non-blocking (a few loads and stores): every
/// task of the process runs on the one thread, one after another.
pub trait Periodic: Send + Sync {
    /// One periodic run.
    fn run(&self);
}

/// The tasks, whether the thread is running, and whether it may run.
struct Registry {
    tasks: Vec<Weak<dyn Periodic>>,
    running: bool,
    enabled: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    tasks: Vec::new(),
    running: false,
    enabled: true,
});

/// Runs `task` every [`PERIOD`] on the shared thread until its owner drops the last strong
/// reference. Returns false if the thread could not be started (the OS refused it): the
/// task is then kept and the next `register` tries again. While the thread is turned off
/// ([`set_enabled`]) the task is kept and starts running when it is turned back on.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use keel_timex::periodic::{self, Periodic};
///
/// struct Publisher(AtomicU64);
/// impl Periodic for Publisher {
///     fn run(&self) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let publisher = Arc::new(Publisher(AtomicU64::new(0)));
/// let weak = Arc::downgrade(&publisher);
/// assert!(periodic::register(weak));
/// drop(publisher); // the thread forgets it on its next run
/// ```
pub fn register(task: Weak<dyn Periodic>) -> bool {
    let mut registry = lock();
    registry.tasks.push(task);
    start_if_needed(&mut registry)
}

/// Turns the shared thread off (`false`) or back on (`true`, the default).
///
/// Off, no thread runs: registrations are kept and nothing is published until the
/// owners publish themselves (every primitive with batched counters publishes at its
/// `snapshot()`, its `publish_metrics()` and its drop). A process that renders its
/// metrics only on a scrape can call `publish_metrics()` there and do without the
/// thread; keel's instruction-count gate turns it off so that only the measured caller's
/// instructions are counted. A running thread stops at its next wake-up, before running
/// any task. Turned back on, the thread starts again if a registered owner is alive.
/// Returns false only if the thread had to be started and the OS refused it.
///
/// ```
/// use keel_timex::periodic;
///
/// periodic::set_enabled(false);
/// // ... every publication now happens at snapshot(), publish_metrics() or drop ...
/// assert!(periodic::set_enabled(true));
/// ```
pub fn set_enabled(enabled: bool) -> bool {
    let mut registry = lock();
    registry.enabled = enabled;
    if !enabled {
        return true;
    }
    registry.tasks.retain(|t| t.strong_count() > 0);
    registry.tasks.is_empty() || start_if_needed(&mut registry)
}

/// Starts the thread unless it runs or is turned off; false if the OS refused it.
fn start_if_needed(registry: &mut Registry) -> bool {
    if registry.running || !registry.enabled {
        return true;
    }
    let started = thread::Builder::new()
        .name("keel-periodic".into())
        .spawn(run_until_idle)
        .is_ok();
    registry.running = started;
    started
}

/// How many registered tasks still have an owner (for tests and diagnostics).
pub fn live_tasks() -> usize {
    lock().tasks.iter().filter(|t| t.strong_count() > 0).count()
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    // A task that panicked poisons nothing of ours: the list stays valid.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_until_idle() {
    loop {
        thread::sleep(PERIOD);
        let live: Vec<Arc<dyn Periodic>> = {
            let mut registry = lock();
            registry.tasks.retain(|t| t.strong_count() > 0);
            if registry.tasks.is_empty() || !registry.enabled {
                registry.running = false;
                return;
            }
            registry.tasks.iter().filter_map(Weak::upgrade).collect()
        };
        // Outside the lock: a task may register another (a primitive built inside one),
        // and a panicking task must not stop the others for good.
        for task in live {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct Signal(Mutex<mpsc::Sender<()>>);
    impl Periodic for Signal {
        fn run(&self) {
            let _ = self.0.lock().unwrap().send(());
        }
    }

    /// A registered task runs on the thread (waits for the hand-off, no timing assumed);
    /// once its owner is gone it is forgotten and never runs again.
    #[test]
    fn runs_while_owned_and_is_forgotten_after() {
        let (tx, rx) = mpsc::channel();
        let task: Arc<dyn Periodic> = Arc::new(Signal(Mutex::new(tx)));
        assert!(register(Arc::downgrade(&task)));
        rx.recv().expect("the periodic thread ran the task");
        drop(task);
        // The sender lived inside the task: once the thread drops its upgraded clone
        // the channel disconnects, whatever runs were already under way.
        while rx.recv().is_ok() {}
        assert_eq!(live_tasks(), 0, "only this test registers in this binary");
    }
}
