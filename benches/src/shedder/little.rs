//! Peer: `little-loadshedder`, a Little's-law tower middleware from crates.io.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use little_loadshedder::{LoadShed, LoadShedResponse};
use tower::Service;

use super::ShedderUnderTest;
use super::service::{PerThread, Trivial, noop_context};

/// The EWMA weight of a new latency, as in the crate's example server.
const EWMA: f64 = 0.01;
/// The target average latency, as in the crate's example server.
const TARGET: Duration = Duration::from_secs(2);

type Response =
    Pin<Box<dyn Future<Output = Result<LoadShedResponse<()>, std::convert::Infallible>> + Send>>;

/// `little_loadshedder::LoadShed::new(Trivial, 0.01, 2 s)` (the crate's example settings),
/// each thread calling its own clone; a queued request is polled until it is served.
pub struct LittleLoadShedder {
    stack: PerThread<LoadShed<Trivial>>,
    /// The rejecting setup's requests held open: one in the stalled service, one queued.
    _held: Mutex<Vec<Response>>,
}

impl LittleLoadShedder {
    /// One request: `true` if served, `false` if shed. A request that waits in the queue is
    /// polled until it is served if `wait`, else dropped (leaving the queue) and counted as
    /// not shed.
    fn request_waiting(&self, wait: bool) -> bool {
        self.stack.with(|stack| {
            let mut cx = noop_context();
            // Always ready: the queue decides in the response future.
            let _ = stack.poll_ready(&mut cx);
            let mut response = stack.call(());
            loop {
                match response.as_mut().poll(&mut cx) {
                    Poll::Ready(Ok(LoadShedResponse::Inner(()))) => return true,
                    Poll::Ready(Ok(LoadShedResponse::Overload)) => return false,
                    // Queued behind another thread's request.
                    Poll::Pending if wait => std::hint::spin_loop(),
                    Poll::Pending => return true,
                }
            }
        })
    }
}

impl ShedderUnderTest for LittleLoadShedder {
    const NAME: &'static str = "little-loadshedder";

    fn admitting() -> Self {
        LittleLoadShedder {
            stack: PerThread::new(LoadShed::new(Trivial::ready(), EWMA, TARGET)),
            _held: Mutex::new(Vec::new()),
        }
    }

    /// Over a service that never answers: the first request takes the only concurrency
    /// permit and stalls, the second waits in the one-place queue (its size while no request
    /// has completed), so every later one finds the queue full.
    fn overloaded() -> Self {
        let mut stack = LoadShed::new(Trivial::stalled(), EWMA, TARGET);
        let mut cx = noop_context();
        let mut held = Vec::new();
        for _ in 0..2 {
            let _ = stack.poll_ready(&mut cx);
            let mut response = stack.call(());
            assert!(
                response.as_mut().poll(&mut cx).is_pending(),
                "the setup requests are admitted and held"
            );
            held.push(response);
        }
        LittleLoadShedder {
            stack: PerThread::new(stack),
            _held: Mutex::new(held),
        }
    }

    #[inline]
    fn request(&self) -> bool {
        self.request_waiting(true)
    }

    /// A request let through would stall in the service, so it is not waited for.
    #[inline]
    fn reject(&self) -> bool {
        !self.request_waiting(false)
    }
}

// The held responses are boxed futures, which have no Debug implementation.
impl fmt::Debug for LittleLoadShedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LittleLoadShedder")
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}
