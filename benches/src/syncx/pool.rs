//! [`PoolUnderTest`]: one `get` and the return of its object, for keel's `Pool` and the
//! hand-written [`MutexVecPool`].

use std::convert::Infallible;
use std::hint::black_box;

use keel_syncx::pool::Pool;
use parking_lot::Mutex;

/// An object pool of `u64` as the suite sees it.
pub trait PoolUnderTest: Sync {
    /// The benchmark id, and the name in the report.
    const NAME: &'static str;

    /// An empty pool of at most `max_size` objects (the peer has no bound), creating `0`.
    fn with_max_size(max_size: usize) -> Self;

    /// Gets an object, reads it, and returns it to the pool (RAII drop): `false` if none
    /// came.
    fn get_put(&self) -> bool;

    /// Objects idle in the pool now.
    fn idle(&self) -> usize;
}

/// keel's `Pool::builder(max_size, || Ok(0u64)).build()` (no max age): `get()`, then
/// dropping the `Pooled`.
#[derive(Debug)]
pub struct KeelPool(pub Pool<u64, Infallible>);

impl PoolUnderTest for KeelPool {
    const NAME: &'static str = "keel";

    fn with_max_size(max_size: usize) -> Self {
        KeelPool(
            Pool::builder(max_size, || Ok(0u64))
                .build()
                .expect("a valid pool"),
        )
    }

    #[inline]
    fn get_put(&self) -> bool {
        match self.0.get() {
            Ok(object) => {
                black_box(*object);
                true
            }
            Err(_) => false,
        }
    }

    fn idle(&self) -> usize {
        self.0.idle()
    }
}

/// The minimal pool, written here as the hand-made peer: idle objects in a
/// `parking_lot::Mutex<Vec<u64>>`; `get` pops one or creates one, dropping the
/// [`MutexPooled`] pushes it back. No bound, no waiting, no max age.
#[derive(Debug)]
pub struct MutexVecPool {
    idle: Mutex<Vec<u64>>,
}

/// An object of [`MutexVecPool`]; dropping it returns it.
#[derive(Debug)]
pub struct MutexPooled<'a> {
    value: u64,
    pool: &'a MutexVecPool,
}

impl MutexVecPool {
    /// The most recently returned object, or a new one (`0`).
    #[inline]
    pub fn get(&self) -> MutexPooled<'_> {
        let value = self.idle.lock().pop().unwrap_or(0);
        MutexPooled { value, pool: self }
    }
}

impl Drop for MutexPooled<'_> {
    #[inline]
    fn drop(&mut self) {
        self.pool.idle.lock().push(self.value);
    }
}

impl PoolUnderTest for MutexVecPool {
    const NAME: &'static str = "mutex vec pool";

    fn with_max_size(_max_size: usize) -> Self {
        MutexVecPool {
            idle: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    fn get_put(&self) -> bool {
        black_box(self.get().value);
        true
    }

    fn idle(&self) -> usize {
        self.idle.lock().len()
    }
}
