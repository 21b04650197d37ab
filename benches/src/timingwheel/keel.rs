//! keel-timingwheel as the suite drives it.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::Stream;
use keel_timex::{ManualClock, MonotonicClock};
use keel_timingwheel::{Builder, Expirations, TimingWheel};
use tokio::runtime::Runtime;

use super::{BatchTimes, ExpiryUnderTest, REAL_CLOCK_WAIT, TICK, TimersUnderTest, timed};

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
        super::check_fired(Self::NAME, n, fired, sum);
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
        super::check_fired(Self::NAME, n, fired, sum);
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
