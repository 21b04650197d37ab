//! The coalescing loader: concurrent takes of one key load once (sync, async, mixed), a
//! failing or panicking loader reaches every caller and caches nothing, a cancelled async
//! loader hands over, and the hit/miss accounting of takes.
//!
//! No timing is asserted: a loader that must have company waits until [`Cache::waiting`]
//! shows every other caller has joined its load.

mod support;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::thread;

use keel_collection::cache::{Cache, TakeError};
use keel_timex::ManualClock;
use support::gate::{Gate, GatedKey};
use support::{HANG, manual, secs, wait_until, wait_until_async};

const CALLERS: usize = 100;

/// A handle on the cache under test; clones share it.
type Shared = Cache<u64, String, ManualClock>;

fn cache() -> Shared {
    manual(secs(60)).0.build().unwrap()
}

/// The loader's error type, which reaches the callers typed.
#[derive(Debug, PartialEq)]
struct DbDown(u32);

impl fmt::Display for DbDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database {} is down", self.0)
    }
}

impl Error for DbDown {}

fn hits_misses(cache: &Cache<u64, String, ManualClock>) -> (u64, u64) {
    let stats = cache.snapshot();
    (stats.hits, stats.misses)
}

/// Runs `take(key, loader)` on `CALLERS` threads released together by a barrier; the loader
/// (whichever caller's runs) first waits for the other callers to join it, then returns
/// `outcome()`. Returns every caller's result and how many loaders ran.
fn hundred_sync_takes<F>(
    cache: &Shared,
    key: u64,
    outcome: F,
) -> (Vec<Result<String, TakeError<DbDown>>>, usize)
where
    F: Fn() -> Result<String, DbDown> + Sync,
{
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(CALLERS);
    let results = thread::scope(|s| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    cache.take(key, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        wait_until("the other callers to join", || {
                            cache.waiting(&key) == CALLERS - 1
                        });
                        outcome()
                    })
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|c| c.join().expect("a caller panicked"))
            .collect()
    });
    (results, loads.into_inner())
}

// ---- sync -----------------------------------------------------------------------------------

#[test]
fn a_hundred_sync_takes_load_once() {
    let cache = cache();
    let (results, loads) = hundred_sync_takes(&cache, 1, || Ok("one".to_string()));
    assert_eq!(loads, 1);
    assert!(
        results.iter().all(|r| matches!(r.as_deref(), Ok("one"))),
        "{results:?}"
    );
    assert_eq!(cache.get(&1).as_deref(), Some("one"));
    assert_eq!(cache.waiting(&1), 0);
    // The loader's caller missed, the 99 who shared its value hit, and so did the get.
    assert_eq!(hits_misses(&cache), (CALLERS as u64, 1));
}

#[test]
fn a_panicking_loader_fails_every_caller_and_the_next_take_loads_again() {
    let cache = cache();
    let (results, loads) = hundred_sync_takes(&cache, 2, || panic!("the loader blew up"));
    assert_eq!(loads, 1);
    for result in &results {
        assert!(
            matches!(result, Err(TakeError::LoaderPanicked)),
            "{result:?}"
        );
    }
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.waiting(&2), 0);
    assert_eq!(hits_misses(&cache), (0, 0), "a failed load counts nothing");
    // Nothing cached, the key is free: the next take loads.
    assert_eq!(
        cache
            .take(2, || Ok::<_, DbDown>("two".to_string()))
            .unwrap(),
        "two"
    );
    assert_eq!(hits_misses(&cache), (0, 1));
    assert_eq!(cache.get(&2).as_deref(), Some("two"));
}

