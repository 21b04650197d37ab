//! [`Leases`]: tokens taken from a shared (Redis) bucket in batches and spent locally.
//!
//! A key's lease is one `u64`: when it expires, in milliseconds of the limiter's clock
//! (upper 40 bits, so at the latest [`LAST_EXPIRY_MS`], 34.8 years after the clock's
//! origin: a later expiry is cut to it, and from then on every lease reads as expired and
//! each decision asks Redis, which is slower but never grants a token Redis did not), a
//! "refused" flag and the tokens left (lower 24 bits). Spending is one
//! compare-and-swap, as for an in-memory bucket; only a lease that is empty or expired
//! costs a round trip. A refusal from Redis is remembered until the retry time Redis gave,
//! so a key over its limit costs no round trip either.

use std::time::Duration;

use super::keyed::{Idle, KeyedCells};

const LEFT_BITS: u32 = 23;
const LEFT_MASK: u64 = (1 << LEFT_BITS) - 1;
const REFUSED: u64 = 1 << LEFT_BITS;
/// The largest batch a lease holds.
pub(crate) const MAX_BATCH: u32 = LEFT_MASK as u32;
const MS: u64 = 1_000_000;
/// The latest expiry a lease word holds (2^40 − 1 ms).
const LAST_EXPIRY_MS: u64 = (1 << (u64::BITS - LEFT_BITS - 1)) - 1;

fn pack(expires_ms: u64, left: u64) -> u64 {
    (expires_ms.min(LAST_EXPIRY_MS) << (LEFT_BITS + 1)) | left.min(LEFT_MASK)
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> (LEFT_BITS + 1), v & LEFT_MASK)
}

/// What a key's lease says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spend {
    /// Granted from the lease.
    Spent,
    /// Redis refused this key until then (nanoseconds from now).
    Refused(Duration),
    /// Ask Redis.
    Empty,
}

/// A lease is at rest once it has expired.
struct LeaseIdle;

impl Idle for LeaseIdle {
    fn idle_in(&self, v: u64, now: u64) -> u64 {
        unpack(v).0.saturating_mul(MS).saturating_sub(now)
    }
}

#[derive(Debug)]
pub(crate) struct Leases {
    pub(crate) batch: u32,
    hold_ms: u64,
    cells: KeyedCells,
}

impl Leases {
    pub(crate) fn new(batch: u32, hold_ms: u64, max_keys: Option<usize>) -> Leases {
        Leases {
            batch,
            hold_ms,
            cells: KeyedCells::new(max_keys),
        }
    }

    /// Spends `n` tokens of `key`'s lease if it holds them and has not expired.
    #[inline]
    pub(crate) fn spend(&self, key: &str, n: u32, now: u64) -> Spend {
        let now_ms = now / MS;
        let n = u64::from(n);
        self.cells
            .update(key, now, &LeaseIdle, |v| {
                let (expires_ms, left) = unpack(v);
                if now_ms >= expires_ms {
                    (None, Spend::Empty)
                } else if v & REFUSED != 0 {
                    let wait = (expires_ms * MS).saturating_sub(now);
                    (None, Spend::Refused(Duration::from_nanos(wait)))
                } else if left >= n {
                    (Some(pack(expires_ms, left - n)), Spend::Spent)
                } else {
                    (None, Spend::Empty)
                }
            })
            .unwrap_or(Spend::Empty)
    }

    /// Redis refused `key` for `retry_after`: refuse it locally until then, unless a
    /// concurrent round trip meanwhile brought tokens (those are spent first).
    pub(crate) fn refused(&self, key: &str, retry_after: Duration, now: u64) {
        let now_ms = now / MS;
        let retry_ns = u64::try_from(retry_after.as_nanos()).unwrap_or(u64::MAX);
        let until_ms = now.saturating_add(retry_ns).div_ceil(MS);
        let _ = self.cells.update(key, now, &LeaseIdle, |v| {
            let (expires_ms, left) = unpack(v);
            if now_ms < expires_ms && v & REFUSED == 0 && left > 0 {
                (None, ())
            } else {
                (Some(pack(until_ms, 0) | REFUSED), ())
            }
        });
    }

    /// A batch of `taken` tokens arrived for a request of `n`: keep the rest, with what is
    /// left of an unexpired lease, until `hold` from now.
    pub(crate) fn refill(&self, key: &str, taken: u32, n: u32, now: u64) {
        let now_ms = now / MS;
        let extra = u64::from(taken.saturating_sub(n));
        let hold_ms = self.hold_ms;
        let _ = self.cells.update(key, now, &LeaseIdle, |v| {
            let (expires_ms, left) = unpack(v);
            let kept = if now_ms < expires_ms && v & REFUSED == 0 {
                left
            } else {
                0
            };
            (Some(pack(now_ms.saturating_add(hold_ms), kept + extra)), ())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_spent_until_empty_or_expired() {
        let l = Leases::new(10, 100, None);
        assert_eq!(l.spend("k", 1, 0), Spend::Empty, "no lease yet");
        l.refill("k", 10, 1, 0); // 9 left, expires at 100 ms
        assert!((0..9).all(|_| l.spend("k", 1, 5 * MS) == Spend::Spent));
        assert_eq!(l.spend("k", 1, 5 * MS), Spend::Empty);
        l.refill("k", 5, 1, 10 * MS);
        assert_eq!(l.spend("k", 4, 50 * MS), Spend::Spent);
        l.refill("k", 3, 1, 60 * MS);
        assert_eq!(l.spend("k", 1, 160 * MS), Spend::Empty, "expired at 160 ms");
    }

    #[test]
    fn a_refusal_is_remembered_until_the_retry_time() {
        let l = Leases::new(10, 100, None);
        l.refused("k", Duration::from_millis(30), 0);
        assert_eq!(
            l.spend("k", 1, 10 * MS),
            Spend::Refused(Duration::from_millis(20))
        );
        assert_eq!(l.spend("k", 1, 30 * MS), Spend::Empty);
        l.refill("k", 4, 1, 30 * MS);
        // A refusal racing with a refill does not throw the refill's tokens away.
        l.refused("k", Duration::from_millis(30), 30 * MS);
        assert_eq!(l.spend("k", 3, 31 * MS), Spend::Spent);
    }

    #[test]
    fn long_holds_and_late_clocks_saturate_and_never_grant_too_much() {
        let l = Leases::new(10, u64::MAX, None);
        l.refill("k", 10, 1, 5 * MS); // expires at the last expiry a word holds
        assert_eq!(l.spend("k", 9, 6 * MS), Spend::Spent);
        assert_eq!(
            l.spend("k", 1, 6 * MS),
            Spend::Empty,
            "no more than was taken"
        );
        l.refused("k", Duration::MAX, 7 * MS);
        assert!(matches!(l.spend("k", 1, 8 * MS), Spend::Refused(_)));
        // Past the last expiry every lease reads as expired: ask Redis each time.
        for now in [LAST_EXPIRY_MS * MS, u64::MAX] {
            l.refill("late", 10, 1, now);
            assert_eq!(l.spend("late", 1, now), Spend::Empty);
            l.refused("late", Duration::from_secs(1), now);
            assert_eq!(l.spend("late", 1, now), Spend::Empty);
        }
    }
}
