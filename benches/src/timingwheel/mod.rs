//! The timer queues the `timingwheel` suite drives: keel's `TimingWheel` and tokio-util's
//! `DelayQueue`, plain and keyed by the user's `u64` ([`KeyIndex`]).

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

use crate::limiter::memory::{held_by, installed};

pub const TICK: Duration = Duration::from_millis(1);
pub const FILL: usize = 1_000_000;
pub const EXPIRE_BATCH: u64 = 100_000;
pub const DELAY_MIN_MS: u32 = 30_000;
pub const DELAY_MAX_MS: u32 = 3_600_000;
pub const DRAWS: usize = 1 << 20;
pub const REAL_CLOCK_WAIT: Duration = Duration::from_millis(2);

/// The runtime of the `DelayQueue` and keel-stream rows.
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
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

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
    pub fn draw(rng: &mut Rng) -> Delays {
        Delays {
            ms: (0..DRAWS).map(|_| rng.delay_ms()).collect(),
            at: 0,
        }
    }

    #[inline]
    pub fn next_delay(&mut self) -> Duration {
        let ms = self.ms[self.at];
        self.at = (self.at + 1) & (DRAWS - 1);
        Duration::from_millis(u64::from(ms))
    }
}

/// A queue of `u64` timers as the suite sees it: keel's wheel or the peer's `DelayQueue`.
pub trait TimersUnderTest {
    const NAME: &'static str;
    const CAPACITY_NAME: &'static str;
    type Handle: Copy;

    /// An empty queue (the peers: inside the suite's runtime).
    fn new() -> Self;

    /// An empty queue with room for `timers` reserved up front.
    fn with_capacity(timers: usize) -> Self;

    /// The queue's own account of its heap, where it has one (keel's `allocated_bytes()`).
    fn allocated_bytes(&self) -> Option<usize> {
        None
    }

    /// Sets a timer for `key` (with `key` as its value), due after `delay`.
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
    pub timers: T,
    pub handles: Vec<T::Handle>,
}

impl<T: TimersUnderTest> Filled<T> {
    pub fn fill(timers: T, n: usize, rng: &mut Rng) -> Filled<T> {
        let mut handles = Vec::with_capacity(n);
        let timers = set_all(timers, n, rng, &mut handles);
        Filled { timers, handles }
    }
}

/// Sets timers `0..n` into `timers` and pushes their handles into `handles`.
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

/// [`DRAWS`] moves of random held timers to random delays of 30 s..1 h.
#[derive(Debug)]
pub struct MoveOps<H> {
    ops: Vec<(H, u32)>,
    at: usize,
}

impl<H: Copy> MoveOps<H> {
    pub fn draw(handles: &[H], rng: &mut Rng) -> MoveOps<H> {
        let n = handles.len() as u64;
        let ops = (0..DRAWS)
            .map(|_| (handles[rng.below(n) as usize], rng.delay_ms()))
            .collect();
        MoveOps { ops, at: 0 }
    }

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
    pub set: Duration,
    pub expire: Duration,
}

/// A timer queue that sets a batch of zero-delay timers and then fires them all.
pub trait ExpiryUnderTest {
    const NAME: &'static str;

    /// An empty queue (inside the suite's runtime).
    fn new() -> Self;

    /// Sets `n` timers (keys `0..n`, values the keys, delay zero: due on the next tick).
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

/// keel's wheel with no driver (`Builder::new(1 ms).build()`), on its default `MonotonicClock`.
#[derive(Debug)]
pub struct Keel(TimingWheel<u64, u64>);

impl TimersUnderTest for Keel {
    const NAME: &'static str = "keel";
    const CAPACITY_NAME: &'static str = "keel (.capacity(1M))";
    type Handle = u64;

    fn new() -> Keel {
        Keel(Builder::new(TICK).build().expect("valid settings"))
    }

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

/// keel's manual driver on a `ManualClock`: `set` × n with a zero delay.
pub struct KeelManual {
    wheel: TimingWheel<u64, u64, ManualClock>,
    clock: ManualClock,
}

impl ExpiryUnderTest for KeelManual {
    const NAME: &'static str = "keel (advance, ManualClock)";

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

/// keel's tokio driver (`Builder::new(1 ms).stream()`, on the default `MonotonicClock`).
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

/// `DelayQueue<u64>::new()`: `insert(value, delay)` (which returns its `Key`), `remove(&key)`.
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

    #[inline]
    fn remove(&mut self, key: &Key) -> bool {
        self.0.remove(key);
        true
    }

    #[inline]
    fn reset(&mut self, key: &Key, delay: Duration) -> bool {
        self.0.reset(key, delay);
        true
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The user's key → the `Key` the queue returned for its timer.
pub type KeyIndex = HashMap<u64, Key, ahash::RandomState>;

/// [`DelayQueueTimers`] keyed by the user's `u64`, as keel's wheel is.
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

/// `DelayQueue<u64>::new()` with zero-delay timers: `insert` × n, a 2 ms wait (untimed).
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

/// [`DelayQueueExpiry`] keyed by the user's `u64`.
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

/// One batch of [`DelayQueueExpiry`] (keys `0..n`).
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

/// Builds a queue with `build` and sets `n` timers into it, as [`Filled::fill`] does.
pub fn fill_counted<T: TimersUnderTest>(
    build: impl FnOnce() -> T,
    n: usize,
    rng: &mut Rng,
) -> (Filled<T>, Option<(f64, i64)>) {
    let mut handles = Vec::with_capacity(n);
    let handles_ref = &mut handles;
    let fill = move || set_all(build(), n, rng, handles_ref);
    let (timers, memory) = if installed() {
        let (timers, bytes, blocks) = held_by(fill).expect("the counting allocator");
        (timers, Some((bytes as f64 / n as f64, blocks)))
    } else {
        (fill(), None)
    };
    (Filled { timers, handles }, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_queues_and_not_the_handles() {
        let rt = runtime();
        let _in_runtime = rt.enter();
        let n = 10_000;
        let (keel, m) = fill_counted(Keel::new, n, &mut Rng::new(1));
        let (bytes, _) = m.expect("the unit tests install the counting allocator");
        assert_eq!(keel.handles.len(), n);
        // A 32-byte entry and a 4-byte index slot at least; the 80 KB of handles not counted.
        let account = keel.timers.allocated_bytes().expect("keel's account") as f64 / n as f64;
        assert!(
            (36.0..64.0).contains(&bytes) && bytes >= account,
            "{bytes}, allocated_bytes()/len {account}"
        );
        let (peer, m) = fill_counted(DelayQueueTimers::new, n, &mut Rng::new(1));
        let (peer_bytes, blocks) = m.expect("installed");
        assert_eq!(peer.handles.len(), n);
        // Its slab of ~56-byte entries grown by doubling: 16 384 slots for 10 000 timers.
        assert!((40.0..120.0).contains(&peer_bytes), "{m:?}");
        assert!(blocks < 10, "{m:?}");
        let (keyed, m) = fill_counted(DelayQueueKeyed::new, n, &mut Rng::new(1));
        let (bytes, blocks) = m.expect("installed");
        assert_eq!(keyed.handles.len(), n);
        // The same slab, and a table of 16-byte pairs at most 7/8 full: 16 384 buckets.
        assert!(
            (peer_bytes + 17.0..peer_bytes + 60.0).contains(&bytes),
            "{m:?}, the plain peer {peer_bytes}"
        );
        assert!(blocks < 12, "{m:?}");
    }

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
