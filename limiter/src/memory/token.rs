//! [`MemoryToken`]: token buckets in process memory (one unkeyed, any number keyed).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::keyed::{Full, Idle, KeyedCells, update_cell};
use crate::Denied;
use crate::rate::{Gcra, Step};

/// A bucket's value is its theoretical arrival time: at rest once it has passed.
struct TatIdle;

impl Idle for TatIdle {
    #[inline]
    fn idle_in(&self, tat: u64, now: u64) -> u64 {
        tat.saturating_sub(now)
    }
}

#[derive(Debug)]
pub(crate) struct MemoryToken {
    pub(crate) gcra: Gcra,
    direct: CachePadded<AtomicU64>,
    keyed: KeyedCells,
}

impl MemoryToken {
    pub(crate) fn new(gcra: Gcra, max_keys: Option<usize>) -> MemoryToken {
        MemoryToken {
            gcra,
            direct: CachePadded::new(AtomicU64::new(0)),
            keyed: KeyedCells::new(max_keys),
        }
    }

    /// Takes `n` tokens (1 ≤ n ≤ burst, checked by the caller) at `now` from the unkeyed
    /// bucket, or from `key`'s.
    #[inline]
    pub(crate) fn take(&self, key: Option<&str>, n: u32, now: u64) -> Result<(), Denied> {
        let gcra = self.gcra;
        let decide = |tat: u64| match gcra.step(tat, now, n) {
            Step::Allow(next) => (Some(next), Ok(())),
            Step::Deny(wait) => (
                None,
                Err(Denied::Limited {
                    retry_after: Duration::from_nanos(wait),
                }),
            ),
        };
        match key {
            None => update_cell(&self.direct, decide),
            Some(key) => self
                .keyed
                .update(key, now, &TatIdle, decide)
                .unwrap_or_else(|Full(wait)| {
                    Err(Denied::KeyCapacity {
                        retry_after: Duration::from_nanos(wait),
                    })
                }),
        }
    }

    /// Tokens left (fractional) in the unkeyed bucket, or in `key`'s.
    pub(crate) fn tokens(&self, key: Option<&str>, now: u64) -> f64 {
        let tat = match key {
            None => self.direct.load(std::sync::atomic::Ordering::Acquire),
            Some(k) => self.keyed.get(k).unwrap_or(0),
        };
        self.gcra.tokens(tat, now)
    }

    pub(crate) fn len(&self) -> usize {
        self.keyed.len()
    }

    pub(crate) fn sweep(&self, now: u64) -> usize {
        self.keyed.sweep_all(now, &TatIdle)
    }
}