#[test]
fn a_failing_loader_gives_every_caller_its_error_and_caches_nothing() {
    let cache = cache();
    let (results, loads) = hundred_sync_takes(&cache, 3, || Err(DbDown(7)));
    assert_eq!(loads, 1);
    let mut first: Option<&Arc<DbDown>> = None;
    for result in &results {
        let Err(TakeError::Failed(error)) = result else {
            panic!("expected the loader's error, got {result:?}");
        };
        assert_eq!(**error, DbDown(7));
        assert_eq!(error.to_string(), "database 7 is down");
        assert!(
            Arc::ptr_eq(first.get_or_insert(error), error),
            "one error, shared"
        );
    }
    let TakeError::Failed(error) = results[0].as_ref().unwrap_err() else {
        unreachable!()
    };
    let source = TakeError::Failed(error.clone());
    assert!(
        source
            .source()
            .is_some_and(|s| s.to_string() == "database 7 is down")
    );
    assert_eq!(cache.len(), 0);
    assert_eq!(hits_misses(&cache), (0, 0));
    assert_eq!(
        cache
            .take(3, || Ok::<_, DbDown>("three".to_string()))
            .unwrap(),
        "three"
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_loader_may_use_the_cache_for_other_keys() {
    // No shard lock is held while a loader runs, even on a one-shard cache.
    let cache: Cache<u64, u64, _> = manual(secs(60)).0.shards(1).build().unwrap();
    let value = cache
        .take(1, || {
            cache.set(2, 20);
            assert_eq!(cache.get(&2), Some(20));
            let three = cache.take(3, || Ok::<_, DbDown>(30)).unwrap();
            assert_eq!(cache.snapshot().len, 2);
            Ok::<_, DbDown>(three + 1)
        })
        .unwrap();
    assert_eq!(value, 31);
    assert_eq!((cache.get(&1), cache.get(&3)), (Some(31), Some(30)));
}

#[test]
fn a_take_that_missed_just_before_a_load_finished_does_not_load_again() {
    // The double-check inside the load: a caller misses, another load finishes and caches
    // its value, then the caller starts its own load, which finds the value and uses it.
    let cache: Cache<GatedKey, u64, _> = manual(secs(60)).0.build().unwrap();
    let gate = Arc::new(Gate::default());
    let key = || GatedKey {
        id: 1,
        gate: Arc::clone(&gate),
    };
    let loads = AtomicUsize::new(0);
    gate.set(1);
    thread::scope(|s| {
        let late = s.spawn(|| {
            cache.take(key(), || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, DbDown>(2)
            })
        });
        wait_until("the caller to miss", || gate.state() == 2);
        // Meanwhile another caller loads and caches the value.
        assert_eq!(cache.take(key(), || Ok::<_, DbDown>(1)).unwrap(), 1);
        gate.set(3);
        assert_eq!(
            late.join().unwrap().unwrap(),
            1,
            "the cached value, not a second load"
        );
    });
    assert_eq!(loads.load(Ordering::SeqCst), 0);
    // The first load missed; the late caller's double-check found the value: a hit.
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses), (1, 1));
}

#[test]
fn a_take_racing_a_remove_stores_its_value_as_documented() {
    // go-zero issue #3000, left as is: the remove lands during the load, the load's value is
    // stored after it.
    let cache: Cache<u64, u64, _> = manual(secs(60)).0.build().unwrap();
    cache.set(1, 10);
    let value = cache.take(2, || {
        assert_eq!(cache.remove(&2), None);
        Ok::<_, DbDown>(20)
    });
    assert_eq!(value.unwrap(), 20);
    assert_eq!(cache.get(&2), Some(20));
}

