//! [`Mode`]: adaptive, shadow, or an operator's override.

/// How a breaker decides. Change it at run time with
/// [`Breaker::set_mode`](crate::Breaker::set_mode); one relaxed load per call reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Mode {
    /// The SRE adaptive throttle (the default).
    #[default]
    Adaptive = 0,
    /// Dry run: decide and count what would have been rejected
    /// ([`Snapshot::shadow_rejections`](crate::Snapshot::shadow_rejections)), but let every
    /// call through. For rolling a breaker out safely.
    Shadow = 1,
    /// Operator override: reject every call, recording nothing.
    ForcedOpen = 2,
    /// Operator override: let every call through, still recording outcomes.
    ForcedClosed = 3,
    /// A no-op breaker: every call passes and nothing is recorded (go-zero's `NopBreaker`).
    Disabled = 4,
}

impl Mode {
    pub(crate) fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Shadow,
            2 => Mode::ForcedOpen,
            3 => Mode::ForcedClosed,
            4 => Mode::Disabled,
            _ => Mode::Adaptive,
        }
    }
}
