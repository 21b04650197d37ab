//! The metrics of a run (feature `metrics`): the handles are registered once, when a run
//! starts (in the entry point, on the caller's thread or task, before any stage is
//! spawned), then only touched. Without the feature the same types are zero-sized and
//! every method is empty, so the call sites carry no `cfg` and compile to nothing.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keel_mapreduce_runs_total` | counter | `name`, `flavour` = `thread` \| `tokio`, `result` = `ok` \| `error` \| `cancelled` \| `panic` |
//! | `keel_mapreduce_items_total` | counter | `name`, `flavour`, `stage` = `generated` \| `mapped` \| `reduced` |
//!
//! Items are counted in plain integers where they pass ([`Tally`]) and added to the
//! counters per batch (at most [`FLUSH_EVERY`] items apart, and when the tally is dropped),
//! so an item costs no atomic operation.

use crate::{MapReduceError, StopError};

/// Which flavour a run is: the `flavour` label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Flavour {
    Thread,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Tokio,
}

/// How a run ended: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Ran to its end (and the reducer of a `map_reduce` wrote exactly one value).
    Ok,
    /// A stage cancelled with an error, the reducer wrote no value or several, or one of
    /// `finish`'s functions failed.
    Error,
    /// Stopped without an error: `cancel(None)`, the caller's token, the deadline, or (tokio)
    /// the call's future dropped before it ended.
    Cancelled,
    /// A stage panicked (the panic is re-raised in the caller).
    Panic,
}

impl Outcome {
    /// The outcome of a run that stopped with `stop`.
    #[inline(always)]
    pub(crate) fn of_stop<E>(stop: &StopError<E>) -> Outcome {
        match stop {
            StopError::Cancelled(_) => Outcome::Error,
            StopError::CancelledWithoutError
            | StopError::DeadlineExceeded
            | StopError::TokenCancelled => Outcome::Cancelled,
        }
    }

    /// The outcome of a `_void` form or `for_each`.
    #[inline(always)]
    pub(crate) fn of_stopped<E>(result: &Result<(), StopError<E>>) -> Outcome {
        match result {
            Ok(()) => Outcome::Ok,
            Err(stop) => Outcome::of_stop(stop),
        }
    }

    /// The outcome of a `map_reduce`.
    #[inline(always)]
    pub(crate) fn of_result<V, E>(result: &Result<V, MapReduceError<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(
                MapReduceError::Cancelled(_)
                | MapReduceError::NoOutput
                | MapReduceError::MultipleOutputs,
            ) => Outcome::Error,
            Err(
                MapReduceError::CancelledWithoutError
                | MapReduceError::DeadlineExceeded
                | MapReduceError::TokenCancelled,
            ) => Outcome::Cancelled,
        }
    }

    /// The outcome of `finish`: its first error, or none.
    #[inline(always)]
    pub(crate) fn of_finish<E>(result: &Result<(), E>) -> Outcome {
        match result {
            Ok(()) => Outcome::Ok,
            Err(_) => Outcome::Error,
        }
    }
}

/// Items a [`Tally`] counts before it adds them to its counter.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const FLUSH_EVERY: u64 = 1024;

#[cfg(feature = "metrics")]
mod on {
    use std::borrow::Cow;
    use std::sync::Arc;

    use metrics::{Counter, SharedString, counter};

    use super::{FLUSH_EVERY, Flavour, Outcome};
    use crate::Options;

    const RUNS: &str = "keel_mapreduce_runs_total";
    const ITEMS: &str = "keel_mapreduce_items_total";

    /// The handles of one run: one per label combination. Dropped before
    /// [`finish`](Run::finish), it counts the run as `cancelled` (a tokio call's future
    /// dropped); panics are finished explicitly before they are re-raised.
    pub(crate) struct Run {
        ok: Counter,
        error: Counter,
        cancelled: Counter,
        panic: Counter,
        generated: Counter,
        mapped: Counter,
        reduced: Counter,
        finished: bool,
    }

