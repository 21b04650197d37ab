//! tokio-util's `DelayQueue` as the suite drives it: by its own `Key`s, and keyed by the
//! user's `u64` through a [`KeyIndex`] beside it, as keel's wheel is.

use std::collections::HashMap;
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_util::time::DelayQueue;
use tokio_util::time::delay_queue::Key;

use super::{BatchTimes, ExpiryUnderTest, REAL_CLOCK_WAIT, TimersUnderTest, timed};

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
    super::check_fired(name, n, fired, sum);
    BatchTimes { set, expire }
}
