//! `ResourceManager`: go-zero's scenarios (`core/syncx/resourcemanager_test.go`), close and
//! inject racing a create, panicking creates.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use keel_syncx::resource::{Close, Closed, ResourceError, ResourceManager};

#[derive(Debug, Default)]
struct Res {
    age: usize,
    fail_close: bool,
    closed: Arc<AtomicBool>,
}

impl Res {
    fn aged(age: usize) -> Res {
        Res {
            age,
            ..Res::default()
        }
    }
}

impl Close for Res {
    type Error = String;
    fn close(&self) -> Result<(), String> {
        self.closed.store(true, Ordering::SeqCst);
        if self.fail_close {
            Err(format!("close {} failed", self.age))
        } else {
            Ok(())
        }
    }
}

#[test]
fn go_zero_ten_gets_create_once() {
    let manager = ResourceManager::new();
    let age = AtomicUsize::new(0);
    let start = Barrier::new(10);
    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                start.wait();
                let r = manager
                    .get_or_create("key", || {
                        // Not load-bearing: the created resource is kept, so a caller arriving
                        // after the create gets it; one create whatever the scheduling.
                        thread::sleep(Duration::from_millis(10));
                        Ok::<_, String>(Res::aged(age.fetch_add(1, Ordering::SeqCst) + 1))
                    })
                    .unwrap();
                assert_eq!(r.age, 1);
            });
        }
    });
    assert_eq!(age.load(Ordering::SeqCst), 1);
    assert_eq!(manager.len(), 1);
}

#[test]
fn go_zero_create_error_every_time_is_not_cached() {
    let manager: ResourceManager<&str, Res> = ResourceManager::new();
    let creates = AtomicUsize::new(0);
    for n in 1..=10 {
        let err = manager
            .get_or_create("key", || {
                creates.fetch_add(1, Ordering::SeqCst);
                Err::<Res, _>("fail")
            })
            .unwrap_err();
        assert_eq!(err.create_error(), Some(&"fail"));
        assert_eq!(creates.load(Ordering::SeqCst), n);
    }
    assert!(manager.is_empty());
}

#[test]
fn go_zero_close_with_nothing_is_ok_and_empty() {
    let manager: ResourceManager<&str, Res> = ResourceManager::new();
    assert_eq!(manager.close(), Ok(()));
    assert_eq!(manager.len(), 0);
    assert!(manager.is_closed());
    assert_eq!(manager.close(), Ok(()), "closing again is a no-op");
}

#[test]
fn go_zero_use_after_close_is_closed_not_a_panic() {
    let manager = ResourceManager::new();
    let first = manager
        .get_or_create("key", || Ok::<_, String>(Res::aged(1)))
        .unwrap();
    assert_eq!(manager.close(), Ok(()));
    assert!(first.closed.load(Ordering::SeqCst));
    assert!(manager.is_empty());
    assert!(manager.get("key").is_none());

    let err = manager
        .get_or_create("key", || Ok::<_, String>(Res::aged(2)))
        .unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.to_string(), "resource manager is closed");

    let injected = Res::aged(3);
    let closed = Arc::clone(&injected.closed);
    assert_eq!(manager.inject("key", injected), Err(Closed::new()));
    assert!(
        closed.load(Ordering::SeqCst),
        "a refused injection is closed"
    );
}

#[test]
fn go_zero_injected_resource_is_returned_without_create() {
    let manager = ResourceManager::new();
    manager.inject("key", Res::aged(7)).unwrap();
    let r = manager
        .get_or_create("key", || -> Result<Res, String> {
            panic!("create must not run")
        })
        .unwrap();
    assert_eq!(r.age, 7);
    assert_eq!(manager.get("key").unwrap().age, 7);

    manager.inject("key", Res::aged(8)).unwrap();
    assert_eq!(manager.get("key").unwrap().age, 8, "inject overwrites");
    assert!(
        !r.closed.load(Ordering::SeqCst),
        "the replaced one is not closed"
    );
}

