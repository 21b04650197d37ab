//! The thread flavour's error is the first one: `finish` returns the error of the function
//! that failed first, `map_reduce_void` the first stop, even when a second error or stop
//! follows while the call is still running.
//!
//! Ordering is by explicit hand-offs only: a barrier puts both jobs on their own worker
//! threads at once, and the second one fails only after a signal that the first failure
//! was taken (never a sleep).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, mpsc};

use keel_mapreduce::{Cancel, CancelToken, Options, StopError, thread};

/// Sends on its channel when dropped.
struct SignalOnDrop(mpsc::Sender<()>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    /// Dropped when the thread exits: tells another thread this one has ended.
    static ON_THREAD_EXIT: RefCell<Option<SignalOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn finish_returns_the_error_of_the_function_that_failed_first() {
    type F<'a> = Box<dyn FnOnce() -> Result<(), &'static str> + Send + 'a>;
    let both_running = Barrier::new(2);
    let (exited_tx, exited_rx) = mpsc::channel();
    let second_failed = AtomicBool::new(false);
    let (both, flag) = (&both_running, &second_failed);
    let first: F<'_> = Box::new(move || {
        both.wait();
        // A worker thread leaves its loop only once the call is stopping, and `finish`
        // stops it right after it recorded this function's error: the thread's exit
        // comes strictly after that record.
        ON_THREAD_EXIT.with(|slot| *slot.borrow_mut() = Some(SignalOnDrop(exited_tx)));
        Err("first")
    });
    let second: F<'_> = Box::new(move || {
        both.wait();
        exited_rx
            .recv()
            .expect("the first function's worker thread signals on exit");
        flag.store(true, Ordering::SeqCst);
        Err("second")
    });

    assert_eq!(thread::finish([first, second]), Err("first"));
    assert!(
        second_failed.load(Ordering::SeqCst),
        "the second function failed too, later"
    );
}

#[test]
fn map_reduce_void_returns_the_first_stop() {
    let both_running = Barrier::new(2);
    let first_done = Barrier::new(2);
    let later_stops_made = AtomicBool::new(false);
    let token = CancelToken::new();
    let r = thread::map_reduce_void(
        |source: &thread::Source<u32>| {
            for i in 0..2 {
                if !source.send(i) {
                    return;
                }
            }
        },
        |i: u32, _: &thread::Writer<()>, cancel: &Cancel<&'static str>| {
            both_running.wait();
            if i == 0 {
                cancel.cancel(Some("first"));
                first_done.wait();
            } else {
                first_done.wait();
                // Both later causes: another stage's cancel, and the caller's token.
                cancel.cancel(Some("second"));
                token.cancel();
                later_stops_made.store(true, Ordering::SeqCst);
            }
        },
        |outputs, _| outputs.for_each(drop),
        Options::new().workers(2).token(token.clone()),
    );
    assert_eq!(r, Err(StopError::Cancelled("first")));
    assert!(later_stops_made.load(Ordering::SeqCst));
    assert!(token.is_cancelled());
}