#[test]
fn take_accounting() {
    let cache = cache();
    // Cached -> hit.
    cache.set(1, "one".into());
    assert_eq!(
        cache.take(1, || Ok::<_, DbDown>(String::new())).unwrap(),
        "one"
    );
    assert_eq!(hits_misses(&cache), (1, 0));
    // Loaded -> miss.
    assert_eq!(
        cache.take(2, || Ok::<_, DbDown>("two".into())).unwrap(),
        "two"
    );
    assert_eq!(hits_misses(&cache), (1, 1));
    // Failed or panicked -> nothing.
    assert!(cache.take(3, || Err::<String, _>(DbDown(1))).is_err());
    assert!(matches!(
        cache.take(3, || -> Result<String, DbDown> {
            panic!("expected in this test")
        }),
        Err(TakeError::LoaderPanicked)
    ));
    assert_eq!(hits_misses(&cache), (1, 1));
    // Expired -> the take that meets it reloads: a miss, and an expiration.
    let (builder, clock) = manual::<u64, String>(secs(1));
    let cache = builder.build().unwrap();
    cache.set(1, "old".into());
    clock.advance(secs(1));
    assert_eq!(
        cache.take(1, || Ok::<_, DbDown>("new".into())).unwrap(),
        "new"
    );
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.misses, stats.expirations), (0, 1, 1));
}

// ---- async ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_async_takes_load_once() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                let waiting = cache.clone();
                cache
                    .take_async(4, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        wait_until_async("the other callers to join", || {
                            waiting.waiting(&4) == CALLERS - 1
                        })
                        .await;
                        Ok::<_, DbDown>("four".to_string())
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "four");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(hits_misses(&cache), (CALLERS as u64 - 1, 1));
    assert_eq!(cache.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_takes_share_a_failure_and_a_panic() {
    let cache = cache();
    for (key, panics) in [(5u64, false), (6, true)] {
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (cache, loads) = (cache.clone(), Arc::clone(&loads));
                tokio::spawn(async move {
                    let waiting = cache.clone();
                    cache
                        .take_async(key, || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            wait_until_async("the other callers to join", || {
                                waiting.waiting(&key) == CALLERS - 1
                            })
                            .await;
                            if panics {
                                panic!("the async loader blew up");
                            }
                            Err::<String, _>(DbDown(9))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            match task.await.expect("a caller panicked") {
                Err(TakeError::LoaderPanicked) if panics => {}
                Err(TakeError::Failed(e)) if !panics => assert_eq!(*e, DbDown(9)),
                other => panic!("key {key}: {other:?}"),
            }
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.waiting(&key), 0);
        // The next take loads again.
        let again = cache.take_async(key, || async { Ok::<_, DbDown>("again".to_string()) });
        assert_eq!(again.await.unwrap(), "again");
    }
    // A loader that panics before making its future is caught too.
    let made_no_future = cache
        .take_async(7, || -> std::future::Ready<Result<String, DbDown>> {
            panic!("expected in this test")
        })
        .await;
    assert!(matches!(made_no_future, Err(TakeError::LoaderPanicked)));
    assert_eq!(hits_misses(&cache), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_async_callers_share_one_load() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let async_loader = |cache: Shared, loads: Arc<AtomicUsize>| {
        move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            wait_until_async("the other callers to join", || {
                cache.waiting(&8) == CALLERS - 1
            })
            .await;
            Ok::<_, DbDown>("eight".to_string())
        }
    };
    let tasks: Vec<_> = (0..CALLERS / 2)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            let loader = async_loader(cache.clone(), loads);
            tokio::spawn(async move { cache.take_async(8, loader).await })
        })
        .collect();
    let threads: Vec<_> = (0..CALLERS / 2)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            thread::spawn(move || {
                cache.take(8, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    wait_until("the other callers to join", || {
                        cache.waiting(&8) == CALLERS - 1
                    });
                    Ok::<_, DbDown>("eight".to_string())
                })
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "eight");
    }
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap(), "eight");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(hits_misses(&cache), (CALLERS as u64 - 1, 1));
}

