//! The wheel's metrics (feature `metrics`): handles registered once, when the wheel is
//! built, then only touched. Without the feature the same type is zero-sized and every
//! method is empty, so the call sites carry no `cfg` and compile to nothing.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keel_timingwheel_timers` | gauge | `name` |
//! | `keel_timingwheel_operations_total` | counter | `name`, `op` = `set` \| `move` \| `remove` \| `fire` |
//!
//! Every method is called under the wheel's lock with the count the wheel keeps anyway
//! (`len`), so the gauge is always set in the order the changes happened.

#[cfg(feature = "metrics")]
mod on {
    use std::borrow::Cow;

    use metrics::{Counter, Gauge, counter, gauge};

    /// The handles of one wheel: one per label combination.
    pub(crate) struct WheelMetrics {
        timers: Gauge,
        set: Counter,
        moved: Counter,
        removed: Counter,
        fired: Counter,
    }

    impl WheelMetrics {
        /// Registers the handles with the recorder installed now.
        pub(crate) fn new(name: Cow<'static, str>) -> WheelMetrics {
            let op = |op: &'static str| {
                counter!(
                    "keel_timingwheel_operations_total",
                    "name" => name.clone(),
                    "op" => op
                )
            };
            let metrics = WheelMetrics {
                timers: gauge!("keel_timingwheel_timers", "name" => name.clone()),
                set: op("set"),
                moved: op("move"),
                removed: op("remove"),
                fired: op("fire"),
            };
            metrics.timers.set(0.0);
            metrics
        }

        /// A `set` was applied (a new timer, or one replaced); the wheel now holds `len`.
        #[inline(always)]
        pub(crate) fn set(&self, len: usize) {
            self.set.increment(1);
            self.timers.set(len as f64);
        }

        /// A `move_timer` call: `found` if it moved a timer.
        #[inline(always)]
        pub(crate) fn moved(&self, found: bool) {
            if found {
                self.moved.increment(1);
            }
        }

        /// A `remove` call: `found` if it took a timer out; the wheel now holds `len`.
        #[inline(always)]
        pub(crate) fn removed(&self, found: bool, len: usize) {
            if found {
                self.removed.increment(1);
                self.timers.set(len as f64);
            }
        }

        /// A poll handed out `fired` timers; the wheel now holds `len`.
        #[inline(always)]
        pub(crate) fn fired(&self, fired: usize, len: usize) {
            if fired > 0 {
                self.fired.increment(fired as u64);
                self.timers.set(len as f64);
            }
        }

        /// Timers went other than by an operation (`drain`, `stop`): the wheel holds `len`.
        #[inline(always)]
        pub(crate) fn timers(&self, len: usize) {
            self.timers.set(len as f64);
        }
    }

    impl Drop for WheelMetrics {
        /// The wheel is gone, and with it every timer it held.
        fn drop(&mut self) {
            self.timers.set(0.0);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod off {
    use std::borrow::Cow;

    /// Zero-sized: the feature `metrics` is off.
    pub(crate) struct WheelMetrics;

    impl WheelMetrics {
        #[inline(always)]
        pub(crate) fn new(_name: Cow<'static, str>) -> WheelMetrics {
            WheelMetrics
        }

        #[inline(always)]
        pub(crate) fn set(&self, _len: usize) {}

        #[inline(always)]
        pub(crate) fn moved(&self, _found: bool) {}

        #[inline(always)]
        pub(crate) fn removed(&self, _found: bool, _len: usize) {}

        #[inline(always)]
        pub(crate) fn fired(&self, _fired: usize, _len: usize) {}

        #[inline(always)]
        pub(crate) fn timers(&self, _len: usize) {}
    }
}

#[cfg(feature = "metrics")]
pub(crate) use on::WheelMetrics;

#[cfg(not(feature = "metrics"))]
pub(crate) use off::WheelMetrics;
