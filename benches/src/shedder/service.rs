//! The tower middlewares (tower's `LoadShed`, little-loadshedder) and how a benchmark loop
//! drives a tower [`Service`] with no runtime: a trivial inner service, one poll with a
//! no-op waker, and a per-thread clone of a shared service.

use std::any::Any;
use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use little_loadshedder::LoadShedResponse;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;

use super::{CAPACITY, ShedderUnderTest};

/// The service behind each tower middleware: answers `()` at once, or (`stalled`) never.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trivial {
    stalled: bool,
}

impl Trivial {
    pub fn ready() -> Self {
        Trivial { stalled: false }
    }

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

/// One shared service, cloned once for each thread that uses it.
pub(crate) struct PerThread<S> {
    id: u64,
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

type Stack = LoadShed<ConcurrencyLimit<Trivial>>;

/// `LoadShed::new(ConcurrencyLimit::new(Trivial, CAPACITY))` from tower 0.5: `poll_ready`.
#[derive(Debug)]
pub struct TowerLoadShed {
    stack: PerThread<Stack>,
    _held: Option<OwnedSemaphorePermit>,
}

impl ShedderUnderTest for TowerLoadShed {
    const NAME: &'static str = "tower LoadShed+ConcurrencyLimit";

    fn admitting() -> Self {
        TowerLoadShed {
            stack: PerThread::new(LoadShed::new(ConcurrencyLimit::new(
                Trivial::ready(),
                CAPACITY,
            ))),
            _held: None,
        }
    }

    fn overloaded() -> Self {
        let semaphore = Arc::new(Semaphore::new(CAPACITY));
        let held = Arc::clone(&semaphore)
            .try_acquire_many_owned(CAPACITY as u32)
            .expect("a new semaphore has all its permits");
        TowerLoadShed {
            stack: PerThread::new(LoadShed::new(ConcurrencyLimit::with_semaphore(
                Trivial::ready(),
                semaphore,
            ))),
            _held: Some(held),
        }
    }

    fn request(&self) -> bool {
        self.stack.with(|stack| {
            let mut cx = noop_context();
            // Always ready: `LoadShed` only notes whether the limit had a permit.
            let ready = stack.poll_ready(&mut cx);
            debug_assert!(matches!(ready, Poll::Ready(Ok(()))));
            let response = pin!(stack.call(()));
            match response.poll(&mut cx) {
                Poll::Ready(Ok(())) => true,
                // `Overloaded`, the only error of this stack.
                Poll::Ready(Err(_)) => false,
                Poll::Pending => unreachable!("the trivial service answers at once"),
            }
        })
    }
}

const EWMA: f64 = 0.01;
const TARGET: Duration = Duration::from_secs(2);
type Response =
    Pin<Box<dyn Future<Output = Result<LoadShedResponse<()>, std::convert::Infallible>> + Send>>;

/// `little_loadshedder::LoadShed::new(Trivial, 0.01, 2 s)` (the crate's example settings).
pub struct LittleLoadShedder {
    stack: PerThread<little_loadshedder::LoadShed<Trivial>>,
    _held: Mutex<Vec<Response>>,
}

impl LittleLoadShedder {
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
            stack: PerThread::new(little_loadshedder::LoadShed::new(
                Trivial::ready(),
                EWMA,
                TARGET,
            )),
            _held: Mutex::new(Vec::new()),
        }
    }

    fn overloaded() -> Self {
        let mut stack = little_loadshedder::LoadShed::new(Trivial::stalled(), EWMA, TARGET);
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
