//! tokio-util's `DelayQueue` as the suite drives it (its own `Key`s, `u64` values).

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

impl DelayQueueTimers {
    /// The benchmark id of [`DelayQueueTimers::with_capacity`] in the memory figures.
    pub const CAPACITY_NAME: &'static str = "tokio-util DelayQueue (with_capacity(1M))";

    /// `DelayQueue::new()`.
    pub fn new() -> DelayQueueTimers {
        DelayQueueTimers(DelayQueue::new())
    }

    /// `DelayQueue::with_capacity(timers)`.
    pub fn with_capacity(timers: usize) -> DelayQueueTimers {
        DelayQueueTimers(DelayQueue::with_capacity(timers))
    }
}

impl Default for DelayQueueTimers {
    fn default() -> Self {
        DelayQueueTimers::new()
    }
}

impl TimersUnderTest for DelayQueueTimers {
    const NAME: &'static str = "tokio-util DelayQueue";
    type Handle = Key;

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

/// `DelayQueue<u64>::new()` with zero-delay timers: `insert` × n, a 2 ms wait (untimed),
/// then `poll_expired` (its `Stream`) until it has yielded them all, in `block_on` on the
/// suite's runtime (peer-figures.md's "insert 100k zero-timeout + drain via Stream").
#[derive(Debug)]
pub struct DelayQueueExpiry(DelayQueue<u64>);

impl DelayQueueExpiry {
    /// An empty queue; call inside the suite's runtime.
    pub fn new() -> DelayQueueExpiry {
        DelayQueueExpiry(DelayQueue::new())
    }
}

impl Default for DelayQueueExpiry {
    fn default() -> Self {
        DelayQueueExpiry::new()
    }
}

impl ExpiryUnderTest for DelayQueueExpiry {
    const NAME: &'static str = "tokio-util DelayQueue (stream)";

    fn batch(&mut self, rt: &Runtime, n: u64) -> BatchTimes {
        let queue = &mut self.0;
        let ((), set) = timed(|| {
            for k in 0..n {
                queue.insert(k, Duration::ZERO);
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
                                sum += expired.into_inner();
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
        super::check_fired(Self::NAME, n, fired, sum);
        BatchTimes { set, expire }
    }
}
