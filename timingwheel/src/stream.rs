//! The tokio driver: expirations as an async [`Stream`], woken by one `Sleep` per wheel.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use keel_timex::Clock;
use tokio::time::{Instant, Sleep};

use crate::shared::{IDLE, Shared};
use crate::{Builder, ConfigError, TimingWheel};

impl<C: Clock> Builder<C> {
    /// A wheel whose expired timers arrive as `(key, value)` items of an async
    /// [`Stream`] (feature `tokio`; the stream needs a tokio runtime with the timer enabled).
    ///
    /// One tokio `Sleep` serves the whole wheel, reset to the next occupied slot; a timer set
    /// earlier than that wakes the stream's task. The stream ends after
    /// [`stop`](TimingWheel::stop) or when every handle is dropped. Give it a real clock, or
    /// `TokioClock` under tokio's paused time.
    ///
    /// ```
    /// use keel_timingwheel::Builder;
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// use std::time::Duration;
    /// use futures_core::Stream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (wheel, mut expired) = Builder::new(Duration::from_millis(1)).stream()?;
    /// wheel.set("job", 1, Duration::from_millis(3))?;
    /// let next = poll_fn(|cx| Pin::new(&mut expired).poll_next(cx)).await;
    /// assert_eq!(next, Some(("job", 1)));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for invalid settings.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    #[allow(clippy::type_complexity)]
    pub fn stream<K: Hash + Eq, V>(
        self,
    ) -> Result<(TimingWheel<K, V, C>, Expirations<K, V, C>), ConfigError> {
        let shared = self.shared(IDLE)?;
        let stream = Expirations {
            shared: Arc::clone(&shared),
            ready: VecDeque::new(),
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
        };
        Ok((TimingWheel::from_shared(shared), stream))
    }
}

/// The expired timers of a wheel built with [`Builder::stream`], in deadline order.
#[must_use = "streams do nothing unless polled"]
pub struct Expirations<K, V, C: Clock> {
    shared: Arc<Shared<K, V, C>>,
    /// Timers taken out of the wheel, not yet yielded.
    ready: VecDeque<(K, V)>,
    sleep: Pin<Box<Sleep>>,
}

// Nothing is ever pinned inside: the buffered keys and values are moved out by value, and the
// `Sleep` is boxed.
impl<K, V, C: Clock> Unpin for Expirations<K, V, C> {}

impl<K: Hash + Eq, V, C: Clock> Stream for Expirations<K, V, C> {
    type Item = (K, V);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(K, V)>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            if this.shared.stopped.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            // Registered before reading the wheel: a `set` after the read below sees our
            // `wake_at` and finds this waker; one before it is seen by the read.
            {
                let mut waker = this.shared.waker.lock();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
            }
            let now = this.shared.now_tick();
            let next = {
                let mut wheel = this.shared.wheel.lock();
                let ready = &mut this.ready;
                let fired = wheel.poll(now, |k, v| ready.push_back((k, v)));
                this.shared.metrics.fired(fired, wheel.len());
                let next = wheel.next_expiration();
                this.shared
                    .wake_at
                    .store(next.unwrap_or(IDLE), Ordering::Relaxed);
                next
            };
            if !this.ready.is_empty() {
                continue;
            }
            let Some(tick) = next else {
                return Poll::Pending;
            };
            // A deadline too far for an `Instant` is as good as never: wake in 30 years.
            let now = Instant::now();
            let at = now
                .checked_add(this.shared.until_tick(tick))
                .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400));
            if this.sleep.deadline() != at {
                this.sleep.as_mut().reset(at);
            }
            match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<K, V, C: Clock> fmt::Debug for Expirations<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expirations")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}
