//! The window's table of stripes: one per writing thread, allocated on its first add, plus a
//! locked fallback stripe.
//!
//! Thread indices below [`DIRECT`] (the first threads to add anywhere in the process: in a
//! typical service, the runtime's workers) map straight to an entry of a small inline array.
//! Larger indices go through `LEVELS` lazily allocated levels: level `k` has room for `2^k`
//! indices. Every entry is boxed on first use, so a window used by a handful of threads
//! costs a handful of stripes, whatever the process's other threads do. The add path is one
//! `OnceLock` load for a direct index, two otherwise.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::Bucket;
use crate::stripe::Stripe;
use crate::thread_id;

/// Thread indices with an inline entry.
const DIRECT: usize = 8;
/// Indices from `DIRECT` up to `DIRECT + 2^LEVELS - 2` get their own stripe through the
/// levels; any beyond share the fallback.
const LEVELS: usize = 16;
/// Stripe references gathered on the stack for a reduce before spilling to a `Vec`.
const INLINE_STRIPES: usize = 16;

type Entry<B> = OnceLock<Box<Stripe<B>>>;

pub(crate) struct Stripes<B> {
    size: usize,
    direct: [Entry<B>; DIRECT],
    levels: [OnceLock<Box<[Entry<B>]>>; LEVELS],
    /// Shared by threads with no index of their own (exiting, or past the table); its
    /// writers take `fallback_lock`, so it too has one writer at a time.
    fallback: Entry<B>,
    fallback_lock: Mutex<()>,
    /// A stripe with no slots: filler for the stack array in [`Stripes::with_all`].
    empty: Stripe<B>,
    /// Which entries are allocated: bit `i < DIRECT` for `direct[i]`, bit `DIRECT + k` for
    /// level `k`, bit [`FALLBACK_BIT`] for the fallback. Set once per entry, so reads visit
    /// only what exists (usually one or two stripes) instead of probing every entry.
    used: AtomicU64,
}

const FALLBACK_BIT: u32 = 63;
const _: () = assert!(DIRECT + LEVELS < FALLBACK_BIT as usize);

impl<B: Bucket> Stripes<B> {
    pub(crate) fn new(size: usize) -> Stripes<B> {
        Stripes {
            size,
            direct: [const { OnceLock::new() }; DIRECT],
            levels: [const { OnceLock::new() }; LEVELS],
            fallback: OnceLock::new(),
            fallback_lock: Mutex::new(()),
            empty: Stripe::new(0),
            used: AtomicU64::new(0),
        }
    }

    /// Runs `write` on a stripe the calling thread may write.
    #[inline]
    pub(crate) fn with_own<R>(&self, write: impl FnOnce(&Stripe<B>) -> R) -> R {
        match thread_id::current().and_then(|i| self.own(i)) {
            Some(stripe) => write(stripe),
            None => self.with_fallback(write),
        }
    }

    #[inline]
    fn own(&self, index: usize) -> Option<&Stripe<B>> {
        match self.direct.get(index) {
            Some(entry) => Some(entry.get_or_init(|| self.new_stripe(Some(index as u32)))),
            // The level's bit was set when `leveled` allocated the level.
            None => Some(
                self.leveled(index - DIRECT)?
                    .get_or_init(|| self.new_stripe(None)),
            ),
        }
    }

    /// A new stripe, marking its entry's `bit` used (see [`Stripes::used`]).
    #[cold]
    fn new_stripe(&self, bit: Option<u32>) -> Box<Stripe<B>> {
        if let Some(bit) = bit {
            // Relaxed: the OnceLock publishes the stripe; the bit only says where to look,
            // and any read ordered after the add by other means sees it too.
            self.used.fetch_or(1 << bit, Ordering::Relaxed);
        }
        Box::new(Stripe::new(self.size))
    }

    #[cold]
    fn leveled(&self, index: usize) -> Option<&Entry<B>> {
        let n = index + 1;
        let level = (usize::BITS - 1 - n.leading_zeros()) as usize;
        let entries = self.levels.get(level)?.get_or_init(|| {
            self.used.fetch_or(1 << (DIRECT + level), Ordering::Relaxed);
            (0..1usize << level).map(|_| OnceLock::new()).collect()
        });
        entries.get(n - (1 << level))
    }