// ---- cancellation ---------------------------------------------------------------------------

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn poll_once<T>(future: &mut BoxFuture<'_, T>) -> Poll<T> {
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_cancelled_async_loader_hands_over_to_a_waiting_caller() {
    let cache = cache();
    let loads = AtomicUsize::new(0);
    // The first caller starts loading and never finishes: its loader waits forever.
    let mut first: BoxFuture<'_, _> = Box::pin(cache.take_async(9, || async {
        loads.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<String, DbDown>>().await
    }));
    assert!(poll_once(&mut first).is_pending());
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // Two callers join its load.
    let make = |value: &'static str| {
        let loads = &loads;
        Box::pin(cache.take_async(9, move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, DbDown>(value.to_string())
        })) as BoxFuture<'_, Result<String, TakeError<DbDown>>>
    };
    let mut second = make("second's");
    let mut third = make("third's");
    assert!(poll_once(&mut second).is_pending());
    assert!(poll_once(&mut third).is_pending());
    assert_eq!(cache.waiting(&9), 2);
    // The loading caller is dropped mid-load: one of the waiting callers runs its own
    // loader and the other gets that value.
    drop(first);
    let mut waiting = vec![second, third];
    let mut values = Vec::new();
    for _ in 0..10 {
        waiting.retain_mut(|caller| match poll_once(caller) {
            Poll::Ready(result) => {
                values.push(result.unwrap());
                false
            }
            Poll::Pending => true,
        });
    }
    assert_eq!(values.len(), 2, "both waiting callers finished");
    assert_eq!(values[0], values[1]);
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "the cancelled load and the one that took over"
    );
    assert_eq!(cache.get(&9).as_ref(), Some(&values[0]));
    assert_eq!(cache.waiting(&9), 0);
    // The caller that took over missed; the other hit; the get hit.
    assert_eq!(hits_misses(&cache), (2, 1));
}

#[test]
fn a_cancelled_async_loader_hands_over_to_a_sync_caller() {
    let cache = cache();
    let mut first: BoxFuture<'_, _> =
        Box::pin(cache.take_async(10, std::future::pending::<Result<String, DbDown>>));
    assert!(poll_once(&mut first).is_pending());
    thread::scope(|s| {
        let sync = s.spawn(|| cache.take(10, || Ok::<_, DbDown>("sync's".to_string())));
        wait_until("the sync caller to join", || cache.waiting(&10) == 1);
        drop(first);
        assert_eq!(sync.join().unwrap().unwrap(), "sync's");
    });
    assert_eq!(cache.get(&10).as_deref(), Some("sync's"));
}

#[test]
fn a_cancelled_loader_with_nobody_waiting_frees_the_key() {
    let cache = cache();
    let mut first: BoxFuture<'_, _> =
        Box::pin(cache.take_async(11, std::future::pending::<Result<String, DbDown>>));
    assert!(poll_once(&mut first).is_pending());
    drop(first);
    assert_eq!(
        cache
            .take(11, || Ok::<_, DbDown>("eleven".to_string()))
            .unwrap(),
        "eleven"
    );
    assert_eq!(hits_misses(&cache), (0, 1));
}

