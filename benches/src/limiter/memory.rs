//! Heap bytes per key of the keyed limiters, counted by [`CountingAlloc`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{KEYED_BURST, KeyedUnderTest, SLOW_PERIOD};

/// The system allocator, counting the live heap of the threads that ask (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

#[derive(Clone, Copy)]
struct Count {
    on: bool,
    bytes: i64,
    blocks: i64,
}

thread_local! {
    static COUNT: Cell<Count> = const {
        Cell::new(Count {
            on: false,
            bytes: 0,
            blocks: 0,
        })
    };
}

#[inline]
fn note(bytes: isize, blocks: i64) {
    // `try_with`: a thread being torn down may still free memory.
    let _ = COUNT.try_with(|c| {
        let mut count = c.get();
        if count.on {
            count.bytes += bytes as i64;
            count.blocks += blocks;
            c.set(count);
        }
    });
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements
// `GlobalAlloc` soundly, and returns what `System` returned; the bookkeeping only updates a
// thread-local cell and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (a non-zero size).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize, 1);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize, 1);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator, hence `System`, allocated with
        // `layout`.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize), -1);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block `System` allocated with `layout` and a valid
        // new size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize, 0);
        }
        p
    }
}

/// The unit tests count too.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// `f`'s result, with the heap bytes and blocks it left on this thread (`None`: not installed).
pub fn held_by<R>(f: impl FnOnce() -> R) -> Option<(R, i64, i64)> {
    if !installed() {
        return None;
    }
    let (r, count) = count(f);
    Some((r, count.bytes, count.blocks))
}

fn count<R>(f: impl FnOnce() -> R) -> (R, Count) {
    let start = Count {
        on: true,
        bytes: 0,
        blocks: 0,
    };
    let previous = COUNT.replace(start);
    let r = f();
    let counted = COUNT.replace(previous);
    (r, counted)
}

/// Whether [`CountingAlloc`] is the global allocator: it saw a block allocated.
pub fn installed() -> bool {
    let (b, count) = count(|| black_box(Box::new(black_box(0u64))));
    drop(b);
    count.blocks == 1
}

/// What holding `keys` keys costs one keyed limiter on the heap.
#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    pub name: &'static str,
    pub keys: usize,
    pub bytes_per_key: f64,
    pub key_bytes_per_key: f64,
    pub blocks_per_key: f64,
}

impl Memory {
    pub fn state_per_key(&self) -> f64 {
        self.bytes_per_key - self.key_bytes_per_key
    }
}

/// [`Memory`] of `L` holding `n` keys.
pub fn keyed<L: KeyedUnderTest>(n: usize) -> Option<Memory> {
    let keys = super::keys(n);
    let key_bytes: usize = if L::COPIES_KEYS {
        keys.iter().map(String::len).sum()
    } else {
        0
    };
    let limiter = L::admitting();
    let ((), bytes, blocks) = held_by(|| {
        for k in &keys {
            assert!(limiter.allow_key(k), "{}: new key {k} refused", L::NAME);
        }
    })?;
    assert_eq!(limiter.keys(), n, "{}: keys held", L::NAME);
    Some(per_key(L::NAME, n, bytes, key_bytes, blocks))
}

pub const GOVERNOR_U64: &str = "governor (u64 keys)";

/// [`Memory`] of governor's keyed limiter with `u64` keys `0..n`, to check the peer figure.
pub fn governor_u64_keys(n: usize) -> Option<Memory> {
    let quota = Quota::with_period(SLOW_PERIOD)
        .expect("a positive period")
        .allow_burst(std::num::NonZeroU32::new(KEYED_BURST).expect("positive"));
    let limiter: DefaultKeyedRateLimiter<u64> = RateLimiter::keyed(quota);
    let ((), bytes, blocks) = held_by(|| {
        for k in 0..n as u64 {
            assert!(limiter.check_key(&k).is_ok(), "governor: new key refused");
        }
    })?;
    assert_eq!(limiter.len(), n);
    Some(per_key(GOVERNOR_U64, n, bytes, 0, blocks))
}

fn per_key(name: &'static str, n: usize, bytes: i64, key_bytes: usize, blocks: i64) -> Memory {
    let n_f = n as f64;
    Memory {
        name,
        keys: n,
        bytes_per_key: bytes as f64 / n_f,
        key_bytes_per_key: key_bytes as f64 / n_f,
        blocks_per_key: blocks as f64 / n_f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::{GovernorKeyed, KeelKeyed};

    #[test]
    fn counts_what_is_left_allocated_on_this_thread() {
        assert!(installed());
        let (kept, bytes, blocks) = held_by(|| {
            let kept = vec![0u8; 1000];
            let _freed = vec![0u8; 5000];
            // Another thread's allocations are not this thread's.
            std::thread::scope(|s| {
                s.spawn(|| {
                    black_box(vec![0u8; 7000]);
                });
            });
            kept
        })
        .expect("installed in the unit tests");
        // The scoped thread's handle may leave a little behind; the 7000 bytes are not seen.
        assert!((1000..1000 + 512).contains(&bytes), "{bytes}");
        assert!(blocks >= 1, "{blocks}");
        drop(kept);
    }

    #[test]
    fn the_limiters_hold_their_key_copies_and_a_table() {
        for m in [
            keyed::<KeelKeyed>(10_000),
            keyed::<GovernorKeyed>(10_000),
            governor_u64_keys(10_000),
        ] {
            let m = m.expect("installed");
            assert_eq!(m.keys, 10_000);
            // A slot holds at least the 8-byte state; no table needs 4 slots per key.
            assert!(
                (8.0..200.0).contains(&m.state_per_key()),
                "{}: {m:?}",
                m.name
            );
            if m.name == GOVERNOR_U64 || m.name == KeelKeyed::NAME {
                // No copy of the key: u64 keys inline, or keel's 64-bit hash.
                assert_eq!(m.key_bytes_per_key, 0.0);
                assert!(m.blocks_per_key < 0.01, "{m:?}");
            } else {
                // "10.0.39.15": 8 to 11 bytes; one block per copied key.
                assert!((8.0..=11.0).contains(&m.key_bytes_per_key), "{m:?}");
                assert!((1.0..1.01).contains(&m.blocks_per_key), "{m:?}");
            }
        }
    }
}
