//! [`Permit`] and [`OwnedPermit`]: a taken permit, given back when dropped.

use std::fmt;

use super::Limit;

/// One permit of a [`Limit`], borrowed from it; dropping it gives the permit back.
///
/// There is no `release` method: a permit is returned exactly once, when it is dropped, so
/// go-zero's `ErrLimitReturn` ("someone returned multiple times") cannot happen. To move a
/// permit into a thread or a task, take an [`OwnedPermit`]
/// ([`Limit::try_acquire_owned`], [`Permit::into_owned`]).
///
/// Returning a permit twice does not compile:
///
/// ```compile_fail,E0382
/// # use keel_syncx::limit::Limit;
/// let limit = Limit::new(1).unwrap();
/// let permit = limit.try_acquire().unwrap();
/// drop(permit);
/// drop(permit); // error[E0382]: use of moved value
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
#[clippy::has_significant_drop]
pub struct Permit<'a> {
    limit: &'a Limit,
}

impl<'a> Permit<'a> {
    /// Wraps a permit already taken from `limit`'s count.
    #[inline]
    pub(super) fn new(limit: &'a Limit) -> Permit<'a> {
        Permit { limit }
    }

    /// The limit this permit belongs to.
    pub fn limit(&self) -> &'a Limit {
        self.limit
    }

    /// Turns this permit into one that owns a handle on its limit (one reference-count
    /// increment), so it can outlive the borrow: move it into a thread or a spawned task.
    pub fn into_owned(self) -> OwnedPermit {
        let limit = self.limit.clone();
        std::mem::forget(self); // the permit moves, it is not given back
        OwnedPermit { limit }
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.limit.inner.release();
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("limit", self.limit).finish()
    }
}

/// One permit of a [`Limit`] that holds a handle on the limit: `'static`, for threads and
/// spawned tasks. Dropping it gives the permit back; like [`Permit`], it cannot be returned
/// twice.
#[must_use = "the permit is given back as soon as it is dropped"]
#[clippy::has_significant_drop]
pub struct OwnedPermit {
    limit: Limit,
}

impl OwnedPermit {
    /// Wraps a permit already taken from `limit`'s count.
    #[inline]
    pub(super) fn new(limit: Limit) -> OwnedPermit {
        OwnedPermit { limit }
    }

    /// The limit this permit belongs to.
    pub fn limit(&self) -> &Limit {
        &self.limit
    }
}

impl Drop for OwnedPermit {
    #[inline]
    fn drop(&mut self) {
        self.limit.inner.release();
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("limit", &self.limit)
            .finish()
    }
}
