//! The coarse clock's upkeep thread: one per process, gone after the last handle, back with
//! the next. Its own test binary (own process), so no other test holds a clock meanwhile.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use keel_timex::{Clock, CoarseClock};

/// Threads of this process named like the upkeep (Linux truncates names to 15 bytes). A new
/// thread names itself once it runs, so callers poll.
fn upkeep_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "keel-coarse-clo")
        .count()
}

fn wait_for(threads: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if upkeep_threads() == threads {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Whether `clock` reads later than `before` within 20 s (polled, not a fixed sleep).
fn moves_past(clock: &CoarseClock, before: keel_timex::Nanos) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if clock.now() > before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn one_upkeep_per_process_stopped_after_the_last_handle() {
    assert_eq!(upkeep_threads(), 0);
    let a = CoarseClock::new();
    let b = CoarseClock::new();
    let c = a.clone();
    assert!(wait_for(1), "handles share one upkeep");
    let before = a.now();
    assert!(moves_past(&b, before), "the upkeep refreshes the reading");
    drop((a, b, c));
    assert!(wait_for(0), "the upkeep exits after the grace period");

    let again = CoarseClock::new();
    assert!(wait_for(1), "a new handle starts a new upkeep");
    let before = again.now();
    assert!(
        moves_past(&again, before),
        "the new upkeep refreshes the reading"
    );
}
