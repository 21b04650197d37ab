//! The wheel under concurrency: the thread driver on the real clock, and the manual driver
//! shared between threads.
//!
//! Thread driver: thousands of timers set, moved and removed from two threads while the driver
//! ticks all fire, each once, except those a `remove` took back; a panicking callback does not
//! stop the wheel; callbacks may set and remove timers on their own wheel without deadlock;
//! `stop` and dropping every handle end the driver thread (its callback is dropped) and
//! pending timers never fire. Manual driver: two threads mutating disjoint key ranges while a
//! third advances the clock and calls `advance` lose and duplicate nothing.
//!
//! No assertion depends on how long anything takes: waits poll for a condition with a
//! generous deadline ([`wait_until`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use keel_timex::{ManualClock, MonotonicClock};
use keel_timingwheel::{Builder, TimerError, TimingWheel};

const MS: Duration = Duration::from_millis(1);
const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds or [`PATIENCE`] runs out; returns whether it held.
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + PATIENCE;
    while Instant::now() < give_up {
        if cond() {
            return true;
        }
        thread::sleep(MS);
    }
    cond()
}

/// Sets a flag when dropped: moved into a driver's callback, it tells when the driver thread
/// has exited (the thread owns the callback and drops it on the way out).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A tiny deterministic generator (no `rand` dependency): xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn thread_driver_fires_every_timer_not_removed_exactly_once() {
    const PER_THREAD: u32 = 3000;
    let counts: Arc<Vec<AtomicU8>> =
        Arc::new((0..2 * PER_THREAD).map(|_| AtomicU8::new(0)).collect());
    let fired = Arc::new(AtomicUsize::new(0));
    // A panic in the callback would be caught by the driver: count mismatches instead.
    let mismatched = Arc::new(AtomicUsize::new(0));
    let wheel = {
        let (counts, fired, mismatched) = (
            Arc::clone(&counts),
            Arc::clone(&fired),
            Arc::clone(&mismatched),
        );
        Builder::new(MS)
            .spawn(move |key: u32, value: u32| {
                if key != value {
                    mismatched.fetch_add(1, Ordering::Relaxed);
                }
                counts[key as usize].fetch_add(1, Ordering::Relaxed);
                fired.fetch_add(1, Ordering::Release);
            })
            .unwrap()
    };
    let workers: Vec<_> = (0..2u32)
        .map(|t| {
            let wheel = wheel.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 + u64::from(t));
                let base = t * PER_THREAD;
                let mut removed = Vec::new();
                for i in 0..PER_THREAD {
                    let key = base + i;
                    let delay = MS * (1 + rng.below(20) as u32);
                    assert_eq!(wheel.set(key, key, delay), Ok(None));
                    // Now and then, act on an earlier key: it may have fired already.
                    let other = base + rng.below(u64::from(i) + 1) as u32;
                    match rng.below(10) {
                        0..=2 => {
                            let delay = MS * rng.below(15) as u32;
                            wheel.move_timer(&other, delay).unwrap();
                        }
                        3 => {
                            let taken = wheel.remove(&other).unwrap();
                            removed.extend(taken.map(|_| other));
                        }
                        _ => {}
                    }
                    if i % 500 == 0 {
                        thread::yield_now();
                    }
                }
                removed
            })
        })
        .collect();
    let removed: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let expected = 2 * PER_THREAD as usize - removed.len();
    assert!(
        wait_until(|| fired.load(Ordering::Acquire) >= expected && wheel.is_empty()),
        "fired {} of {expected}, {} pending",
        fired.load(Ordering::Acquire),
        wheel.len()
    );
    // The wheel is empty: nothing more can fire.
    assert_eq!(fired.load(Ordering::Acquire), expected);
    assert_eq!(
        mismatched.load(Ordering::Relaxed),
        0,
        "fired with another key's value"
    );
    for key in &removed {
        assert_eq!(
            counts[*key as usize].load(Ordering::Relaxed),
            0,
            "removed key {key} fired"
        );
    }
    let once = counts
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) == 1)
        .count();
    assert_eq!(once, expected, "some key fired more than once");
    wheel.stop();
}

#[test]
fn a_panicking_callback_does_not_stop_the_wheel() {
    let (tx, rx) = mpsc::channel();
    let wheel = Builder::new(MS)
        .spawn(move |key: u32, _: ()| {
            if key.is_multiple_of(2) {
                panic!("callback panics on purpose for key {key}");
            }
            tx.send(key).unwrap();
        })
        .unwrap();
    // Panicking and healthy timers on the same tick, then later ones.
    for key in 0..4 {
        wheel.set(key, (), 2 * MS).unwrap();
    }
    let mut got: Vec<u32> = (0..2).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    got.sort();
    assert_eq!(got, vec![1, 3]);
    wheel.set(10, (), 5 * MS).unwrap();
    wheel.set(11, (), 5 * MS).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(11));
    wheel.stop();
}