#[test]
fn a_cancelled_waiting_caller_just_leaves() {
    let cache = cache();
    let mut leader: BoxFuture<'_, _> = Box::pin(cache.take_async(12, || async {
        tokio::task::yield_now().await; // pending once
        Ok::<_, DbDown>("twelve".to_string())
    }));
    assert!(poll_once(&mut leader).is_pending());
    let mut follower: BoxFuture<'_, _> =
        Box::pin(cache.take_async(12, || async { Ok::<_, DbDown>("never".to_string()) }));
    assert!(poll_once(&mut follower).is_pending());
    assert_eq!(cache.waiting(&12), 1);
    drop(follower);
    assert_eq!(cache.waiting(&12), 0);
    let mut value = poll_once(&mut leader);
    for _ in 0..10 {
        if value.is_ready() {
            break;
        }
        value = poll_once(&mut leader);
    }
    let Poll::Ready(value) = value else {
        panic!("the load never finished")
    };
    assert_eq!(value.unwrap(), "twelve");
    assert_eq!(hits_misses(&cache), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loading_task_cancelled_on_a_runtime_hangs_nobody() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The first caller's loader never finishes; the caller gives up when told to.
    let first = {
        let (cache, started) = (cache.clone(), Arc::clone(&started));
        tokio::spawn(async move {
            let load = cache.take_async(13, || async move {
                started.store(true, Ordering::SeqCst);
                std::future::pending::<Result<String, DbDown>>().await
            });
            tokio::select! {
                r = load => Some(r),
                _ = cancelled => None,
            }
        })
    };
    wait_until_async("the first caller to start loading", || {
        started.load(Ordering::SeqCst)
    })
    .await;
    let followers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .take_async(13, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, DbDown>("thirteen".to_string())
                    })
                    .await
            })
        })
        .collect();
    wait_until_async("the followers to join", || cache.waiting(&13) == CALLERS).await;
    cancel.send(()).unwrap();
    assert!(
        first.await.unwrap().is_none(),
        "the first caller was cancelled"
    );
    let all = async {
        for follower in followers {
            assert_eq!(follower.await.unwrap().unwrap(), "thirteen");
        }
    };
    tokio::time::timeout(HANG, all)
        .await
        .expect("a follower hung");
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "one follower took over, the others shared its load"
    );
    assert_eq!(hits_misses(&cache), (CALLERS as u64 - 1, 1));
}

// ---- everything at once -----------------------------------------------------------------------

#[test]
fn concurrent_mixed_operations_keep_the_cache_consistent() {
    // Threads set, get, remove, take and purge overlapping keys while the clock moves; every
    // value read belongs to its key, the bound holds, and nothing panics or hangs.
    for eviction in [
        keel_collection::cache::Eviction::Lru,
        keel_collection::cache::Eviction::SecondChance,
    ] {
        let (builder, clock) = manual::<u64, u64>(std::time::Duration::from_millis(50));
        let cache = builder
            .capacity(300)
            .shards(2)
            .eviction(eviction)
            .negative_ttl(std::time::Duration::from_millis(5))
            .build()
            .unwrap();
        let value_of = |key: u64, n: u64| key * 1_000_000 + n % 1_000_000;
        thread::scope(|s| {
            for t in 0..4u64 {
                let (cache, clock) = (&cache, &clock);
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(t);
                    for n in 0..20_000u64 {
                        let key = rng.u64(0..1000);
                        match rng.u8(0..10) {
                            0..=2 => {
                                cache.set(key, value_of(key, n));
                            }
                            3 => {
                                cache.set_with_ttl(
                                    key,
                                    value_of(key, n),
                                    std::time::Duration::from_micros(rng.u64(0..100_000)),
                                );
                            }
                            4 => {
                                if let Some(v) = cache.remove(&key) {
                                    assert_eq!(v / 1_000_000, key);
                                }
                            }
                            5 => {
                                let found = cache.take_optional(key, || {
                                    Ok::<_, DbDown>(
                                        (!key.is_multiple_of(3)).then(|| value_of(key, n)),
                                    )
                                });
                                if let Ok(Some(v)) = found {
                                    assert_eq!(v / 1_000_000, key);
                                }
                            }
                            6 if t == 0 => {
                                clock.advance(std::time::Duration::from_micros(rng.u64(0..2_000)));
                            }
                            7 if n % 100 == 0 => cache.purge_expired(),
                            _ => {
                                if let Some(v) = cache.get(&key) {
                                    assert_eq!(v / 1_000_000, key);
                                }
                            }
                        }
                    }
                });
            }
        });
        assert!(cache.len() <= 300, "{eviction:?}: {} entries", cache.len());
        clock.advance(std::time::Duration::from_secs(1));
        cache.purge_expired();
        assert_eq!(cache.len(), 0);
        let stats = cache.snapshot();
        assert!(
            stats.hits > 0 && stats.misses > 0 && stats.evictions > 0 && stats.expirations > 0,
            "{stats:?}"
        );
    }
}
