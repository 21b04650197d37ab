//! [`Builder`]: a pool's size, factory, max age, destructor and clock.

use std::fmt;
use std::time::Duration;

use keel_timex::{Clock, MonotonicClock};

use super::{ConfigError, Create, Destroy, Pool};

/// Configures a [`Pool`]; start with [`Pool::builder`].
///
/// ```
/// use keel_syncx::pool::Pool;
/// use std::time::Duration;
///
/// let pool = Pool::builder(4, || Ok::<_, std::io::Error>(Vec::<u8>::with_capacity(1024)))
///     .max_age(Duration::from_secs(60))
///     .destroy(|buffer| drop(buffer))
///     .build()?;
/// assert_eq!(pool.max_size(), 4);
///
/// assert!(Pool::builder(0, || Ok::<_, std::io::Error>(())).build().is_err());
/// # Ok::<(), keel_syncx::pool::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until .build() is called"]
pub struct Builder<T, E, C = MonotonicClock> {
    max_size: usize,
    create: Create<T, E>,
    destroy: Option<Destroy<T>>,
    max_age: Option<Duration>,
    name: String,
    clock: C,
}

impl<T, E> Builder<T, E> {
    pub(super) fn new(max_size: usize, create: Create<T, E>) -> Builder<T, E> {
        Builder {
            max_size,
            create,
            destroy: None,
            max_age: None,
            name: "pool".to_owned(),
            clock: MonotonicClock::new(),
        }
    }
}

impl<T, E, C> Builder<T, E, C>
where
    T: Send + 'static,
    E: 'static,
    C: Clock,
{
    /// Destroy idle objects that have not been used for more than `max_age` (since they were
    /// last returned) instead of handing them out (go-zero's `WithMaxAge`). Expiry is lazy:
    /// an expired object is destroyed when a `get` meets it, or when the pool is dropped.
    /// Default: none, idle objects are kept.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// How an object leaves the pool: expired, [discarded](super::Pooled::discard), or idle
    /// when the pool is dropped. It always runs outside the pool's lock. Default: drop it.
    pub fn destroy(mut self, destroy: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.destroy = Some(Box::new(destroy));
        self
    }

    /// The pool's name: with feature `metrics`, its gets are counted as
    /// `keel_pool_gets_total{name}`, and so on (see the [crate docs](crate#metrics)).
    /// Default `"pool"`.
    ///
    /// ```
    /// use keel_syncx::pool::Pool;
    ///
    /// let pool = Pool::builder(8, || Ok::<_, std::io::Error>(Vec::<u8>::new()))
    ///     .name("buffers")
    ///     .build()?;
    /// assert_eq!(pool.name(), "buffers");
    /// # Ok::<(), keel_syncx::pool::ConfigError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The clock that ages idle objects (default: [`MonotonicClock`]). Pass a
    /// [`ManualClock`](keel_timex::ManualClock) to test expiry without sleeping. It is read
    /// only when a max age is set, and, with feature `metrics`, when a `get` starts and stops
    /// waiting (`keel_pool_wait_duration_seconds`; timeouts themselves are real time).
    pub fn clock<C2: Clock>(self, clock: C2) -> Builder<T, E, C2> {
        Builder {
            max_size: self.max_size,
            create: self.create,
            destroy: self.destroy,
            max_age: self.max_age,
            name: self.name,
            clock,
        }
    }

    /// The pool, empty: objects are created on demand.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroMaxSize`] for a max size of 0, [`ConfigError::ZeroMaxAge`] for a
    /// max age of zero.
    pub fn build(self) -> Result<Pool<T, E, C>, ConfigError> {
        if self.max_size == 0 {
            return Err(ConfigError::ZeroMaxSize);
        }
        if self.max_age.is_some_and(|age| age.is_zero()) {
            return Err(ConfigError::ZeroMaxAge);
        }
        Ok(Pool::from_parts(
            self.max_size,
            self.create,
            self.destroy,
            self.max_age,
            self.name,
            self.clock,
        ))
    }
}

impl<T, E, C: fmt::Debug> fmt::Debug for Builder<T, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_size", &self.max_size)
            .field("max_age", &self.max_age)
            .field("name", &self.name)
            .field("destroy", &self.destroy.is_some())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