#[test]
fn callbacks_may_set_and_remove_timers_on_their_own_wheel() {
    // The callback reaches its wheel through a cell filled after `spawn` returns.
    let cell: Arc<OnceLock<TimingWheel<u32, u32>>> = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel();
    let wheel = {
        let cell = Arc::clone(&cell);
        Builder::new(MS)
            .spawn(move |key: u32, hop: u32| {
                let wheel = cell.get().expect("set before the first timer");
                // Chain: each firing cancels a decoy and schedules the next hop.
                let decoy = wheel.remove(&(1000 + hop));
                let next = if hop < 50 {
                    wheel.set(key, hop + 1, MS)
                } else {
                    Ok(None)
                };
                tx.send((hop, decoy, next)).unwrap();
            })
            .unwrap()
    };
    assert!(cell.set(wheel.clone()).is_ok());
    for hop in 0..=50 {
        wheel
            .set(1000 + hop, hop, Duration::from_secs(3600))
            .unwrap();
    }
    wheel.set(1, 0, MS).unwrap();
    for hop in 0..=50 {
        // `set` from the callback: the key fired, so it is a fresh timer (`None`).
        assert_eq!(
            rx.recv_timeout(PATIENCE),
            Ok((hop, Ok(Some(hop)), Ok(None)))
        );
    }
    assert!(wait_until(|| wheel.is_empty()), "{} pending", wheel.len());
    // The callback holds a handle, so dropping ours would not stop the wheel: stop it.
    wheel.stop();
}

