//! Peer: tower's `LoadShed` over its `ConcurrencyLimit`, the shedding a tower stack gets
//! from tower itself.

use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;

use super::service::{PerThread, Trivial, noop_context};
use super::{CAPACITY, ShedderUnderTest};

type Stack = LoadShed<ConcurrencyLimit<Trivial>>;

/// `LoadShed::new(ConcurrencyLimit::new(Trivial, CAPACITY))` from tower 0.5: `poll_ready`,
/// `call` and one poll of the response, on each thread's own clone of the stack.
#[derive(Debug)]
pub struct TowerLoadShed {
    stack: PerThread<Stack>,
    /// The limit's permits, all taken, in the rejecting setup.
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