    #[cold]
    fn with_fallback<R>(&self, write: impl FnOnce(&Stripe<B>) -> R) -> R {
        let _writer = self.fallback_lock.lock();
        write(
            self.fallback
                .get_or_init(|| self.new_stripe(Some(FALLBACK_BIT))),
        )
    }

    /// Calls `f` with every stripe allocated so far, visiting only the entries marked used.
    #[inline]
    pub(crate) fn for_each<'a>(&'a self, mut f: impl FnMut(&'a Stripe<B>)) {
        let mut used = self.used.load(Ordering::Relaxed);
        while used != 0 {
            let bit = used.trailing_zeros();
            used &= used - 1;
            let bit = bit as usize;
            if bit < DIRECT {
                if let Some(stripe) = self.direct[bit].get() {
                    f(stripe);
                }
            } else if bit < DIRECT + LEVELS {
                if let Some(level) = self.levels[bit - DIRECT].get() {
                    for stripe in level.iter().filter_map(OnceLock::get) {
                        f(stripe);
                    }
                }
            } else if let Some(stripe) = self.fallback.get() {
                f(stripe);
            }
        }
    }

    /// Whether at most one stripe exists (a level may hold several, so a level counts as
    /// many).
    #[inline]
    pub(crate) fn at_most_one(&self) -> bool {
        let used = self.used.load(Ordering::Relaxed);
        used == 0
            || used.is_power_of_two() && {
                let bit = used.trailing_zeros() as usize;
                bit < DIRECT || bit == FALLBACK_BIT as usize
            }
    }

    /// Calls `read` with every stripe allocated so far. The references are gathered once,
    /// on the stack unless there are many, because a reduce walks them once per slice.
    pub(crate) fn with_all<R>(&self, read: impl FnOnce(&[&Stripe<B>]) -> R) -> R {
        let mut inline = [&self.empty; INLINE_STRIPES];
        let mut spilled = Vec::new();
        let mut n = 0;
        self.for_each(|stripe| {
            if n < INLINE_STRIPES {
                inline[n] = stripe;
            } else {
                if spilled.is_empty() {
                    spilled.extend_from_slice(&inline);
                }
                spilled.push(stripe);
            }
            n += 1;
        });
        if n <= INLINE_STRIPES {
            read(&inline[..n])
        } else {
            read(&spilled)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{SumCount, SumCountSnapshot};

    fn stripes_of(s: &Stripes<SumCount<i64>>) -> usize {
        s.with_all(|all| all.len())
    }

    #[test]
    fn each_index_gets_its_own_stripe_and_the_fallback_is_shared() {
        let s = Stripes::<SumCount<i64>>::new(2);
        s.own(0).unwrap().add(0, 10, 1);
        s.own(5).unwrap().add(0, 10, 2);
        s.own(5).unwrap().add(0, 10, 3);
        assert!(!std::ptr::eq(s.own(0).unwrap(), s.own(5).unwrap()));
        s.with_fallback(|f| f.add(0, 10, 4));
        assert_eq!(stripes_of(&s), 3);
        let sum: i64 = s.with_all(|all| {
            all.iter()
                .filter_map(|st| st.read(0))
                .map(|b: SumCountSnapshot<i64>| b.sum)
                .sum()
        });
        assert_eq!(sum, 10);
    }

    #[test]
    fn indices_past_the_table_have_no_stripe_of_their_own() {
        let s = Stripes::<SumCount<i64>>::new(1);
        assert!(s.own(DIRECT - 1).is_some());
        assert!(s.own(DIRECT).is_some());
        assert!(s.own(DIRECT + (1 << LEVELS) - 2).is_some());
        assert!(s.own(DIRECT + (1 << LEVELS) - 1).is_none());
    }

    #[test]
    fn many_stripes_spill_past_the_inline_buffer() {
        let s = Stripes::<SumCount<i64>>::new(1);
        for i in 0..40 {
            s.own(i).unwrap().add(0, 10, 1);
        }
        assert_eq!(stripes_of(&s), 40);
    }
}
