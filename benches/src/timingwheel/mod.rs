//! The timer queues the `timingwheel` suite drives: keel's `TimingWheel` and tokio-util's
//! `DelayQueue`, plain and keyed by the user's `u64` ([`KeyIndex`]).

mod delay_queue;
mod keel;
pub mod memory;

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

pub use self::delay_queue::{
    DelayQueueExpiry, DelayQueueKeyed, DelayQueueKeyedExpiry, DelayQueueTimers, KeyIndex,
};
pub use self::keel::{Keel, KeelManual, KeelStream};

/// The wheels' tick (keel's resolution; `DelayQueue`'s is fixed at 1 ms).
pub const TICK: Duration = Duration::from_millis(1);

/// Timers held while the "1M" groups run, and when the heap per timer is counted.
pub const FILL: usize = 1_000_000;

/// Timers set and then fired per iteration of the expiry groups.
pub const EXPIRE_BATCH: u64 = 100_000;

/// Shortest delay of the timers held (and of those set and moved among them): 30 s.
pub const DELAY_MIN_MS: u32 = 30_000;
/// Longest delay (exclusive): 1 h.
pub const DELAY_MAX_MS: u32 = 3_600_000;

/// Entries of the pre-drawn tables: 2^20, so a walk over them reads fresh values for about a
/// million operations before it wraps.
pub const DRAWS: usize = 1 << 20;

/// What an expiry batch waits, untimed, between the last set and the firing on the real
/// clock, so that every zero-delay timer is due (1 ms ticks, rounded up): 2 ms.
pub const REAL_CLOCK_WAIT: Duration = Duration::from_millis(2);

/// The runtime of the `DelayQueue` and keel-stream rows: one thread (the bench thread, in
/// `block_on`), timers on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// SplitMix64: a small seeded generator, so every run draws the same delays and keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is below 2^-40 here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A delay in [`DELAY_MIN_MS`]`..`[`DELAY_MAX_MS`], in milliseconds.
    pub fn delay_ms(&mut self) -> u32 {
        DELAY_MIN_MS + self.below(u64::from(DELAY_MAX_MS - DELAY_MIN_MS)) as u32
    }
}

/// [`DRAWS`] random delays of 30 s..1 h, read in a cycle.
#[derive(Debug)]
pub struct Delays {
    ms: Vec<u32>,
    at: usize,
}

impl Delays {
    /// Draws the table.
    pub fn draw(rng: &mut Rng) -> Delays {
        Delays {
            ms: (0..DRAWS).map(|_| rng.delay_ms()).collect(),
            at: 0,
        }
    }

    /// The next delay of the cycle: a load, an increment and a mask.
    #[inline]
    pub fn next_delay(&mut self) -> Duration {
        let ms = self.ms[self.at];
        self.at = (self.at + 1) & (DRAWS - 1);
        Duration::from_millis(u64::from(ms))
    }
}

/// A queue of `u64` timers as the suite sees it: keel's wheel or the peer's `DelayQueue`.
pub trait TimersUnderTest {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;
    /// The benchmark id of [`with_capacity`](Self::with_capacity) in the memory figures.
    const CAPACITY_NAME: &'static str;

    /// What addresses one timer.
    type Handle: Copy;

    /// An empty queue (the peers: inside the suite's runtime).
    fn new() -> Self;

    /// An empty queue with room for `timers` reserved up front.
    fn with_capacity(timers: usize) -> Self;

    /// The queue's own account of its heap, where it has one (keel's `allocated_bytes()`).
    fn allocated_bytes(&self) -> Option<usize> {
        None
    }

    /// Sets a timer for `key` (with `key` as its value), due after `delay`. `key` has no
    /// timer in the queue.
    fn set(&mut self, key: u64, delay: Duration) -> Self::Handle;

    /// Cancels a timer: `true` if it was there.
    fn remove(&mut self, timer: &Self::Handle) -> bool;

    /// Moves a timer to `delay` from now: `true` if it was there.
    fn reset(&mut self, timer: &Self::Handle, delay: Duration) -> bool;

    /// Timers held.
    fn len(&self) -> usize;

