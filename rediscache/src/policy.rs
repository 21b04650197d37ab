//! [`FailurePolicy`]: what a local miss does while Redis fails.

use keel_syncx::limit::Limit;

/// What a `take` that missed the local tier does when Redis fails (an error or a timeout
/// on any command of the lookup). Hits in the local tier are served either way, and every
/// Redis error is counted ([`Stats::redis_errors`](crate::Stats::redis_errors)).
///
/// ```
/// use keel_rediscache::FailurePolicy;
/// use keel_syncx::limit::Limit;
///
/// let fail_fast = FailurePolicy::default();
/// assert!(matches!(fail_fast, FailurePolicy::FailFast));
/// // At most 8 loads at a time reach the database while Redis is down.
/// let load = FailurePolicy::Load(Limit::new(8)?);
/// # Ok::<(), keel_syncx::limit::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Return [`TakeError::Redis`](crate::TakeError::Redis) without calling the loader
    /// (the default, go-zero's choice). A Redis outage must not become a database
    /// stampede: every instance's every miss would go to the database at once, with no
    /// lease to coalesce them across instances, exactly when the database is least
    /// protected. Failing fast keeps the outage an outage of the cache.
    #[default]
    FailFast,
    /// Call the loader, but only while a permit of this [`Limit`] is free (it bounds the
    /// loads this instance sends to the database; share one `Limit` between caches to bound
    /// them together). A miss that finds no permit free gets
    /// [`TakeError::Overloaded`](crate::TakeError::Overloaded) at once. Values loaded this
    /// way are kept in the local tier only.
    Load(Limit),
}
