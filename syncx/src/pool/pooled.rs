//! [`Pooled`]: an object out of a pool, returned when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::metrics::WaitStart;

/// What a [`Pooled`] needs from its pool, without the pool's factory error and clock types.
pub(super) trait Recycle<T>: Send + Sync {
    /// Takes `value` back as the most recently returned idle object.
    fn put(&self, value: T);
    /// Destroys `value` and frees its slot.
    fn discard(&self, value: T);
    /// Frees the slot of an object taken out for good.
    fn detach(&self);
    /// A `get` that started to wait at `start` stopped waiting (metrics; dispatched here so
    /// that the future of `get_async` needs no clock bound to do it when dropped).
    fn wait_end(&self, start: WaitStart);
}

/// An object borrowed from a [`Pool`](super::Pool): use it through `Deref`/`DerefMut`;
/// dropping it returns it to the pool as the most recently used idle object.
///
/// - [`discard`](Pooled::discard) destroys it instead (a broken connection), freeing its slot;
/// - [`detach`](Pooled::detach) takes it out of the pool for good, freeing its slot.
///
/// It borrows the pool handle it came from (no reference count is touched per get and
/// return: two shared atomic updates fewer, which two threads would otherwise bounce between
/// their caches). [`into_owned`](Pooled::into_owned) turns it into a `Pooled<'static, T>`
/// holding its own handle, to move into a thread or a spawned task and outlive every `Pool`
/// handle (it is then destroyed with the pool's last idle objects).
#[must_use = "the object goes back to the pool as soon as it is dropped"]
#[clippy::has_significant_drop]
pub struct Pooled<'a, T> {
    /// Always `Some` until `discard` / `detach` / `drop` takes it.
    value: Option<T>,
    home: Home<'a, T>,
}

/// The pool an object goes back to.
enum Home<'a, T> {
    Borrowed(&'a Arc<dyn Recycle<T>>),
    Owned(Arc<dyn Recycle<T>>),
}

impl<'a, T> Pooled<'a, T> {
    pub(super) fn new(value: T, pool: &'a Arc<dyn Recycle<T>>) -> Pooled<'a, T> {
        Pooled {
            value: Some(value),
            home: Home::Borrowed(pool),
        }
    }

    #[inline]
    fn pool(&self) -> &dyn Recycle<T> {
        match &self.home {
            Home::Borrowed(pool) => &***pool,
            Home::Owned(pool) => &**pool,
        }
    }

    /// The same object, holding its own handle on the pool: it no longer borrows the `Pool`
    /// it came from, so it can move into a thread or a `'static` task.
    pub fn into_owned(mut self) -> Pooled<'static, T> {
        let home = match &self.home {
            Home::Borrowed(pool) => Arc::clone(pool),
            Home::Owned(pool) => Arc::clone(pool),
        };
        Pooled {
            value: self.value.take(),
            home: Home::Owned(home),
        }
    }

    /// Destroys the object (with the pool's `destroy`, outside its lock) instead of returning
    /// it, and frees its slot for a new one. For an object found broken.
    pub fn discard(mut self) {
        if let Some(value) = self.value.take() {
            self.pool().discard(value);
        }
    }

    /// Takes the object out of the pool for good and frees its slot: the pool will not
    /// destroy it, and may create another in its place.
    pub fn detach(mut self) -> T {
        let value = self
            .value
            .take()
            .expect("a Pooled holds its object until consumed");
        self.pool().detach();
        value
    }
}

impl<T> Deref for Pooled<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("a Pooled holds its object until consumed")
    }
}

impl<T> DerefMut for Pooled<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("a Pooled holds its object until consumed")
    }
}

impl<T> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.pool().put(value);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pooled").field(&self.value).finish()
    }
}
