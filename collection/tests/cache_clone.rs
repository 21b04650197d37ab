//! `Cache` is `Clone`, and clones are handles on one cache: they share its entries, its
//! statistics and its loads in flight, and the cache lives as long as any handle does.
//!
//! No timing is asserted: a loader that must have company waits until [`Cache::waiting`]
//! shows the other caller has joined its load.

mod support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use keel_collection::cache::Cache;
use keel_timex::ManualClock;
use support::{manual, secs, wait_until, wait_until_async};

fn cache() -> Cache<u64, String, ManualClock> {
    manual(secs(60)).0.build().unwrap()
}

fn hits_misses(cache: &Cache<u64, String, ManualClock>) -> (u64, u64) {
    let stats = cache.snapshot();
    (stats.hits, stats.misses)
}

#[test]
fn clones_share_entries_and_statistics() {
    let cache = cache();
    let other = cache.clone();
    other.set(1, "one".to_string());
    assert_eq!(cache.get(&1).as_deref(), Some("one"));
    assert!(cache.contains(&1));
    assert_eq!((cache.len(), other.len()), (1, 1));
    // The hit counted through one handle shows through both.
    assert_eq!(hits_misses(&other), (1, 0));
    assert_eq!(other.snapshot(), cache.snapshot());

    assert_eq!(cache.remove(&1).as_deref(), Some("one"));
    assert_eq!(other.get(&1), None);
    assert_eq!(hits_misses(&cache), (1, 1));

    cache.set(2, "two".to_string());
    other.clear();
    assert!(cache.is_empty());
    assert_eq!(other.snapshot(), cache.snapshot());
    // The same configuration, because it is the same cache.
    assert_eq!(
        (other.ttl(), other.name(), other.shard_count()),
        (cache.ttl(), cache.name(), cache.shard_count())
    );
}

#[test]
fn a_clone_outlives_the_handle_it_was_cloned_from() {
    let cache = cache();
    cache.set(1, "one".to_string());
    let other = cache.clone();
    drop(cache);
    assert_eq!(other.get(&1).as_deref(), Some("one"));
    let stats = other.snapshot();
    assert_eq!((stats.hits, stats.misses, stats.len), (1, 0, 1));
}

#[test]
fn a_clone_moved_into_a_thread_writes_the_same_cache() {
    // No scope and no Arc of our own: the clone is 'static and Send.
    let cache = cache();
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            thread::spawn(move || {
                for k in 0..100 {
                    cache.set(t * 100 + k, format!("{t}:{k}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(cache.len(), 400);
    assert_eq!(cache.get(&399).as_deref(), Some("3:99"));
}

#[test]
fn a_load_started_through_one_clone_is_joined_through_another() {
    let cache = cache();
    let (first, second) = (cache.clone(), cache.clone());
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let leader = s.spawn(|| {
            first.take(1, || {
                loads.fetch_add(1, Ordering::SeqCst);
                barrier.wait(); // the load is in flight
                // Hand-off: the other clone's caller has joined this load.
                wait_until("the other clone's caller to join", || {
                    first.waiting(&1) == 1
                });
                Ok::<_, io::Error>("one".to_string())
            })
        });
        barrier.wait();
        let follower = s.spawn(|| {
            second.take(1, || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, io::Error>("never".to_string())
            })
        });
        assert_eq!(leader.join().unwrap().unwrap(), "one");
        assert_eq!(follower.join().unwrap().unwrap(), "one");
    });
    assert_eq!(loads.into_inner(), 1, "one load for both clones");
    assert_eq!(cache.waiting(&1), 0);
    // The leader missed and the joined caller hit, whichever handle is asked.
    assert_eq!(hits_misses(&cache), (1, 1));
    assert_eq!(hits_misses(&second), (1, 1));
    assert_eq!(first.get(&1).as_deref(), Some("one"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_tasks_each_holding_a_clone_share_one_load() {
    const TASKS: usize = 20;
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                let waiting = cache.clone();
                cache
                    .take_async(7, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        wait_until_async("the other tasks to join", || {
                            waiting.waiting(&7) == TASKS - 1
                        })
                        .await;
                        Ok::<_, io::Error>("seven".to_string())
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "seven");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(hits_misses(&cache), (TASKS as u64 - 1, 1));
    assert_eq!(cache.get(&7).as_deref(), Some("seven"));
}
