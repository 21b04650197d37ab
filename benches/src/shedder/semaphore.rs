//! Peer: tokio's `Semaphore`, the floor of admission control.

use tokio::sync::Semaphore;

use super::{CAPACITY, ShedderUnderTest};

/// `tokio::sync::Semaphore::new(CAPACITY)`: `try_acquire()`, then dropping the permit. No
/// statistics, no clock: what a fixed concurrency limit costs.
#[derive(Debug)]
pub struct TokioSemaphore(Semaphore);

impl ShedderUnderTest for TokioSemaphore {
    const NAME: &'static str = "tokio Semaphore try_acquire";

    fn admitting() -> Self {
        TokioSemaphore(Semaphore::new(CAPACITY))
    }

    /// Every permit taken (and forgotten): `try_acquire` fails.
    fn overloaded() -> Self {
        let semaphore = Semaphore::new(CAPACITY);
        semaphore
            .try_acquire_many(CAPACITY as u32)
            .expect("a new semaphore has all its permits")
            .forget();
        TokioSemaphore(semaphore)
    }

    #[inline]
    fn request(&self) -> bool {
        self.0.try_acquire().is_ok()
    }
}
