//! Deletes (and invalidation messages) that failed, retried in the background on a
//! keel-timingwheel with doubling backoff and a bounded number of attempts.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use keel_timingwheel::{Builder as WheelBuilder, TimingWheel};

use crate::error::ConfigError;
use crate::link::Link;
use crate::stats::Counters;

const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What to do again for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// `DEL` the value and the lease, then publish the invalidation.
    Delete,
    /// Publish the invalidation only.
    Publish,
}

pub(crate) struct RetryQueue {
    wheel: TimingWheel<String, (Job, u32)>,
    backoff: Duration,
}

impl RetryQueue {
    pub(crate) fn start(
        link: Arc<Link>,
        attempts: u32,
        backoff: Duration,
    ) -> Result<(RetryQueue, impl Future<Output = ()> + Send + 'static), ConfigError> {
        let (wheel, mut expired) = WheelBuilder::new(Duration::from_millis(10))
            .name(format!("rediscache-retry:{}", link.name))
            .stream::<String, (Job, u32)>()
            .map_err(|e| ConfigError::RetryWheel(e.to_string()))?;
        let again = wheel.clone();
        let task = async move {
            while let Some((key, (job, attempt))) =
                poll_fn(|cx| Pin::new(&mut expired).poll_next(cx)).await
            {
                Counters::add(&link.stats.delete_retries);
                link.metrics.retry();
                let done = match job {
                    Job::Delete => {
                        link.delete(&link.keys(&key)).await.is_ok()
                            && link.publish(&[&key]).await.is_ok()
                    }
                    Job::Publish => link.publish(&[&key]).await.is_ok(),
                };
                if done {
                    if job == Job::Delete {
                        Counters::add(&link.stats.deletes_retried_ok);
                        link.metrics.queued_delete(true);
                    }
                } else if attempt + 1 < attempts {
                    let _ = again.set(key, (job, attempt + 1), delay(backoff, attempt + 1));
                } else if job == Job::Delete {
                    Counters::add(&link.stats.deletes_dropped);
                    link.metrics.queued_delete(false);
                }
            }
        };
        Ok((RetryQueue { wheel, backoff }, task))
    }

    /// Queues `job` for `key` (a queued delete is not downgraded to a publish); whether
    /// it was queued.
    pub(crate) fn queue(&self, key: &str, job: Job) -> bool {
        let job = match (job, self.wheel.remove(key)) {
            (Job::Publish, Ok(Some((Job::Delete, _)))) => Job::Delete,
            _ => job,
        };
        self.wheel
            .set(key.to_owned(), (job, 0), delay(self.backoff, 0))
            .is_ok()
    }
}

/// `backoff` doubled `attempt` times, at most 10 s.
fn delay(backoff: Duration, attempt: u32) -> Duration {
    backoff
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF)
}
