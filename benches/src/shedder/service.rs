//! Driving a tower [`Service`] from a benchmark loop with no async runtime: a trivial inner
//! service, one poll with a no-op waker, and a per-thread clone of a shared service.

use std::any::Any;
use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use tower::Service;

/// The service behind each tower middleware: answers `()` at once, or (`stalled`) never, to
/// hold a request in flight for the rejection setups.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trivial {
    stalled: bool,
}

impl Trivial {
    /// A service whose every response is ready on the first poll.
    pub fn ready() -> Self {
        Trivial { stalled: false }
    }

    /// A service whose responses never complete.
    pub fn stalled() -> Self {
        Trivial { stalled: true }
    }
}

impl Service<()> for Trivial {
    type Response = ();
    type Error = Infallible;
    type Future = TrivialFuture;

    #[inline]
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, (): ()) -> TrivialFuture {
        TrivialFuture {
            stalled: self.stalled,
        }
    }
}

/// The response of [`Trivial`].
#[derive(Debug)]
pub struct TrivialFuture {
    stalled: bool,
}

impl Future for TrivialFuture {
    type Output = Result<(), Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.stalled {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

/// A context whose waker does nothing: the benchmarks poll again instead of being woken.
pub(crate) fn noop_context() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// One shared service, cloned once for each thread that uses it, as a server gives each
/// connection its own clone of a tower stack (`Service::call` takes `&mut self`).
pub(crate) struct PerThread<S> {
    id: u64,
    /// Locked only to make a thread's clone, so `S` need not be `Sync`.
    prototype: Mutex<S>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CLONES: RefCell<Vec<(u64, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

impl<S: Clone + Send + 'static> PerThread<S> {
    pub(crate) fn new(prototype: S) -> Self {
        PerThread {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            prototype: Mutex::new(prototype),
        }
    }

    /// Runs `f` on this thread's clone, making it on first use.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        CLONES.with(|clones| {
            let mut clones = clones.borrow_mut();
            let at = match clones.iter().position(|(id, _)| *id == self.id) {
                Some(at) => at,
                None => {
                    let clone = self.prototype.lock().expect("never poisoned").clone();
                    clones.push((self.id, Box::new(clone)));
                    clones.len() - 1
                }
            };
            let service = clones[at]
                .1
                .downcast_mut::<S>()
                .expect("an id belongs to one service type");
            f(service)
        })
    }
}

impl<S> fmt::Debug for PerThread<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerThread")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
