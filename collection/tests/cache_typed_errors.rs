//! A loader's error reaches the caller typed, as `TakeError<E>::Failed(Arc<E>)`: the same
//! `Arc` for every caller of one load. Callers of one key whose loaders fail with different
//! types share a value or a panic, but never get an error of a type that is not theirs: they
//! load again, together, and after a second foreign failure each runs its own loader.
//!
//! No timing is asserted: a loader that must have company waits until [`Cache::waiting`]
//! shows the other callers have joined its load, and a caller is held between its miss and
//! its joining by a [`GatedKey`].

mod support;

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use keel_collection::cache::{Cache, TakeError};
use keel_timex::ManualClock;
use support::gate::{Gate, GatedKey};
use support::{manual, secs, wait_until, wait_until_async};

/// One loader error type.
#[derive(Debug, PartialEq)]
struct DbDown(u32);

impl fmt::Display for DbDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database {} is down", self.0)
    }
}

impl Error for DbDown {}

/// Another loader error type, for callers of the same key.
#[derive(Debug, PartialEq)]
struct Timeout(u32);

type Shared = Cache<u64, String, ManualClock>;

/// The loader of a caller that must join a load, never run its own.
fn never<E>() -> Result<String, E> {
    unreachable!("a caller that joined a load ran its own loader")
}

/// The async [`never`].
async fn never_async<E>() -> Result<String, E> {
    never()
}

/// A loader that panics.
fn blow_up() -> Result<String, DbDown> {
    panic!("expected in this test")
}

fn cache() -> Shared {
    manual(secs(60)).0.build().unwrap()
}

fn hits_misses<K: std::hash::Hash + Eq>(cache: &Cache<K, impl Clone, ManualClock>) -> (u64, u64) {
    let stats = cache.snapshot();
    (stats.hits, stats.misses)
}

/// Checks that every result failed with the same `Arc` holding `want`.
fn one_shared_error<E: PartialEq + fmt::Debug, T: fmt::Debug>(
    results: &[Result<T, TakeError<E>>],
    want: &E,
) {
    let mut first: Option<&Arc<E>> = None;
    for result in results {
        let Err(TakeError::Failed(error)) = result else {
            panic!("expected the loader's error, got {result:?}");
        };
        assert_eq!(&**error, want);
        assert!(
            Arc::ptr_eq(first.get_or_insert(error), error),
            "one error object for all callers"
        );
    }
    assert!(first.is_some(), "no caller");
}

// ---- the error, typed ------------------------------------------------------------------------

#[test]
fn the_error_is_typed_and_still_an_error_with_its_source() {
    let cache = cache();
    let error = cache.take(1, || Err::<String, _>(DbDown(3))).unwrap_err();
    assert_eq!(error.failed(), Some(&DbDown(3)));
    assert_eq!(
        error.to_string(),
        "the cache loader failed: database 3 is down"
    );
    // `?` into a boxed error keeps the chain: the source is the loader's error itself.
    let boxed: Box<dyn Error + Send + Sync> = error.clone().into();
    let source = boxed.source().expect("the loader's error is the source");
    assert_eq!(source.downcast_ref::<DbDown>(), Some(&DbDown(3)));
    // A clone shares the error.
    let (TakeError::Failed(a), TakeError::Failed(b)) = (&error, &error.clone()) else {
        unreachable!()
    };
    assert!(Arc::ptr_eq(a, b));
    // The other variants have no source and no failed error.
    for other in [TakeError::<DbDown>::LoaderPanicked, TakeError::NotFound] {
        assert!(other.source().is_none());
        assert_eq!(other.failed(), None);
    }
    // The default error type is that of a loader that cannot fail.
    let infallible: Result<String, TakeError> =
        cache.take(2, || Ok::<_, std::convert::Infallible>("two".to_string()));
    assert_eq!(infallible.unwrap(), "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_callers_of_a_failed_load_share_one_arc() {
    const CALLERS: usize = 20;
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                let waiting = cache.clone();
                cache
                    .take_async(1, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        wait_until_async("the other callers to join", || {
                            waiting.waiting(&1) == CALLERS - 1
                        })
                        .await;
                        Err::<String, _>(DbDown(1))
                    })
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    one_shared_error(&results, &DbDown(1));
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(hits_misses(&cache), (0, 0), "a failed load counts nothing");
    assert_eq!(cache.len(), 0);
}

// ---- callers with different error types --------------------------------------------------------

#[test]
fn a_value_and_a_panic_reach_callers_of_every_error_type() {
    for panics in [false, true] {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        let started = Barrier::new(2);
        let (led, joined) = thread::scope(|s| {
            let leader = s.spawn(|| {
                cache.take(1, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    started.wait();
                    wait_until("the other caller to join", || cache.waiting(&1) == 1);
                    if panics {
                        panic!("expected in this test");
                    }
                    Ok::<_, DbDown>("one".to_string())
                })
            });
            started.wait();
            let follower = s.spawn(|| {
                cache.take(1, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Timeout>("never".to_string())
                })
            });
            (leader.join().unwrap(), follower.join().unwrap())
        });
        assert_eq!(loads.into_inner(), 1, "panics: {panics}");
        if panics {
            assert!(matches!(led, Err(TakeError::LoaderPanicked)), "{led:?}");
            assert!(
                matches!(joined, Err(TakeError::LoaderPanicked)),
                "{joined:?}"
            );
            assert_eq!(cache.len(), 0);
        } else {
            assert_eq!(led.unwrap(), "one");
            assert_eq!(joined.unwrap(), "one");
            assert_eq!(hits_misses(&cache), (1, 1));
        }
    }
}

