//! The subscription to the invalidation channel: a tokio task with a connection of its
//! own, evicting the keys other instances changed from this instance's local tier.
//!
//! After every (re)subscription the whole local tier is cleared: messages sent while the
//! subscription was down are lost (pub/sub does not queue them). While it is down, the
//! local tier's time to live is the bound on staleness.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_core::Stream;
use keel_collection::cache::Cache;
use keel_timex::Clock;

use crate::error::{RedisError, RedisErrorKind};
use crate::link::{Link, Message};
use crate::stats::Counters;

const RECONNECT_MIN: Duration = Duration::from_millis(20);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

pub(crate) struct Subscriber<V, C> {
    pub(crate) client: redis::Client,
    pub(crate) link: Arc<Link>,
    pub(crate) local: Cache<String, Option<V>, C>,
    pub(crate) epoch: Arc<AtomicU64>,
}

impl<V: Clone + Send + Sync + 'static, C: Clock> Subscriber<V, C> {
    pub(crate) async fn run(self) {
        let mut pause = RECONNECT_MIN;
        loop {
            match self.subscribe().await {
                Ok(pubsub) => {
                    pause = RECONNECT_MIN;
                    // Whatever was sent before now may have been missed.
                    self.local.clear();
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    Counters::add(&self.link.stats.l1_clears);
                    self.link.metrics.local_cleared();
                    self.link.metrics.subscribed();
                    // Release: a test that sees the count sees the clear.
                    self.link
                        .stats
                        .subscriptions
                        .fetch_add(1, Ordering::Release);
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) =
                        poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await
                    {
                        self.apply(message.get_payload_bytes());
                    }
                    // The connection is gone.
                    Counters::add(&self.link.stats.redis_errors);
                    self.link.metrics.redis_error(RedisErrorKind::Connection);
                }
                Err(kind) => {
                    Counters::add(&self.link.stats.redis_errors);
                    self.link.metrics.redis_error(kind);
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RECONNECT_MAX);
        }
    }

    async fn subscribe(&self) -> Result<redis::aio::PubSub, RedisErrorKind> {
        let timeout = self.link.timeout;
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.link.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(e)) => Err(RedisError::from_redis(&e).kind()),
            Err(_) => Err(RedisErrorKind::Timeout),
        }
    }

    fn apply(&self, payload: &[u8]) {
        let Ok(message) = postcard::from_bytes::<Message>(payload) else {
            return;
        };
        if message.origin == self.link.instance {
            Counters::add(&self.link.stats.invalidations_own);
            self.link.metrics.invalidation_received(true);
            return;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for key in &message.keys {
            self.local.remove(key);
        }
        // Before the count, which tests poll.
        self.link.metrics.invalidation_received(false);
        // Release, after the removals: whoever sees the count sees them done.
        self.link
            .stats
            .invalidations_received
            .fetch_add(1, Ordering::Release);
    }
}
