#![cfg(feature = "tokio")]
//! The tokio flavour's error is the first one: `finish` returns the error of the future
//! that failed first (not the first listed), the `_void` forms the first stop, even when
//! later causes follow. Ordering is by oneshot hand-offs or paused time, never real time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_mapreduce::tokio as mr;
use keel_mapreduce::{Cancel, CancelToken, Options, StopError};
use tokio::sync::oneshot;

type Boxed<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send + 'a>>;

#[tokio::test]
async fn finish_returns_the_first_failure_not_the_first_listed() {
    let (tx, rx) = oneshot::channel::<()>();
    let listed_first_failed = AtomicBool::new(false);
    let flag = &listed_first_failed;
    let futs: Vec<Boxed<'_>> = vec![
        // Can only fail after the second one has failed.
        Box::pin(async move {
            let _ = rx.await;
            flag.store(true, Ordering::SeqCst);
            Err("listed first, failed second")
        }),
        Box::pin(async move {
            let _ = tx.send(());
            Err("listed second, failed first")
        }),
    ];
    assert_eq!(mr::finish(futs).await, Err("listed second, failed first"));
    // The later failure was dropped with its future, never returned.
    assert!(!listed_first_failed.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn finish_returns_the_earliest_failure_in_paused_time() {
    let finished = [
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    ];
    let fail_after = |i: usize, ms: u64, error: &'static str| -> Boxed<'_> {
        let finished = &finished;
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            finished[i].store(true, Ordering::SeqCst);
            Err(error)
        })
    };
    let start = tokio::time::Instant::now();
    let r = mr::finish(vec![
        fail_after(0, 3, "at 3 ms"),
        fail_after(1, 1, "at 1 ms"),
        fail_after(2, 2, "at 2 ms"),
    ])
    .await;
    assert_eq!(r, Err("at 1 ms"));
    // Paused time: the clock moved exactly to the first failure, and the others were
    // dropped before theirs.
    assert_eq!(start.elapsed(), Duration::from_millis(1));
    let done: Vec<bool> = finished.iter().map(|f| f.load(Ordering::SeqCst)).collect();
    assert_eq!(done, [false, true, false]);
}

/// Item 0's mapper stops the call, then makes two more stops (another cancel, the
/// caller's token) and hands off to item 1's mapper, which cancels once more if it still
/// runs (spread over tasks it may; in the caller's task it is dropped first).
async fn void_with_later_stops(spawned: bool) -> Result<(), StopError<&'static str>> {
    let token = CancelToken::new();
    let (tx, rx) = oneshot::channel::<()>();
    let hand_off = Arc::new(TakeOnce::new((tx, rx)));
    let t = token.clone();
    let mapper = move |i: u32, _w: mr::Writer<()>, c: Cancel<&'static str>| {
        let (hand_off, t) = (Arc::clone(&hand_off), t.clone());
        async move {
            if i == 0 {
                c.cancel(Some("first"));
                c.cancel(Some("second"));
                t.cancel();
                if let Some(tx) = hand_off.take_sender() {
                    let _ = tx.send(());
                }
            } else if let Some(rx) = hand_off.take_receiver() {
                let _ = rx.await;
                c.cancel(Some("item 1, after the hand-off"));
            }
        }
    };
    let generate = |s: mr::Source<u32>| async move {
        for i in 0..2 {
            if !s.send(i).await {
                return;
            }
        }
    };
    let reducer = |mut out: mr::Outputs<()>, _c| async move { while out.recv().await.is_some() {} };
    let opts = Options::new().workers(2).token(token.clone());
    let r = if spawned {
        mr::map_reduce_void_spawned(generate, mapper, reducer, opts).await
    } else {
        mr::map_reduce_void(generate, mapper, reducer, opts).await
    };
    assert!(token.is_cancelled(), "the later stops were made");
    r
}

#[tokio::test]
async fn map_reduce_void_returns_the_first_stop() {
    assert_eq!(
        void_with_later_stops(false).await,
        Err(StopError::Cancelled("first"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_reduce_void_spawned_returns_the_first_stop() {
    assert_eq!(
        void_with_later_stops(true).await,
        Err(StopError::Cancelled("first"))
    );
}

/// The two ends of a oneshot, each taken once by whichever mapper asks (the mapper is a
/// shared `Fn`).
struct TakeOnce {
    tx: Mutex<Option<oneshot::Sender<()>>>,
    rx: Mutex<Option<oneshot::Receiver<()>>>,
}

impl TakeOnce {
    fn new((tx, rx): (oneshot::Sender<()>, oneshot::Receiver<()>)) -> TakeOnce {
        TakeOnce {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
        }
    }

    fn take_sender(&self) -> Option<oneshot::Sender<()>> {
        self.tx.lock().unwrap().take()
    }

    fn take_receiver(&self) -> Option<oneshot::Receiver<()>> {
        self.rx.lock().unwrap().take()
    }
}
