//! `periodic::set_enabled`: off, no thread runs (so nothing is published behind the
//! owners' backs, what keel's instruction-count gate relies on); back on, the registered
//! tasks run again. Its own test binary: the periodic thread is process-wide state.
#![cfg(all(feature = "periodic", target_os = "linux"))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use keel_timex::periodic::{self, Periodic};

struct Counted {
    runs: AtomicU64,
    ran: Mutex<mpsc::Sender<()>>,
}

impl Periodic for Counted {
    fn run(&self) {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let _ = self.ran.lock().unwrap().send(());
    }
}

/// Threads of this process named `keel-periodic` (Linux: /proc/self/task/*/comm).
fn periodic_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "keel-periodic")
        .count()
}

#[test]
fn turned_off_no_thread_runs_turned_on_the_tasks_run_again() {
    periodic::set_enabled(false);
    let (tx, rx) = mpsc::channel();
    let task = Arc::new(Counted {
        runs: AtomicU64::new(0),
        ran: Mutex::new(tx),
    });
    let weak: std::sync::Weak<dyn Periodic> = Arc::downgrade(&(task.clone() as Arc<dyn Periodic>));
    assert!(
        periodic::register(weak),
        "registering while off keeps the task"
    );
    assert_eq!(periodic_threads(), 0, "off: registering starts no thread");
    assert_eq!(periodic::live_tasks(), 1);

    assert!(periodic::set_enabled(true));
    rx.recv().expect("back on: the registered task runs");

    periodic::set_enabled(false);
    // The thread stops at its next wake-up; poll for it with a generous deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    while periodic_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "the thread did not stop within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Gone: whatever ran before it stopped, nothing runs the task any more.
    while rx.try_recv().is_ok() {}
    let runs = task.runs.load(Ordering::SeqCst);
    assert_eq!(periodic_threads(), 0);
    assert_eq!(task.runs.load(Ordering::SeqCst), runs);

    assert!(periodic::set_enabled(true));
    rx.recv().expect("on again: a new thread runs the task");
    assert!(task.runs.load(Ordering::SeqCst) > runs);
}
