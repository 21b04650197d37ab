//! [`Guard`] and [`OwnedGuard`]: one admitted request, released exactly once.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use keel_timex::{Clock, CoarseClock};

use crate::shedder::Inner;

/// The start time of a request that is not being timed.
pub(crate) const UNTIMED: u64 = u64::MAX;

/// A handle to a shedder's state that a guard can report through: borrowed or shared.
trait Report {
    fn finish(&self, start: u64, passed: Option<bool>);
    fn name(&self) -> &str;
}

impl<C: Clock> Report for &Inner<C> {
    #[inline]
    fn finish(&self, start: u64, passed: Option<bool>) {
        Inner::finish(self, start, passed);
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl<C: Clock> Report for Arc<Inner<C>> {
    #[inline]
    fn finish(&self, start: u64, passed: Option<bool>) {
        Inner::finish(self, start, passed);
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// What both guards are: an outcome reported exactly once, at the latest on drop.
struct Pending<R: Report> {
    shedder: R,
    start: u64,
    done: bool,
}

impl<R: Report> Pending<R> {
    #[inline]
    fn report(&mut self, passed: Option<bool>) {
        self.done = true;
        self.shedder.finish(self.start, passed);
    }

    fn is_timed(&self) -> bool {
        self.start != UNTIMED
    }
}

impl<R: Report> Drop for Pending<R> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.shedder.finish(self.start, None);
        }
    }
}

impl<R: Report> fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("shedder", &self.shedder.name())
            .field("timed", &self.is_timed())
            .finish()
    }
}

/// An admitted request. Report how it ended with [`pass`](Guard::pass) or
/// [`fail`](Guard::fail).
///
/// Dropping it without either (a panic, a cancelled future, an early return) releases its
/// in-flight slot but records no latency and no pass: a request that never completed says
/// nothing about how fast the service is. (go-zero's promise leaks the in-flight count
/// when neither is called.)
///
/// ```
/// use keel_shedder::{Shedder, cpu::ManualCpu};
///
/// let shedder = Shedder::builder().cpu_source(ManualCpu::new(0)).build()?;
/// let guard = shedder.allow().expect("admitted");
/// assert_eq!(shedder.snapshot().in_flight, 1);
/// drop(guard); // cancelled
/// assert_eq!(shedder.snapshot().in_flight, 0);
/// # Ok::<(), keel_shedder::ConfigError>(())
/// ```
#[must_use = "report the outcome with pass() or fail(); dropping the guard counts as cancelled"]
pub struct Guard<'a, C: Clock = CoarseClock>(Pending<&'a Inner<C>>);

impl<'a, C: Clock> Guard<'a, C> {
    #[inline]
    pub(crate) fn new(inner: &'a Inner<C>, start: u64) -> Guard<'a, C> {
        Guard(Pending {
            shedder: inner,
            start,
            done: false,
        })
    }

    /// The request succeeded: its latency (if it was picked for timing) and a pass are
    /// recorded.
    #[inline]
    pub fn pass(self) {
        // Reported here, so there is nothing left to drop (a borrow and two words): no
        // drop glue to run, and no check of `done` the compiler might keep out of line.
        ManuallyDrop::new(self).0.report(Some(true));
    }

    /// The request failed: only the in-flight count is updated.
    #[inline]
    pub fn fail(self) {
        ManuallyDrop::new(self).0.report(Some(false));
    }

    /// Whether this request's latency is being measured.
    pub fn is_timed(&self) -> bool {
        self.0.is_timed()
    }
}

impl<C: Clock> fmt::Debug for Guard<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A [`Guard`] that owns a handle to its shedder: `'static`, for spawned tasks and
/// futures. From [`Shedder::allow_owned`](crate::Shedder::allow_owned).
#[must_use = "report the outcome with pass() or fail(); dropping the guard counts as cancelled"]
pub struct OwnedGuard<C: Clock = CoarseClock>(Pending<Arc<Inner<C>>>);

impl<C: Clock> OwnedGuard<C> {
    #[inline]
    pub(crate) fn new(inner: Arc<Inner<C>>, start: u64) -> OwnedGuard<C> {
        OwnedGuard(Pending {
            shedder: inner,
            start,
            done: false,
        })
    }

    /// The request succeeded (see [`Guard::pass`]).
    #[inline]
    pub fn pass(mut self) {
        self.0.report(Some(true));
    }

    /// The request failed (see [`Guard::fail`]).
    #[inline]
    pub fn fail(mut self) {
        self.0.report(Some(false));
    }

    /// Whether this request's latency is being measured.
    pub fn is_timed(&self) -> bool {
        self.0.is_timed()
    }
}

impl<C: Clock> fmt::Debug for OwnedGuard<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