    impl Run {
        /// Registers a run's handles with the recorder installed now.
        pub(crate) fn start(opts: &Options, flavour: Flavour) -> Run {
            // Shared, not copied, into each label.
            let name: SharedString = match &opts.name {
                Cow::Borrowed(name) => SharedString::const_str(name),
                Cow::Owned(name) => SharedString::from(Arc::<str>::from(name.as_str())),
            };
            let flavour = match flavour {
                Flavour::Thread => "thread",
                Flavour::Tokio => "tokio",
            };
            let run = |result: &'static str| counter!(RUNS, "name" => name.clone(), "flavour" => flavour, "result" => result);
            let items = |stage: &'static str| counter!(ITEMS, "name" => name.clone(), "flavour" => flavour, "stage" => stage);
            Run {
                ok: run("ok"),
                error: run("error"),
                cancelled: run("cancelled"),
                panic: run("panic"),
                generated: items("generated"),
                mapped: items("mapped"),
                reduced: items("reduced"),
                finished: false,
            }
        }

        /// Counts the run's end (only the first call counts).
        #[inline(always)]
        pub(crate) fn finish(&mut self, outcome: Outcome) {
            if std::mem::replace(&mut self.finished, true) {
                return;
            }
            match outcome {
                Outcome::Ok => &self.ok,
                Outcome::Error => &self.error,
                Outcome::Cancelled => &self.cancelled,
                Outcome::Panic => &self.panic,
            }
            .increment(1);
        }

        /// Items the generator put on the source queue.
        pub(crate) fn generated(&self) -> Tally {
            Tally::new(self.generated.clone())
        }

        /// Items whose mapper returned (completed, for a future).
        pub(crate) fn mapped(&self) -> Tally {
            Tally::new(self.mapped.clone())
        }

        /// Mapper outputs the reducer was handed.
        pub(crate) fn reduced(&self) -> Tally {
            Tally::new(self.reduced.clone())
        }
    }

    impl Drop for Run {
        fn drop(&mut self) {
            self.finish(Outcome::Cancelled);
        }
    }

    /// Items counted locally, added to the counter every [`FLUSH_EVERY`] items, on
    /// [`flush`](Tally::flush) and when dropped.
    pub(crate) struct Tally {
        counter: Counter,
        pending: u64,
    }

    impl Tally {
        fn new(counter: Counter) -> Tally {
            Tally {
                counter,
                pending: 0,
            }
        }

        /// A tally that records nowhere.
        #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
        pub(crate) fn none() -> Tally {
            Tally::new(Counter::noop())
        }

        /// One item.
        #[inline(always)]
        pub(crate) fn one(&mut self) {
            self.pending += 1;
            if self.pending >= FLUSH_EVERY {
                self.flush();
            }
        }

        /// `n` items at once (a batch), added now.
        #[inline(always)]
        pub(crate) fn batch(&self, n: usize) {
            self.counter.increment(n as u64);
        }

        /// Adds what was counted so far to the counter.
        #[inline(always)]
        pub(crate) fn flush(&mut self) {
            if self.pending > 0 {
                self.counter.increment(std::mem::take(&mut self.pending));
            }
        }

        /// Another tally adding to the same counter (for another thread or task).
        pub(crate) fn fork(&self) -> Tally {
            Tally::new(self.counter.clone())
        }
    }

    impl Drop for Tally {
        fn drop(&mut self) {
            self.flush();
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod off {
    use super::{Flavour, Outcome};
    use crate::Options;

    /// Zero-sized: the feature `metrics` is off.
    pub(crate) struct Run;

    impl Run {
        #[inline(always)]
        pub(crate) fn start(_opts: &Options, _flavour: Flavour) -> Run {
            Run
        }

        #[inline(always)]
        pub(crate) fn finish(&mut self, _outcome: Outcome) {}

        #[inline(always)]
        pub(crate) fn generated(&self) -> Tally {
            Tally
        }

        #[inline(always)]
        pub(crate) fn mapped(&self) -> Tally {
            Tally
        }

        #[inline(always)]
        pub(crate) fn reduced(&self) -> Tally {
            Tally
        }
    }

    /// Zero-sized: the feature `metrics` is off.
    pub(crate) struct Tally;

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    impl Tally {
        #[inline(always)]
        pub(crate) fn none() -> Tally {
            Tally
        }

        #[inline(always)]
        pub(crate) fn one(&mut self) {}

        #[inline(always)]
        pub(crate) fn batch(&self, _n: usize) {}

        #[inline(always)]
        pub(crate) fn flush(&mut self) {}

        #[inline(always)]
        pub(crate) fn fork(&self) -> Tally {
            Tally
        }
    }
}

#[cfg(feature = "metrics")]
pub(crate) use on::{Run, Tally};

#[cfg(not(feature = "metrics"))]
pub(crate) use off::{Run, Tally};