#[test]
fn stop_ends_the_thread_and_pending_timers_never_fire() {
    let exited = Arc::new(AtomicBool::new(false));
    let fired = Arc::new(AtomicUsize::new(0));
    let wheel = {
        let (flag, fired) = (DropFlag(Arc::clone(&exited)), Arc::clone(&fired));
        Builder::new(MS)
            .spawn(move |_: u32, _: ()| {
                let _keep = &flag;
                fired.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap()
    };
    // An hour: none can come due before `stop`, however long this thread is descheduled.
    for key in 0..100 {
        wheel.set(key, (), Duration::from_secs(3600)).unwrap();
    }
    let other = wheel.clone();
    wheel.stop();
    wheel.stop(); // idempotent
    assert!(other.is_stopped());
    assert_eq!(other.len(), 0, "pending timers kept after stop");
    assert!(
        wait_until(|| exited.load(Ordering::Acquire)),
        "driver thread still running"
    );
    // The only caller of the callback is gone: the pending timers can never fire.
    assert_eq!(fired.load(Ordering::Relaxed), 0);
    assert_eq!(other.set(1, (), MS), Err(TimerError::Closed));
    assert_eq!(other.move_timer(&1, MS), Err(TimerError::Closed));
    assert_eq!(other.remove(&1), Err(TimerError::Closed));
    assert_eq!(other.drain(), Err(TimerError::Closed));
    assert!(other.advance().is_empty());
}

#[test]
fn dropping_every_handle_ends_the_thread() {
    let exited = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let wheel = {
        let flag = DropFlag(Arc::clone(&exited));
        Builder::new(MS)
            .spawn(move |key: u32, _: ()| {
                let _keep = &flag;
                let _ = tx.send(key);
            })
            .unwrap()
    };
    wheel.set(1, (), Duration::from_secs(3600)).unwrap();
    wheel.set(2, (), MS).unwrap();
    // Once timer 2 has fired, the driver goes back to sleep until the far timer: dropping the
    // handles has to wake it.
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(2));
    thread::sleep(5 * MS);
    let clone = wheel.clone();
    drop(wheel);
    // One handle left: still running.
    assert_eq!(clone.set(3, (), Duration::from_secs(3600)), Ok(None));
    assert!(!exited.load(Ordering::Acquire));
    drop(clone);
    assert!(
        wait_until(|| exited.load(Ordering::Acquire)),
        "driver thread outlived every handle"
    );
}

/// Two threads set, move and remove timers on disjoint key ranges of a manual wheel while a
/// third advances a manual clock and calls `advance`; at the end every timer not taken back
/// by `remove` has fired, once, with its own value.
///
/// The clock moves with the workers' progress (1 ms per [`OPS_PER_MS`] of their operations),
/// not as fast as the third thread can spin: were it scheduled alone for a while, it would
/// fire every pending timer before the workers could take one back, and how many `remove`s
/// find their timer would depend on the scheduling.
#[test]
fn manual_driver_shared_between_threads_loses_nothing() {
    const PER_THREAD: u32 = 5000;
    let clock = ManualClock::new();
    let wheel: TimingWheel<u32, u32, ManualClock> = Builder::new(MS)
        .slots_per_level(8)
        .levels(5) // 32768 ticks of span: cascades all the time
        .clock(clock.clone())
        .build()
        .unwrap();
    const OPS_PER_MS: usize = 32;
    let done = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let (wheel, clock) = (wheel.clone(), clock.clone());
        let (done, ops) = (Arc::clone(&done), Arc::clone(&ops));
        thread::spawn(move || {
            let mut fired = Vec::new();
            let mut paid = 0;
            while !done.load(Ordering::Acquire) {
                if ops.load(Ordering::Relaxed) >= paid + OPS_PER_MS {
                    paid += OPS_PER_MS;
                    clock.advance(MS);
                    fired.extend(wheel.advance());
                } else {
                    thread::yield_now();
                }
            }
            fired
        })
    };
    let workers: Vec<_> = (0..2u32)
        .map(|t| {
            let (wheel, ops) = (wheel.clone(), Arc::clone(&ops));
            thread::spawn(move || {
                let mut rng = Rng(0xD1B5_4A32_D192_ED03 + u64::from(t));
                let base = t * PER_THREAD;
                let mut removed = Vec::new();
                for i in 0..PER_THREAD {
                    let key = base + i;
                    let delay = MS * rng.below(200) as u32;
                    assert_eq!(wheel.set(key, key * 3, delay), Ok(None));
                    let other = base + rng.below(u64::from(i) + 1) as u32;
                    match rng.below(8) {
                        0 | 1 => {
                            wheel
                                .move_timer(&other, MS * rng.below(300) as u32)
                                .unwrap();
                        }
                        2 => {
                            if let Some(v) = wheel.remove(&other).unwrap() {
                                assert_eq!(v, other * 3);
                                removed.push(other);
                            }
                        }
                        _ => {}
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
                removed
            })
        })
        .collect();
    let removed: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    done.store(true, Ordering::Release);
    let mut fired = ticker.join().unwrap();
    // Far past every deadline.
    clock.advance(Duration::from_secs(10));
    fired.extend(wheel.advance());
    assert!(wheel.is_empty());

    let mut times: HashMap<u32, u32> = HashMap::new();
    for (key, value) in fired {
        assert_eq!(value, key * 3, "key {key} fired with another's value");
        *times.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fired more than once: {twice:?}");
    let removed: std::collections::HashSet<u32> = removed.into_iter().collect();
    for key in 0..2 * PER_THREAD {
        assert_eq!(
            times.contains_key(&key),
            !removed.contains(&key),
            "key {key} (removed: {})",
            removed.contains(&key)
        );
    }
    assert!(!removed.is_empty(), "the test removed nothing");
}

/// The thread driver keeps time on a real clock: a timer never fires before its delay.
#[test]
fn thread_driver_never_fires_early() {
    let clock = MonotonicClock::new();
    let (tx, rx) = mpsc::channel();
    let started = Arc::new(Mutex::new(HashMap::new()));
    let wheel = {
        let (clock, started) = (clock, Arc::clone(&started));
        Builder::new(MS)
            .clock(clock)
            .spawn(move |key: u32, delay: Duration| {
                let set_at: Instant = started.lock().unwrap()[&key];
                tx.send((key, set_at.elapsed() >= delay)).unwrap();
            })
            .unwrap()
    };
    for key in 0..20 {
        let delay = MS * (key % 7) + Duration::from_micros(300);
        started.lock().unwrap().insert(key, Instant::now());
        wheel.set(key, delay, delay).unwrap();
    }
    for _ in 0..20 {
        let (key, on_time) = rx.recv_timeout(PATIENCE).unwrap();
        assert!(on_time, "key {key} fired early");
    }
    wheel.stop();
}

/// A timer set or moved earlier than the driver's current sleep wakes it: with only far
/// timers pending the thread sleeps for an hour, so these would otherwise not fire in time.
#[test]
fn setting_or_moving_a_timer_earlier_wakes_the_sleeping_driver() {
    let (tx, rx) = mpsc::channel();
    let wheel = Builder::new(MS)
        .spawn(move |key: u32, _: ()| tx.send(key).unwrap())
        .unwrap();
    let hour = Duration::from_secs(3600);
    wheel.set(1, (), hour).unwrap();
    wheel.set(2, (), hour).unwrap();
    // Give the driver a chance to go to sleep until the far slot (not an assertion).
    thread::sleep(5 * MS);
    assert_eq!(wheel.move_timer(&1, 2 * MS), Ok(true));
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(1));
    thread::sleep(5 * MS);
    wheel.set(3, (), 2 * MS).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(3));
    assert!(wheel.contains(&2));
    wheel.stop();
}
