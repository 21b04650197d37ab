//! [`FailurePolicy`]: what a Redis-backed limiter decides while Redis is failing.

/// What a limiter backed by Redis decides while Redis is failing (connection refused, a
/// timeout, a script error, a key of the wrong type).
///
/// The switch happens on the first error; a probe (`PING` every 100 ms) switches back once
/// Redis answers again. Every switch is counted in the snapshot and, with the `tracing`
/// feature, logged. Errors never reach the caller as errors: they become decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Decide with an in-process limiter of the same configuration (go-zero's rescue). Each
    /// instance then enforces the limit on its own, so the cluster-wide rate is multiplied
    /// by the number of instances until Redis is back.
    #[default]
    Rescue,
    /// Allow every request.
    FailOpen,
    /// Refuse every request ([`Denied::Unavailable`](crate::Denied::Unavailable); the
    /// period limiter answers `OverQuota`).
    FailClosed,
}