#[test]
fn close_closes_everything_and_joins_the_errors() {
    let manager = ResourceManager::new();
    let mut flags = Vec::new();
    for (key, fail) in [("a", true), ("b", false), ("c", true)] {
        let r = Res {
            age: key.as_bytes()[0] as usize,
            fail_close: fail,
            ..Res::default()
        };
        flags.push(Arc::clone(&r.closed));
        manager.inject(key, r).unwrap();
    }
    let errors = manager.close().unwrap_err();
    assert!(flags.iter().all(|f| f.load(Ordering::SeqCst)), "all closed");
    let mut failed: Vec<(&str, String)> = errors.errors().to_vec();
    failed.sort();
    assert_eq!(
        failed,
        [
            ("a", "close 97 failed".into()),
            ("c", "close 99 failed".into())
        ]
    );
    let text = errors.to_string();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("close 97 failed") && text.contains("close 99 failed"));
    assert!(manager.is_empty());
}

#[test]
fn concurrent_callers_share_a_create_error() {
    let manager: ResourceManager<&str, Res> = ResourceManager::new();
    let creates = AtomicUsize::new(0);
    let (go, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let errors: Vec<ResourceError<String>> = thread::scope(|s| {
        let hs: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    manager
                        .get_or_create("key", || {
                            let n = creates.fetch_add(1, Ordering::SeqCst);
                            gate.lock().unwrap().recv().unwrap();
                            Err::<Res, _>(format!("attempt {n}"))
                        })
                        .unwrap_err()
                })
            })
            .collect();
        // One caller creates (held until `go`), the nine others wait for that create: only
        // then let it fail. Errors are not cached, so a caller arriving later would create.
        while manager.waiting("key") < 9 {
            thread::yield_now();
        }
        go.send(()).unwrap();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        creates.load(Ordering::SeqCst),
        1,
        "one create for 10 callers"
    );
    for e in &errors {
        assert_eq!(e.create_error().map(String::as_str), Some("attempt 0"));
    }
    assert_eq!(manager.waiting("key"), 0);
}

#[test]
fn panicking_create_leaves_nothing_creating() {
    let manager: ResourceManager<&str, Res> = ResourceManager::new();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        manager.get_or_create("key", || -> Result<Res, String> { panic!("boom") })
    }));
    assert!(caught.is_err());
    assert!(format!("{manager:?}").contains("creating: 0"));
    let r = manager
        .get_or_create("key", || Ok::<_, String>(Res::aged(2)))
        .unwrap();
    assert_eq!(r.age, 2);
}

#[test]
fn waiters_of_a_panicking_create_retry() {
    let manager: ResourceManager<&str, Res> = ResourceManager::new();
    let creates = AtomicUsize::new(0);
    let start = Barrier::new(6);
    let (panics, ages) = thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    manager.get_or_create("key", || {
                        let n = creates.fetch_add(1, Ordering::SeqCst);
                        // Not load-bearing: whoever arrives after the panic creates (n = 1) or
                        // gets that resource, kept; the assertions hold whatever the scheduling.
                        thread::sleep(Duration::from_millis(30));
                        if n == 0 {
                            panic!("first create panics");
                        }
                        Ok::<_, String>(Res::aged(n))
                    })
                })
            })
            .collect();
        let results: Vec<_> = hs.into_iter().map(|h| h.join()).collect();
        let panics = results.iter().filter(|r| r.is_err()).count();
        let ages: Vec<usize> = results
            .into_iter()
            .filter_map(Result::ok)
            .map(|r| r.unwrap().age)
            .collect();
        (panics, ages)
    });
    assert_eq!(panics, 1);
    assert_eq!(ages, vec![1; 5]);
    assert_eq!(creates.load(Ordering::SeqCst), 2);
}

type Creator<'s> = thread::ScopedJoinHandle<'s, Result<Arc<Res>, ResourceError<String>>>;

