//! The timer queues the `timingwheel` suite drives: keel's `TimingWheel` and tokio-util's
//! `DelayQueue`, plain and keyed by the user's `u64` ([`KeyIndex`]).

pub mod memory;

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::Stream;
use keel_timex::{ManualClock, MonotonicClock};
use keel_timingwheel::{Builder, Expirations, TimingWheel};
use tokio::runtime::Runtime;
use tokio_util::time::DelayQueue;
use tokio_util::time::delay_queue::Key;

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

/// keel's wheel with no driver (`Builder::new(1 ms).build()`), on its default
/// `MonotonicClock`: `set`, `remove`, `move_timer`. Nothing calls `advance` while it is
/// timed, as nothing polls the peer.
#[derive(Debug)]
pub struct Keel(TimingWheel<u64, u64>);

impl TimersUnderTest for Keel {
    const NAME: &'static str = "keel";
    const CAPACITY_NAME: &'static str = "keel (.capacity(1M))";
    type Handle = u64;

    /// The default wheel: 1 ms tick, 64 slots × 6 levels, no reserved capacity.
    fn new() -> Keel {
        Keel(Builder::new(TICK).build().expect("valid settings"))
    }

    /// `Builder::capacity(timers)`.
    fn with_capacity(timers: usize) -> Keel {
        let builder = Builder::new(TICK).capacity(timers);
        Keel(builder.build().expect("valid settings"))
    }

    fn allocated_bytes(&self) -> Option<usize> {
        Some(self.0.allocated_bytes())
    }

    #[inline]
    fn set(&mut self, key: u64, delay: Duration) -> u64 {
        let old = self
            .0
            .set(key, key, delay)
            .expect("an open wheel, in range");
        debug_assert!(old.is_none());
        key
    }

    #[inline]
    fn remove(&mut self, key: &u64) -> bool {
        matches!(self.0.remove(key), Ok(Some(_)))
    }

