//! The one thing that differs between the real-time and the virtual-time run: where time
//! comes from and who runs the tasks. The service and the database model are written once,
//! against [`Env`]; `live.rs` implements it on tokio and real clocks, `sim.rs` on a
//! single-threaded executor that advances a `ManualClock` from one timer to the next.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use keel_timex::Clock;

pub(crate) trait Env: Clone + Send + Sync + 'static {
    /// The clock every keel primitive of the run is built on.
    type Clock: Clock;

    fn clock(&self) -> Self::Clock;

    /// Time since the scenario started.
    fn elapsed(&self) -> Duration;

    /// Completes once `elapsed()` has reached `at`.
    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// Runs `task` concurrently with the caller.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.sleep_until(self.elapsed() + d)
    }
}

/// `fut`'s output, or `None` if `limit` passes first (then `fut` is dropped, which cancels
/// whatever it was waiting for). Written here rather than taken from tokio so that it runs
/// on the simulator's timers too.
pub(crate) async fn within<E: Env, T>(
    env: &E,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let mut fut = pin!(fut);
    let mut timer = pin!(env.sleep(limit));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
