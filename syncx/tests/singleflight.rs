//! SingleFlight, sync callers: go-zero's scenarios (`core/syncx/singleflight_test.go`), then
//! what go-zero leaves open (panics, errors shared without `Clone`, mixing with async).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use keel_syncx::singleflight::{FlightError, SingleFlight};

type Flights<V> = SingleFlight<&'static str, V, String>;

/// One caller's result and `fresh` flag.
type Outcome = (Result<&'static str, FlightError<String>>, bool);

/// Runs `f` on `n` scoped threads released together by a barrier.
fn together<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A latch the leaders' closures block on until the test opens it.
struct Gate {
    open: Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn new() -> Self {
        Self {
            open: Mutex::new(false),
            cv: std::sync::Condvar::new(),
        }
    }
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

#[test]
fn do_returns_the_value() {
    // TestExclusiveCallDo
    let flights: Flights<String> = SingleFlight::new();
    let v = flights.run("key", || Ok("bar".to_string()));
    assert_eq!(v.unwrap(), "bar");
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn do_err_returns_the_error() {
    // TestExclusiveCallDoErr
    let flights: Flights<String> = SingleFlight::new();
    let err = flights
        .run("key", || Err("some error".to_string()))
        .unwrap_err();
    assert_eq!(err.failed().map(String::as_str), Some("some error"));
    assert!(matches!(&err, FlightError::Failed(e) if **e == "some error"));
    assert_eq!(flights.in_flight(), 0);
}

/// go-zero's dup-suppress scenarios: one thread per key in `keys`, released together by a
/// barrier. Each execution counts itself and blocks on a gate; the gate opens once every key
/// has a running leader and every caller has announced itself, plus a short grace for the
/// announced callers to reach the table (the only timing here: it can make the counts fail,
/// never pass wrongly). Returns each caller's result and fresh flag, and the executions per key.
fn coalesce(keys: &[&'static str]) -> (Vec<Outcome>, HashMap<&'static str, usize>) {
    let flights: Flights<&'static str> = SingleFlight::new();
    let calls: Mutex<HashMap<&str, usize>> = Mutex::new(HashMap::new());
    let announced = AtomicUsize::new(0);
    let gate = Gate::new();
    let unique: std::collections::HashSet<&'static str> = keys.iter().copied().collect();
    let distinct = unique.len();
    let mut results = together(keys.len() + 1, |i| {
        if i == keys.len() {
            // Every key has its leader and every other caller waits on a flight.
            while calls.lock().unwrap().len() < distinct
                || announced.load(Ordering::SeqCst) < keys.len()
                || unique.iter().map(|k| flights.waiting(k)).sum::<usize>() < keys.len() - distinct
            {
                thread::yield_now();
            }
            gate.open();
            return (Ok("releaser"), false);
        }
        let key = keys[i];
        announced.fetch_add(1, Ordering::SeqCst);
        flights.run_ex(key, || {
            *calls.lock().unwrap().entry(key).or_default() += 1;
            gate.wait();
            Ok(key)
        })
    });
    results.pop();
    assert_eq!(flights.in_flight(), 0);
    (results, calls.into_inner().unwrap())
}

#[test]
fn do_dup_suppress_runs_once_for_ten_callers() {
    // TestExclusiveCallDoDupSuppress: 10 concurrent callers on one key → 1 execution.
    let (results, calls) = coalesce(&["key"; 10]);
    assert!(results.iter().all(|(r, _)| *r == Ok("key")));
    assert_eq!(calls["key"], 1);
}

#[test]
fn do_diff_dup_suppress_runs_once_per_key() {
    // TestExclusiveCallDoDiffDupSuppress: 13 callers over 5 keys released together → 5.
    let keys = [
        "e", "a", "e", "a", "b", "c", "b", "a", "c", "d", "b", "c", "d",
    ];
    let (results, calls) = coalesce(&keys);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(results[i].0, Ok(*key));
    }
    assert_eq!(calls.len(), 5);
    assert_eq!(calls.values().sum::<usize>(), 5, "{calls:?}");
}

#[test]
fn do_ex_dup_suppress_has_exactly_one_fresh() {
    // TestExclusiveCallDoExDupSuppress
    let (results, calls) = coalesce(&["key"; 10]);
    assert_eq!(results.iter().filter(|(_, fresh)| *fresh).count(), 1);
    assert_eq!(calls["key"], 1);
}

#[test]
fn followers_see_the_leaders_error_without_clone() {
    #[derive(Debug)]
    struct NotClone(u32);
    let flights: SingleFlight<u8, u8, NotClone> = SingleFlight::new();
    let gate = Gate::new();
    let errors = together(5, |i| {
        if i == 0 {
            let r = flights.run(1, || {
                gate.wait();
                Err(NotClone(7))
            });
            return r;
        }
        while flights.in_flight() == 0 {
            thread::yield_now();
        }
        if i == 4 {
            while flights.waiting(&1) < 3 {
                thread::yield_now();
            }
            gate.open();
            return Err(FlightError::LeaderPanicked); // placeholder, not checked
        }
        flights.run(1, || Ok(0))
    });
    for (i, r) in errors.iter().enumerate().take(4) {
        match r {
            Err(FlightError::Failed(e)) => assert_eq!(e.0, 7, "caller {i}"),
            // A follower that arrived after the flight ended led its own (Ok(0)).
            Ok(0) => assert_ne!(i, 0),
            other => panic!("caller {i}: {other:?}"),
        }
    }
}

#[test]
fn leader_panic_gives_followers_leader_panicked_and_frees_the_key() {
    let flights: Flights<String> = SingleFlight::new();
    let gate = Gate::new();
    let entered = AtomicUsize::new(0);
    let followers = 4;
    let outcomes = together(followers + 2, |i| match i {
        0 => {
            let panic = catch_unwind(AssertUnwindSafe(|| {
                flights.run("key", || {
                    entered.fetch_add(1, Ordering::SeqCst);
                    gate.wait();
                    panic!("boom")
                })
            }));
            let payload = panic.expect_err("the leader's caller gets the panic");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
            None
        }
        1 => {
            while flights.waiting(&"key") < followers {
                thread::yield_now();
            }
            gate.open();
            None
        }
        _ => {
            while entered.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            Some(flights.run("key", || Ok("late".to_string())))
        }
    });
    let followers_seen: Vec<_> = outcomes.into_iter().flatten().collect();
    assert_eq!(followers_seen.len(), followers);
    for r in &followers_seen {
        // Joined the panicking flight, or (arriving after it ended) ran its own.
        assert!(
            matches!(r, Err(FlightError::LeaderPanicked)) || r.as_deref() == Ok("late"),
            "{r:?}"
        );
    }
    assert!(
        followers_seen
            .iter()
            .any(|r| matches!(r, Err(FlightError::LeaderPanicked)))
    );
    assert_eq!(flights.in_flight(), 0);
    // The key is free: the next call runs its closure.
    assert_eq!(
        flights.run_ex("key", || Ok("again".to_string())),
        (Ok("again".to_string()), true)
    );
}

#[test]
fn leader_panic_without_followers_frees_the_key() {
    let flights: Flights<u32> = SingleFlight::new();
    let r = catch_unwind(AssertUnwindSafe(|| flights.run("k", || panic!("alone"))));
    assert!(r.is_err());
    assert_eq!(flights.in_flight(), 0);
    assert_eq!(flights.run("k", || Ok(3)).unwrap(), 3);
}

#[test]
fn a_panicking_value_clone_does_not_strand_followers() {
    #[derive(Debug)]
    struct BadClone;
    impl Clone for BadClone {
        fn clone(&self) -> Self {
            panic!("clone")
        }
    }
    let flights: SingleFlight<u8, BadClone, ()> = SingleFlight::new();
    let gate = Gate::new();
    let results = together(3, |i| match i {
        0 => catch_unwind(AssertUnwindSafe(|| {
            flights.run(0, || {
                gate.wait();
                Ok(BadClone)
            })
        }))
        .map(|_| ())
        .map_err(|_| "leader panicked"),
        1 => {
            while flights.in_flight() == 0 {
                thread::yield_now();
            }
            match flights.run(0, || Err(())) {
                Err(FlightError::LeaderPanicked) => Ok(()),
                // Arrived after the flight ended, ran its own closure.
                Err(FlightError::Failed(_)) => Ok(()),
                _ => Err("unexpected"),
            }
        }
        _ => {
            while flights.waiting(&0) < 1 {
                thread::yield_now();
            }
            gate.open();
            Ok(())
        }
    });
    assert_eq!(results[1], Ok(()));
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn nothing_is_cached_after_a_flight() {
    let flights: Flights<u32> = SingleFlight::new();
    let calls = AtomicUsize::new(0);
    for _ in 0..3 {
        let (v, fresh) = flights.run_ex("k", || Ok(calls.fetch_add(1, Ordering::SeqCst) as u32));
        assert!(fresh);
        assert!(v.is_ok());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn many_keys_many_threads_leave_nothing_behind() {
    let flights: SingleFlight<u32, u32, ()> = SingleFlight::new();
    together(8, |t| {
        for i in 0..5_000u32 {
            let key = (i + t as u32) % 37;
            assert_eq!(flights.run(key, || Ok(key * 2)), Ok(key * 2));
        }
    });
    assert_eq!(flights.in_flight(), 0);
}

#[test]
fn types_are_send_sync_and_debug() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SingleFlight<String, Arc<str>, std::io::Error>>();
    send_sync::<FlightError<std::io::Error>>();
    let flights: Flights<u8> = SingleFlight::default();
    assert_eq!(
        format!("{flights:?}"),
        r#"SingleFlight { name: "singleflight", in_flight: 0 }"#
    );
}

#[test]
fn error_display_and_source() {
    use std::error::Error as _;
    let io = std::io::Error::other("disk");
    let failed: FlightError<std::io::Error> = FlightError::Failed(Arc::new(io));
    assert_eq!(failed.to_string(), "the coalesced call failed");
    assert_eq!(failed.source().unwrap().to_string(), "disk");
    let cloned = failed.clone();
    assert_eq!(cloned.failed().unwrap().to_string(), "disk");
    let panicked: FlightError<std::io::Error> = FlightError::LeaderPanicked;
    assert_eq!(panicked.to_string(), "the coalesced call panicked");
    assert!(panicked.source().is_none());
    assert!(panicked.is_leader_panicked());
}
