//! Closed-loop traffic: a fixed number of clients, each sending its next request as soon
//! as the previous one is answered, until told to stop; every answer is logged, and the
//! test waits on the log (woken by each new answer) instead of on the clock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::client::{self, Reply};

/// Running clients and what they have been answered.
pub(crate) struct Load {
    log: Arc<Mutex<Vec<Reply>>>,
    answers: watch::Receiver<usize>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// `clients` clients (`x-client-id: {name}-{i}`), each requesting `path(n)`, `n` a
    /// sequence number shared by all (so paths can be unique).
    pub(crate) fn start(
        addr: SocketAddr,
        clients: usize,
        name: &str,
        path: impl Fn(u64) -> String + Send + Sync + 'static,
    ) -> Load {
        Load::with_backoff(addr, clients, name, Duration::ZERO, path)
    }

    /// [`start`](Load::start), with clients that pause `backoff` after a 503 before their
    /// next request: a client honouring `Retry-After`, only sooner. Retrying at once, a
    /// crowd of refused clients turns into a flood of requests that loads this machine's
    /// CPU more than the service does.
    pub(crate) fn with_backoff(
        addr: SocketAddr,
        clients: usize,
        name: &str,
        backoff: Duration,
        path: impl Fn(u64) -> String + Send + Sync + 'static,
    ) -> Load {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (count, answers) = watch::channel(0);
        let (count, stop) = (Arc::new(count), Arc::new(AtomicBool::new(false)));
        let (path, sequence) = (Arc::new(path), Arc::new(AtomicU64::new(0)));
        let clients = (0..clients)
            .map(|i| {
                let (log, count, stop) = (Arc::clone(&log), Arc::clone(&count), Arc::clone(&stop));
                let (path, sequence) = (Arc::clone(&path), Arc::clone(&sequence));
                let id = format!("{name}-{i}");
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let n = sequence.fetch_add(1, Ordering::Relaxed);
                        let reply = client::get(addr, &path(n), Some(&id)).await;
                        let refused = reply.status == 503;
                        lock(&log).push(reply);
                        count.send_modify(|c| *c += 1);
                        if refused && !backoff.is_zero() {
                            tokio::time::sleep(backoff).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            log,
            answers,
            stop,
            clients,
        }
    }

    /// Waits until `done` holds for the answers logged so far; `false` if `limit` passes
    /// first.
    pub(crate) async fn until(&mut self, limit: Duration, done: impl Fn(&[Reply]) -> bool) -> bool {
        let log = Arc::clone(&self.log);
        let waited = timeout(limit, self.answers.wait_for(|_| done(&lock(&log)))).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// How many answers are logged (a mark for [`since`](Load::since)).
    pub(crate) fn len(&self) -> usize {
        lock(&self.log).len()
    }

    /// The answers logged after `mark`.
    pub(crate) fn since(&self, mark: usize) -> Vec<Reply> {
        lock(&self.log)[mark..].to_vec()
    }

    /// Stops the clients (each finishes its request in flight) and returns every answer.
    pub(crate) async fn stop(self) -> Vec<Reply> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            // A client's request is bounded by the client's own timeout.
            client.await.expect("a load client panicked");
        }
        std::mem::take(&mut *lock(&self.log))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts `replies` with `status`.
pub(crate) fn count(replies: &[Reply], status: u16) -> usize {
    replies.iter().filter(|r| r.status == status).count()
}

/// The answers' statuses and their counts, for messages.
pub(crate) fn statuses(replies: &[Reply]) -> Vec<(u16, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for r in replies {
        *counts.entry(r.status).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}