/// Runs `same` callers whose loaders fail with `DbDown` and `other` callers whose loaders
/// fail with `Timeout` (or, with `other_succeeds`, return a value), on one key. The first
/// `DbDown` caller leads; its loader waits for everyone to join, then fails. Returns the
/// callers' results and how many loaders of each kind ran.
#[allow(clippy::type_complexity)]
fn mixed_takes(
    cache: &Shared,
    same: usize,
    other: usize,
    other_succeeds: bool,
) -> (
    Vec<Result<String, TakeError<DbDown>>>,
    Vec<Result<String, TakeError<Timeout>>>,
    usize,
    usize,
) {
    let (db_loads, timeout_loads) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let leading = Barrier::new(2);
    // Whether the `DbDown` load has ended: the `Timeout` callers' own load starts after.
    let db_load_over = AtomicBool::new(false);
    let (same_results, other_results) = thread::scope(|s| {
        let db_loader = || {
            db_loads.fetch_add(1, Ordering::SeqCst);
            leading.wait();
            wait_until("every other caller to join", || {
                cache.waiting(&1) == same + other - 1
            });
            db_load_over.store(true, Ordering::SeqCst);
            Err::<String, _>(DbDown(1))
        };
        let leader = s.spawn(move || cache.take(1, db_loader));
        leading.wait();
        let same_callers: Vec<_> = (1..same)
            .map(|_| s.spawn(|| cache.take(1, never::<DbDown>)))
            .collect();
        let other_callers: Vec<_> = (0..other)
            .map(|_| {
                s.spawn(|| {
                    cache.take(1, || {
                        timeout_loads.fetch_add(1, Ordering::SeqCst);
                        assert!(db_load_over.load(Ordering::SeqCst));
                        // The other `Timeout` callers rejoin this load.
                        wait_until("the other Timeout callers to rejoin", || {
                            cache.waiting(&1) == other - 1
                        });
                        if other_succeeds {
                            Ok("one".to_string())
                        } else {
                            Err(Timeout(2))
                        }
                    })
                })
            })
            .collect();
        let mut same_results = vec![leader.join().unwrap()];
        same_results.extend(same_callers.into_iter().map(|c| c.join().unwrap()));
        let other_results: Vec<_> = other_callers
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect();
        (same_results, other_results)
    });
    (
        same_results,
        other_results,
        db_loads.into_inner(),
        timeout_loads.into_inner(),
    )
}

#[test]
fn callers_of_another_error_type_load_again_together_and_get_their_own_error() {
    let cache = cache();
    let (same, other, db_loads, timeout_loads) = mixed_takes(&cache, 30, 30, false);
    // The `DbDown` callers share the leader's error; none of the `Timeout` callers gets it.
    one_shared_error(&same, &DbDown(1));
    one_shared_error(&other, &Timeout(2));
    assert_eq!((db_loads, timeout_loads), (1, 1), "one load per error type");
    assert_eq!(cache.waiting(&1), 0);
    assert_eq!(cache.len(), 0);
    assert_eq!(hits_misses(&cache), (0, 0));
}

#[test]
fn callers_of_another_error_type_that_load_again_share_the_value_they_load() {
    let cache = cache();
    let (same, other, db_loads, timeout_loads) = mixed_takes(&cache, 10, 30, true);
    one_shared_error(&same, &DbDown(1));
    assert!(
        other.iter().all(|r| matches!(r.as_deref(), Ok("one"))),
        "{other:?}"
    );
    assert_eq!((db_loads, timeout_loads), (1, 1));
    assert_eq!(cache.get(&1).as_deref(), Some("one"));
    // The `Timeout` caller that loaded missed; the 29 that shared its value and the get hit.
    assert_eq!(hits_misses(&cache), (30, 1));
}