    /// Whether no timer is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A queue holding `n` timers (keys `0..n`, delays of 30 s..1 h), with their handles.
#[derive(Debug)]
pub struct Filled<T: TimersUnderTest> {
    /// The queue.
    pub timers: T,
    /// Timer `k`'s handle, at `k`.
    pub handles: Vec<T::Handle>,
}

impl<T: TimersUnderTest> Filled<T> {
    /// Sets `n` timers into `timers`, each with a fresh delay from `rng`.
    pub fn fill(timers: T, n: usize, rng: &mut Rng) -> Filled<T> {
        let mut handles = Vec::with_capacity(n);
        let timers = set_all(timers, n, rng, &mut handles);
        Filled { timers, handles }
    }
}

/// Sets timers `0..n` into `timers` and pushes their handles into `handles`, which has room
/// for them (so that nothing else is allocated while the memory figures count).
pub(crate) fn set_all<T: TimersUnderTest>(
    mut timers: T,
    n: usize,
    rng: &mut Rng,
    handles: &mut Vec<T::Handle>,
) -> T {
    debug_assert!(handles.capacity() - handles.len() >= n);
    for k in 0..n as u64 {
        handles.push(timers.set(k, Duration::from_millis(u64::from(rng.delay_ms()))));
    }
    assert_eq!(timers.len(), n, "{}: timers held after the fill", T::NAME);
    timers
}

/// [`DRAWS`] moves of random held timers to random delays of 30 s..1 h, the handles looked
/// up before timing, read in a cycle.
#[derive(Debug)]
pub struct MoveOps<H> {
    ops: Vec<(H, u32)>,
    at: usize,
}

impl<H: Copy> MoveOps<H> {
    /// Draws the moves over `handles`. Two queues given the same `rng` state move the same
    /// timers (by key) to the same delays.
    pub fn draw(handles: &[H], rng: &mut Rng) -> MoveOps<H> {
        let n = handles.len() as u64;
        let ops = (0..DRAWS)
            .map(|_| (handles[rng.below(n) as usize], rng.delay_ms()))
            .collect();
        MoveOps { ops, at: 0 }
    }

    /// The next move of the cycle.
    #[inline]
    pub fn next_move(&mut self) -> (H, Duration) {
        let (h, ms) = self.ops[self.at];
        self.at = (self.at + 1) & (DRAWS - 1);
        (h, Duration::from_millis(u64::from(ms)))
    }
}

/// How long one expiry batch took: its sets, and the firing of all of them.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchTimes {
    /// Setting [`EXPIRE_BATCH`] timers.
    pub set: Duration,
    /// Firing them all and taking every `(key, value)` out (the wait for them to come due
    /// on a real clock is not included).
    pub expire: Duration,
}

/// A timer queue that sets a batch of zero-delay timers and then fires them all.
pub trait ExpiryUnderTest {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;

    /// An empty queue (inside the suite's runtime).
    fn new() -> Self;

    /// Sets `n` timers (keys `0..n`, values the keys, delay zero: due on the next tick),
    /// waits untimed until all are due, fires them and takes them all out. Times the sets
    /// and the firing apart.
    fn batch(&mut self, rt: &Runtime, n: u64) -> BatchTimes;
}

/// Checks what a batch fired: `n` timers whose values are `0..n`.
pub(crate) fn check_fired(name: &str, n: u64, fired: u64, sum: u64) {
    assert_eq!(fired, n, "{name}: timers fired");
    assert_eq!(sum, n * (n - 1) / 2, "{name}: values fired");
}

/// Times `f`.
#[inline]
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_cycle() {
        let mut rng = Rng::new(7);
        let mut d = Delays::draw(&mut rng);
        let first = d.next_delay();
        for _ in 1..DRAWS {
            let x = d.next_delay();
            assert!(x >= Duration::from_secs(30) && x < Duration::from_secs(3600));
        }
        assert_eq!(d.next_delay(), first);
        let handles: Vec<u64> = (0..10).collect();
        let mut ops = MoveOps::draw(&handles, &mut rng);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[ops.next_move().0 as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    fn set_remove_reset<T: TimersUnderTest>(timers: T) {
        let mut rng = Rng::new(1);
        let mut filled = Filled::fill(timers, 1000, &mut rng);
        let mut ops = MoveOps::draw(&filled.handles, &mut rng);
        for _ in 0..5000 {
            let (h, d) = ops.next_move();
            assert!(filled.timers.reset(&h, d), "{}", T::NAME);
        }
        let mut delays = Delays::draw(&mut rng);
        for k in 1000..3000 {
            let h = filled.timers.set(k, delays.next_delay());
            assert_eq!(filled.timers.len(), 1001);
            assert!(filled.timers.remove(&h), "{}", T::NAME);
        }
        assert_eq!(filled.timers.len(), 1000, "{}", T::NAME);
    }

    #[test]
    fn every_queue_sets_removes_and_moves() {
        let rt = runtime();
        let _in_rt = rt.enter();
        set_remove_reset(Keel::new());
        set_remove_reset(DelayQueueTimers::new());
        set_remove_reset(DelayQueueKeyed::new());
        set_remove_reset(DelayQueueKeyed::with_capacity(1000));
    }

    fn expire_batches<E: ExpiryUnderTest>(mut e: E, rt: &Runtime) {
        for _ in 0..3 {
            let t = e.batch(rt, 10_000);
            assert!(
                t.set > Duration::ZERO && t.expire > Duration::ZERO,
                "{}",
                E::NAME
            );
        }
    }

    #[test]
    fn every_expiry_row_fires_its_whole_batch() {
        let rt = runtime();
        let _in_rt = rt.enter();
        expire_batches(KeelManual::new(), &rt);
        expire_batches(KeelStream::new(), &rt);
        expire_batches(DelayQueueExpiry::new(), &rt);
        expire_batches(DelayQueueKeyedExpiry::new(), &rt);
    }
}
