//! [`Batch`]: [`TASKS`] tokio tasks that call one key at once, on a 2-worker multi-thread
//! runtime, timed from the first spawn until every task has been joined.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::Notify;

use super::{AsyncSingleflight, KEY, KeelRunAsync, LeaderUnderTest, RUNTIME_THREADS, TASKS, VALUE};

/// The 100-task group's runtime: multi-thread, [`RUNTIME_THREADS`] workers, no timer.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .build()
        .expect("a tokio runtime")
}

/// An async coalescer as the 100-task group sees it (empty when `default`).
pub trait CoalescerUnderTest: Send + Sync + Default + 'static {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;
    /// Flights each batch runs: 1 for a coalescer, 0 for the floor.
    const EXECUTIONS_PER_BATCH: u64 = 1;

    /// One task's call: leads or joins the flight for [`KEY`] whose work is `work`, and
    /// resolves to the flight's value.
    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send;
}

impl CoalescerUnderTest for KeelRunAsync {
    const NAME: &'static str = <KeelRunAsync as LeaderUnderTest>::NAME;

    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        KeelRunAsync::call(self, KEY, work)
    }
}

impl CoalescerUnderTest for AsyncSingleflight {
    const NAME: &'static str = <AsyncSingleflight as LeaderUnderTest>::NAME;

    fn call(&self, work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        AsyncSingleflight::call(self, work)
    }
}

/// The floor: the same tasks, spawned and joined, each counting itself and returning
/// [`VALUE`] without a flight.
#[derive(Debug, Default)]
pub struct SpawnOnly;

impl CoalescerUnderTest for SpawnOnly {
    const NAME: &'static str = "spawn only (floor)";
    const EXECUTIONS_PER_BATCH: u64 = 0;

    fn call(&self, _work: impl Future<Output = u64> + Send) -> impl Future<Output = u64> + Send {
        std::future::ready(VALUE)
    }
}

/// What a batch's tasks share: the coalescer, and the work's release.
#[derive(Debug, Default)]
pub struct Batch<C> {
    subject: C,
    /// Tasks of the current batch that have made their first poll.
    arrived: AtomicUsize,
    /// Released by the last task to arrive; the work waits on it.
    release: Notify,
    /// Times the work ran, over every batch.
    executions: AtomicU64,
}

impl<C: CoalescerUnderTest> Batch<C> {
    /// One task of a batch.
    async fn task(self: Arc<Self>) -> u64 {
        let work = async {
            self.release.notified().await;
            self.executions.fetch_add(1, Ordering::Relaxed);
            VALUE
        };
        let mut call = pin!(self.subject.call(work));
        let first = poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == TASKS && C::EXECUTIONS_PER_BATCH > 0 {
            self.release.notify_one();
        }
        match first {
            Poll::Ready(value) => value,
            Poll::Pending => call.await,
        }
    }

    /// Runs `iters` batches one after another inside one task spawned on `rt` (as a request
    /// handler would spawn them) and returns the sum of their times, each batch timed from
    /// its first spawn to its last join.
    pub fn time(self: &Arc<Self>, rt: &Runtime, iters: u64) -> Duration {
        let batch = Arc::clone(self);
        let driver = rt.spawn(async move {
            let ran = batch.executions.load(Ordering::Relaxed);
            let mut handles = Vec::with_capacity(TASKS);
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                batch.arrived.store(0, Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..TASKS {
                    handles.push(tokio::spawn(Arc::clone(&batch).task()));
                }
                let mut sum = 0;
                for handle in handles.drain(..) {
                    sum += handle.await.expect("a batch task does not panic");
                }
                total += start.elapsed();
                assert_eq!(sum, VALUE * TASKS as u64, "{}: values", C::NAME);
            }
            let ran = batch.executions.load(Ordering::Relaxed) - ran;
            assert_eq!(
                ran,
                iters * C::EXECUTIONS_PER_BATCH,
                "{}: flights run in {iters} batches",
                C::NAME
            );
            total
        });
        rt.block_on(driver).expect("the timing task does not panic")
    }
}
