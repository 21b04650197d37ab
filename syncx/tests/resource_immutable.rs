//! `ImmutableResource`: go-zero's scenarios (`core/syncx/immutableresource_test.go`) on a
//! `ManualClock`, concurrent getters (PR #5065) and panicking fetches.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use keel_syncx::resource::ImmutableResource;
use keel_timex::ManualClock;

fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let c = Arc::new(AtomicUsize::new(0));
    (Arc::clone(&c), c)
}

/// Holds fetches until the test opens it; open for good afterwards.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

#[test]
fn go_zero_fetched_once_across_gets() {
    let (count, c) = counter();
    let r = ImmutableResource::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>("hello")
    });
    assert!(r.peek().is_none());
    assert_eq!(*r.get().unwrap(), "hello");
    assert_eq!(*r.get().unwrap(), "hello");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(*r.peek().unwrap(), "hello");
}

#[test]
fn go_zero_error_is_cached_until_the_interval_passes() {
    let (count, c) = counter();
    let clock = ManualClock::new();
    let r = ImmutableResource::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>("any")
    })
    .clock(clock.clone());
    assert_eq!(*r.get().unwrap_err(), "any");
    assert_eq!(*r.get().unwrap_err(), "any");
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "error twice with one fetch"
    );

    clock.advance(Duration::from_millis(999));
    assert_eq!(*r.get().unwrap_err(), "any");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_millis(1)); // default interval: 1 s
    assert_eq!(*r.get().unwrap_err(), "any");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(*r.get().unwrap_err(), "any");
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "the interval restarts at each failure"
    );
}

#[test]
fn success_after_a_cached_error_is_kept_for_good() {
    let (count, c) = counter();
    let clock = ManualClock::new();
    let r = ImmutableResource::new(move || match c.fetch_add(1, Ordering::SeqCst) {
        0 => Err("down"),
        _ => Ok(42),
    })
    .retry_interval(Duration::from_secs(3))
    .clock(clock.clone());
    assert_eq!(*r.get().unwrap_err(), "down");
    clock.advance(Duration::from_secs(3));
    assert_eq!(*r.get().unwrap(), 42);
    clock.advance(Duration::from_secs(100));
    assert_eq!(*r.get().unwrap(), 42);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn go_zero_interval_zero_fetches_on_every_get() {
    let (count, c) = counter();
    let r = ImmutableResource::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>("any")
    })
    .retry_interval(Duration::ZERO)
    .clock(ManualClock::new()); // time stands still: still refetches
    for n in 1..=5 {
        assert!(r.get().is_err());
        assert_eq!(count.load(Ordering::SeqCst), n);
    }
}

#[test]
fn go_zero_concurrent_gets_share_one_slow_fetch() {
    let (count, c) = counter();
    let r = ImmutableResource::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        // Not load-bearing: a success is kept for good, so a getter arriving after the fetch
        // reads it without fetching; one fetch whatever the scheduling.
        thread::sleep(Duration::from_millis(50));
        Ok::<_, String>("hello")
    });
    let start = Barrier::new(10);
    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                start.wait();
                assert_eq!(*r.get().unwrap(), "hello");
            });
        }
    });
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn concurrent_gets_share_one_failed_fetch_even_with_interval_zero() {
    let (count, c) = counter();
    let gate = Arc::new(Gate::default());
    let held = Arc::clone(&gate);
    let r = ImmutableResource::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        held.pass();
        Err::<(), _>("down".to_string())
    })
    .retry_interval(Duration::ZERO);
    let errors: Vec<Arc<String>> = thread::scope(|s| {
        let hs: Vec<_> = (0..10).map(|_| s.spawn(|| r.get().unwrap_err())).collect();
        // One getter fetches (held at the gate), the nine others wait for that fetch: only
        // then let it fail. With interval zero, a getter arriving later would fetch again.
        while r.waiting() < 9 {
            thread::yield_now();
        }
        gate.open();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The fetch's error is one Arc, returned to its fetcher and to every waiter.
    assert_eq!(count.load(Ordering::SeqCst), 1, "one fetch for 10 getters");
    assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])));
    assert_eq!(*errors[0], "down");
    assert_eq!(r.waiting(), 0);
}

#[test]
fn panicking_fetch_leaves_it_unfetched_and_the_next_get_fetches() {
    let (count, c) = counter();
    let r = ImmutableResource::new(move || {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("fetch failed hard");
        }
        Ok::<_, String>(5)
    })
    .clock(ManualClock::new());
    assert!(catch_unwind(AssertUnwindSafe(|| r.get())).is_err());
    assert!(r.peek().is_none());
    assert_eq!(
        *r.get().unwrap(),
        5,
        "no error was cached: fetch again at once"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn waiters_of_a_panicking_fetch_fetch_themselves() {
    let (count, c) = counter();
    let r = ImmutableResource::new(move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        // Not load-bearing: whoever arrives after the panic fetches (n = 1) or reads that
        // fetch's value, kept for good; the assertions hold whatever the scheduling.
        thread::sleep(Duration::from_millis(30));
        if n == 0 {
            panic!("first fetch panics");
        }
        Ok::<_, String>(n)
    });
    let start = Barrier::new(6);
    let (panicked, values) = thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    r.get()
                })
            })
            .collect();
        let results: Vec<_> = hs.into_iter().map(|h| h.join()).collect();
        let panicked = results.iter().filter(|r| r.is_err()).count();
        let values: Vec<usize> = results
            .into_iter()
            .filter_map(|r| r.ok())
            .map(|v| *v.unwrap())
            .collect();
        (panicked, values)
    });
    assert_eq!(
        panicked, 1,
        "only the caller that ran the panicking fetch panics"
    );
    assert_eq!(values.len(), 5);
    assert!(
        values.iter().all(|&v| v == 1),
        "one retry fetch, shared: {values:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn resource_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ImmutableResource<String, std::io::Error>>();
    assert_send_sync::<ImmutableResource<Vec<u8>, String, ManualClock>>();
}

#[test]
fn debug_shows_state() {
    let r = ImmutableResource::new(|| Ok::<_, ()>(1)).retry_interval(Duration::from_secs(2));
    assert!(format!("{r:?}").contains("fetched: false"));
    r.get().unwrap();
    assert!(format!("{r:?}").contains("fetched: true"));
}