#[test]
fn after_a_second_foreign_failure_a_caller_runs_its_own_loader() {
    // A `Timeout` caller joins a `DbDown` load that fails; as it comes back to join again, a
    // second `DbDown` caller starts a load, which the `Timeout` caller joins and which fails
    // too. The `Timeout` caller then runs its own loader, outside the key's flight.
    let cache: Cache<GatedKey, u64, ManualClock> = manual(secs(60)).0.build().unwrap();
    let gate = Arc::new(Gate::default());
    let key = || GatedKey {
        id: 1,
        gate: Arc::clone(&gate),
    };
    let own_loads = AtomicUsize::new(0);
    let second_started = AtomicBool::new(false);
    let first_started = Barrier::new(2);
    let (first, second, foreign) = thread::scope(|s| {
        let first = s.spawn(|| {
            cache.take(key(), || {
                first_started.wait();
                wait_until("the Timeout caller to join", || cache.waiting(&key()) == 1);
                // Its next clone of the key (to join again) will be held.
                gate.set(1);
                Err::<u64, _>(DbDown(1))
            })
        });
        first_started.wait();
        let foreign = s.spawn(|| {
            cache.take(key(), || {
                own_loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Timeout>(22)
            })
        });
        wait_until("the Timeout caller to come back", || gate.state() == 2);
        let second = s.spawn(|| {
            cache.take(key(), || {
                second_started.store(true, Ordering::SeqCst);
                wait_until("the Timeout caller to join again", || {
                    cache.waiting(&key()) == 1
                });
                Err::<u64, _>(DbDown(2))
            })
        });
        wait_until("the second load to start", || {
            second_started.load(Ordering::SeqCst)
        });
        gate.set(3);
        (
            first.join().unwrap(),
            second.join().unwrap(),
            foreign.join().unwrap(),
        )
    });
    assert_eq!(first.unwrap_err().failed(), Some(&DbDown(1)));
    assert_eq!(second.unwrap_err().failed(), Some(&DbDown(2)));
    assert_eq!(foreign.unwrap(), 22, "its own loader's value");
    assert_eq!(own_loads.into_inner(), 1);
    assert_eq!(cache.get(&key()), Some(22));
    assert_eq!(cache.waiting(&key()), 0);
    // The Timeout caller's load missed, the get hit.
    assert_eq!(hits_misses(&cache), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_callers_of_another_error_type_load_again_together() {
    const SAME: usize = 10;
    const OTHER: usize = 10;
    let cache = cache();
    let (db_loads, timeout_loads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let db_load_over = Arc::new(AtomicBool::new(false));
    // The leader's loader starts before anyone else takes.
    let (leading, led) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (cache, db_loads, db_load_over) = (
            cache.clone(),
            Arc::clone(&db_loads),
            Arc::clone(&db_load_over),
        );
        tokio::spawn(async move {
            let waiting = cache.clone();
            cache
                .take_async(1, || async move {
                    db_loads.fetch_add(1, Ordering::SeqCst);
                    leading.send(()).unwrap();
                    wait_until_async("every other caller to join", || {
                        waiting.waiting(&1) == SAME + OTHER - 1
                    })
                    .await;
                    db_load_over.store(true, Ordering::SeqCst);
                    Err::<String, _>(DbDown(1))
                })
                .await
        })
    };
    led.await.unwrap();
    let same: Vec<_> = (1..SAME)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.take_async(1, never_async::<DbDown>).await })
        })
        .collect();
    let other: Vec<_> = (0..OTHER)
        .map(|_| {
            let (cache, timeout_loads, db_load_over) = (
                cache.clone(),
                Arc::clone(&timeout_loads),
                Arc::clone(&db_load_over),
            );
            tokio::spawn(async move {
                let waiting = cache.clone();
                cache
                    .take_async(1, || async move {
                        timeout_loads.fetch_add(1, Ordering::SeqCst);
                        assert!(db_load_over.load(Ordering::SeqCst));
                        wait_until_async("the other Timeout callers to rejoin", || {
                            waiting.waiting(&1) == OTHER - 1
                        })
                        .await;
                        Err::<String, _>(Timeout(2))
                    })
                    .await
            })
        })
        .collect();
    let mut same_results = vec![leader.await.unwrap()];
    for task in same {
        same_results.push(task.await.unwrap());
    }
    let mut other_results = Vec::new();
    for task in other {
        other_results.push(task.await.unwrap());
    }
    one_shared_error(&same_results, &DbDown(1));
    one_shared_error(&other_results, &Timeout(2));
    assert_eq!(
        (
            db_loads.load(Ordering::SeqCst),
            timeout_loads.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert_eq!(cache.waiting(&1), 0);
    assert_eq!(cache.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_caller_of_another_error_type_gets_an_async_loaders_panic() {
    let cache = cache();
    let (leading, led) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let waiting = cache.clone();
            cache
                .take_async(1, || async move {
                    leading.send(()).unwrap();
                    wait_until_async("the sync caller to join", || waiting.waiting(&1) == 1).await;
                    blow_up()
                })
                .await
        })
    };
    led.await.unwrap();
    let sync = {
        let cache = cache.clone();
        thread::spawn(move || cache.take(1, never::<Timeout>))
    };
    assert!(matches!(
        leader.await.unwrap(),
        Err(TakeError::LoaderPanicked)
    ));
    assert!(matches!(
        sync.join().unwrap(),
        Err(TakeError::LoaderPanicked)
    ));
    assert_eq!(cache.len(), 0);
    // Nothing cached: the next take loads.
    assert_eq!(
        cache
            .take(1, || Ok::<_, Timeout>("one".to_string()))
            .unwrap(),
        "one"
    );
}