    #[inline]
    fn reset(&mut self, key: &u64, delay: Duration) -> bool {
        matches!(self.0.move_timer(key, delay), Ok(true))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

crate::opaque_debug!(KeelManual, KeelStream);

/// keel's manual driver on a `ManualClock`: `set` × n with a zero delay, the clock moved one
/// tick (untimed), then one `advance()` returns them all.
pub struct KeelManual {
    wheel: TimingWheel<u64, u64, ManualClock>,
    clock: ManualClock,
}

impl ExpiryUnderTest for KeelManual {
    const NAME: &'static str = "keel (advance, ManualClock)";

    /// A default wheel (1 ms tick) on a fresh `ManualClock`.
    fn new() -> KeelManual {
        let clock = ManualClock::new();
        let wheel = Builder::new(TICK).clock(clock.clone()).build();
        let wheel = wheel.expect("valid settings");
        KeelManual { wheel, clock }
    }

    fn batch(&mut self, _rt: &Runtime, n: u64) -> BatchTimes {
        let wheel = &self.wheel;
        let ((), set) = timed(|| {
            for k in 0..n {
                wheel.set(k, k, Duration::ZERO).expect("an open wheel");
            }
        });
        self.clock.advance(TICK);
        let ((fired, sum), expire) = timed(|| {
            let mut sum = 0u64;
            let mut fired = 0u64;
            for (_, v) in wheel.advance() {
                sum += v;
                fired += 1;
            }
            (fired, sum)
        });
        check_fired(Self::NAME, n, fired, sum);
        BatchTimes { set, expire }
    }
}

/// keel's tokio driver (`Builder::new(1 ms).stream()`, on the default `MonotonicClock`):
/// `set` × n with a zero delay, a 2 ms wait (untimed), then the `Expirations` stream polled
/// until it has yielded them all, in `block_on` on the suite's runtime.
pub struct KeelStream {
    wheel: TimingWheel<u64, u64>,
    stream: Expirations<u64, u64, MonotonicClock>,
}

impl ExpiryUnderTest for KeelStream {
    const NAME: &'static str = "keel (tokio stream)";

    fn new() -> KeelStream {
        let (wheel, stream) = Builder::new(TICK).stream().expect("valid settings");
        KeelStream { wheel, stream }
    }

    fn batch(&mut self, rt: &Runtime, n: u64) -> BatchTimes {
        let wheel = &self.wheel;
        let ((), set) = timed(|| {
            for k in 0..n {
                wheel.set(k, k, Duration::ZERO).expect("an open wheel");
            }
        });
        std::thread::sleep(REAL_CLOCK_WAIT);
        let stream = &mut self.stream;
        let ((fired, sum), expire) = timed(|| rt.block_on(take(stream, n)));
        check_fired(Self::NAME, n, fired, sum);
        BatchTimes { set, expire }
    }
}

/// Polls `stream` until it has yielded `n` items: how many, and the sum of their values.
async fn take<S>(stream: &mut S, n: u64) -> (u64, u64)
where
    S: Stream<Item = (u64, u64)> + Unpin,
{
    let (mut fired, mut sum) = (0u64, 0u64);
    poll_fn(|cx| {
        while fired < n {
            match Pin::new(&mut *stream).poll_next(cx) {
                Poll::Ready(Some((_, v))) => {
                    sum += v;
                    fired += 1;
                }
                Poll::Ready(None) => panic!("the expirations stream ended"),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    })
    .await;
    (fired, sum)
}

/// `DelayQueue<u64>::new()`: `insert(value, delay)` (which returns its `Key`),
/// `remove(&key)`, `reset(&key, delay)`. Never polled while it is timed. Every call needs a
/// tokio runtime (its one `Sleep`): use it inside the suite's.
#[derive(Debug)]
pub struct DelayQueueTimers(DelayQueue<u64>);

impl TimersUnderTest for DelayQueueTimers {
    const NAME: &'static str = "tokio-util DelayQueue";
    const CAPACITY_NAME: &'static str = "tokio-util DelayQueue (with_capacity(1M))";
    type Handle = Key;

    fn new() -> DelayQueueTimers {
        DelayQueueTimers(DelayQueue::new())
    }

    fn with_capacity(timers: usize) -> DelayQueueTimers {
        DelayQueueTimers(DelayQueue::with_capacity(timers))
    }

    #[inline]
    fn set(&mut self, key: u64, delay: Duration) -> Key {
        self.0.insert(key, delay)
    }

    /// `remove` panics on a key it does not hold, so a `false` never comes back.
    #[inline]
    fn remove(&mut self, key: &Key) -> bool {
        self.0.remove(key);
        true
    }

    /// As for [`remove`](Self::remove).
    #[inline]
    fn reset(&mut self, key: &Key, delay: Duration) -> bool {
        self.0.reset(key, delay);
        true
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The user's key → the `Key` the queue returned for its timer: std's `HashMap` with ahash's
/// `RandomState` (a faster hasher than the default SipHash).
pub type KeyIndex = HashMap<u64, Key, ahash::RandomState>;

/// [`DelayQueueTimers`] keyed by the user's `u64`, as keel's wheel is: every `set` also
/// inserts `key → Key` into a [`KeyIndex`], every `remove` takes the `Key` out of it and
/// every `reset` looks it up. Its handle is the user's key.
#[derive(Debug)]
pub struct DelayQueueKeyed {
    queue: DelayQueueTimers,
    keys: KeyIndex,
}

impl TimersUnderTest for DelayQueueKeyed {
    const NAME: &'static str = "tokio-util DelayQueue + HashMap<u64, Key> (ahash)";
    const CAPACITY_NAME: &'static str =
        "tokio-util DelayQueue + HashMap<u64, Key> (ahash; both with_capacity(1M))";
    type Handle = u64;

    fn new() -> DelayQueueKeyed {
        DelayQueueKeyed::with_capacity(0)
    }

    /// Room for `timers` in the queue and in the index.
    fn with_capacity(timers: usize) -> DelayQueueKeyed {
        DelayQueueKeyed {
            queue: DelayQueueTimers::with_capacity(timers),
            keys: KeyIndex::with_capacity_and_hasher(timers, ahash::RandomState::new()),
        }
    }

    #[inline]
    fn set(&mut self, key: u64, delay: Duration) -> u64 {
        let timer = self.queue.set(key, delay);
        self.keys.inserted(key, timer);
        key
    }

    #[inline]
    fn remove(&mut self, key: &u64) -> bool {
        self.keys
            .remove(key)
            .is_some_and(|timer| self.queue.remove(&timer))
    }

    #[inline]
    fn reset(&mut self, key: &u64, delay: Duration) -> bool {
        self.keys
            .get(key)
            .is_some_and(|timer| self.queue.reset(timer, delay))
    }

    fn len(&self) -> usize {
        debug_assert_eq!(self.keys.len(), self.queue.len());
        self.queue.len()
    }
}

/// What is kept beside a `DelayQueue`: nothing (`()`), or a [`KeyIndex`].
trait Index {
    /// The timer of `key` was inserted as `timer`.
    fn inserted(&mut self, key: u64, timer: Key);

    /// The timer of `key` fired.
    fn expired(&mut self, key: u64);
}

impl Index for () {
    #[inline]
    fn inserted(&mut self, _key: u64, _timer: Key) {}

    #[inline]
    fn expired(&mut self, _key: u64) {}
}

impl Index for KeyIndex {
    #[inline]
    fn inserted(&mut self, key: u64, timer: Key) {
        let old = self.insert(key, timer);
        debug_assert!(old.is_none());
    }

    #[inline]
    fn expired(&mut self, key: u64) {
        let timer = self.remove(&key);
        debug_assert!(timer.is_some());
    }
}

/// `DelayQueue<u64>::new()` with zero-delay timers: `insert` × n, a 2 ms wait (untimed),
/// then `poll_expired` (its `Stream`) until it has yielded them all, in `block_on` on the
/// suite's runtime.
#[derive(Debug)]
pub struct DelayQueueExpiry(DelayQueue<u64>);

impl ExpiryUnderTest for DelayQueueExpiry {
    const NAME: &'static str = "tokio-util DelayQueue (stream)";

    fn new() -> DelayQueueExpiry {
        DelayQueueExpiry(DelayQueue::new())
    }

    fn batch(&mut self, rt: &Runtime, n: u64) -> BatchTimes {
        batch(Self::NAME, &mut self.0, &mut (), rt, n)
    }
}

/// [`DelayQueueExpiry`] keyed by the user's `u64`: each `insert` also inserts `key → Key`
/// into a [`KeyIndex`], and each timer the stream yields is removed from it (by its value,
/// the key).
#[derive(Debug)]
pub struct DelayQueueKeyedExpiry {
    queue: DelayQueue<u64>,
    keys: KeyIndex,
}

impl ExpiryUnderTest for DelayQueueKeyedExpiry {
    const NAME: &'static str = "tokio-util DelayQueue + HashMap<u64, Key> (ahash, stream)";

    fn new() -> DelayQueueKeyedExpiry {
        let (queue, keys) = (DelayQueue::new(), KeyIndex::default());
        DelayQueueKeyedExpiry { queue, keys }
    }

    fn batch(&mut self, rt: &Runtime, n: u64) -> BatchTimes {
        let t = batch(Self::NAME, &mut self.queue, &mut self.keys, rt, n);
        assert!(
            self.keys.is_empty(),
            "{}: keys left after the batch",
            Self::NAME
        );
        t
    }
}

/// One batch of [`DelayQueueExpiry`] (keys `0..n`), telling `index` of every insert and
/// every timer fired.
fn batch(
    name: &str,
    queue: &mut DelayQueue<u64>,
    index: &mut impl Index,
    rt: &Runtime,
    n: u64,
) -> BatchTimes {
    let ((), set) = timed(|| {
        for k in 0..n {
            index.inserted(k, queue.insert(k, Duration::ZERO));
        }
    });
    std::thread::sleep(REAL_CLOCK_WAIT);
    let ((fired, sum), expire) = timed(|| {
        rt.block_on(async {
            let (mut fired, mut sum) = (0u64, 0u64);
            poll_fn(|cx| {
                while fired < n {
                    match queue.poll_expired(cx) {
                        Poll::Ready(Some(expired)) => {
                            let key = expired.into_inner();
                            index.expired(key);
                            sum += key;
                            fired += 1;
                        }
                        Poll::Ready(None) => panic!("the queue emptied early"),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Poll::Ready(())
            })
            .await;
            (fired, sum)
        })
    });
    check_fired(name, n, fired, sum);
    BatchTimes { set, expire }
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