/// Runs a create for "key" on another thread that blocks until the returned sender fires.
fn blocked_create<'s>(
    s: &'s thread::Scope<'s, '_>,
    manager: &'s ResourceManager<&'static str, Res>,
    created: Res,
) -> (mpsc::Sender<()>, Creator<'s>) {
    let (go, wait) = mpsc::channel::<()>();
    let (entered, inside) = mpsc::channel::<()>();
    let handle = s.spawn(move || {
        manager.get_or_create("key", move || {
            entered.send(()).unwrap();
            wait.recv().unwrap();
            Ok::<_, String>(created)
        })
    });
    inside.recv().unwrap();
    (go, handle)
}

#[test]
fn injection_during_a_create_wins() {
    let manager = ResourceManager::new();
    let created = Res::aged(1);
    let created_closed = Arc::clone(&created.closed);
    thread::scope(|s| {
        let (go, creator) = blocked_create(s, &manager, created);
        manager.inject("key", Res::aged(2)).unwrap();
        go.send(()).unwrap();
        assert_eq!(creator.join().unwrap().unwrap().age, 2);
    });
    assert!(
        created_closed.load(Ordering::SeqCst),
        "the losing resource is closed"
    );
    assert_eq!(manager.get("key").unwrap().age, 2);
}

#[test]
fn close_during_a_create_fails_it_with_closed() {
    let manager = ResourceManager::new();
    let created = Res::aged(1);
    let created_closed = Arc::clone(&created.closed);
    thread::scope(|s| {
        let (go, creator) = blocked_create(s, &manager, created);
        // A second caller waits for the running create.
        let waiter = s
            .spawn(|| manager.get_or_create("key", || -> Result<Res, String> { Ok(Res::aged(9)) }));
        // Not load-bearing: had the waiter not joined the create yet, it finds the manager
        // closed; `Closed` either way.
        thread::sleep(Duration::from_millis(20));
        assert_eq!(manager.close(), Ok(()));
        go.send(()).unwrap();
        assert!(creator.join().unwrap().unwrap_err().is_closed());
        assert!(waiter.join().unwrap().unwrap_err().is_closed());
    });
    assert!(created_closed.load(Ordering::SeqCst));
    assert!(manager.is_empty());
}

#[test]
fn waiter_with_another_error_type_creates_itself() {
    let manager: ResourceManager<&str, Res> = ResourceManager::new();
    thread::scope(|s| {
        let (go, wait) = mpsc::channel::<()>();
        let (entered, inside) = mpsc::channel::<()>();
        let failing = s.spawn(|| {
            manager.get_or_create("key", move || {
                entered.send(()).unwrap();
                wait.recv().unwrap();
                Err::<Res, _>("text error")
            })
        });
        inside.recv().unwrap();
        let other = s.spawn(|| manager.get_or_create("key", || Ok::<_, u32>(Res::aged(5))));
        // Not load-bearing: had `other` not joined the failing create yet, it finds the key
        // free and creates; it creates itself either way.
        thread::sleep(Duration::from_millis(20));
        go.send(()).unwrap();
        assert_eq!(
            failing.join().unwrap().unwrap_err().create_error(),
            Some(&"text error")
        );
        assert_eq!(other.join().unwrap().unwrap().age, 5);
    });
}

#[test]
fn get_borrows_the_key() {
    let manager: ResourceManager<String, Res> = ResourceManager::new();
    manager.inject("db".to_string(), Res::aged(1)).unwrap();
    assert_eq!(manager.get("db").unwrap().age, 1);
    assert!(manager.get("cache").is_none());
}

#[test]
fn errors_implement_std_error() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Closed>();
    assert_error::<ResourceError<std::io::Error>>();
    assert_error::<keel_syncx::resource::CloseErrors<String, std::io::Error>>();
    let e: ResourceError<std::io::Error> =
        ResourceError::Create(Arc::new(std::io::Error::other("disk")));
    assert_eq!(e.to_string(), "creating resource failed: disk");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn manager_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ResourceManager<String, Res>>();
}
