//! [`BiasedRwLock`]: the shard lock. A reader-biased reader-writer lock (the idea of BRAVO,
//! Dice and Kogan, USENIX ATC 2019): while no write came lately, a reader announces itself
//! in a slot of its own thread's line instead of updating the lock word every reader shares.
//!
//! A shared lock's read still writes the lock word: on two threads the word's cache line
//! moves between the cores on nearly every hit (two threads hitting uniformly over eight
//! shards find the line last written by the other thread half the time), and that transfer
//! costs more than the rest of the hit. On the biased path a hit writes only its thread's
//! own line, which stays in its core's cache.
//!
//! # Protocol
//!
//! - A reader on the fast path puts the lock's address in its slot (compare-and-swap from
//!   empty), then checks `bias` again; a writer clears `bias`, then waits until no slot
//!   holds the lock's address. Both pairs are sequentially consistent, so either the reader
//!   sees `bias` cleared (and backs off to the shared lock) or the writer sees the slot (and
//!   waits for the reader to empty it, with a release store after its last read).
//! - A writer first takes the inner lock exclusively, so writers and slow readers are
//!   ordered by the inner lock as usual; it clears `bias` (revocation) only if it was set.
//! - `bias` is set again by a slow reader, under the inner shared lock (so no writer is
//!   inside), once [`REBIAS_AFTER`] shared reads came without a write: a shard written often
//!   stays on the plain lock, where a write costs no revocation. (With 16, a 90/10 read/write
//!   mix on two threads re-biased and revoked its shards over and over and took 150 ns per
//!   operation against 48 ns with 256, which leaves such a mix on the plain lock.)
//! - A thread's slot line is found by its dense index (keel-rollingwindow's
//!   `thread_index`), and `used` bounds the lines a revocation looks at: a thread raises it
//!   to cover its line before its first fast read. Threads past [`REGIONS`] always read
//!   through the inner lock.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use crossbeam_utils::CachePadded;

use sync::{
    AtomicBool, AtomicU32, AtomicUsize, Ordering, RwLock, RwLockReadGuard, RwLockWriteGuard,
    read_lock, spin_wait, store_load_order, write_lock,
};

/// loom's primitives inside this module's loom tests (`--cfg loom`), else std's atomics and
/// parking_lot's lock.
mod sync {
    #[cfg(all(test, loom))]
    pub(super) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
    #[cfg(all(test, loom))]
    pub(super) use loom::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

    #[cfg(not(all(test, loom)))]
    pub(super) use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
    #[cfg(not(all(test, loom)))]
    pub(super) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

    #[cfg(not(all(test, loom)))]
    #[inline(always)]
    pub(super) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
        lock.read()
    }

    #[cfg(not(all(test, loom)))]
    #[inline(always)]
    pub(super) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
        lock.write()
    }

    /// Waits a little for a fast reader to leave: spins at first, then lets the reader's
    /// thread run (on a busy machine it may be waiting for a core).
    #[cfg(not(all(test, loom)))]
    #[inline]
    pub(super) fn spin_wait(spins: &mut u32) {
        if *spins < 64 {
            *spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    #[cfg(all(test, loom))]
    pub(super) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
        lock.read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(all(test, loom))]
    pub(super) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
        lock.write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(all(test, loom))]
    pub(super) fn spin_wait(_: &mut u32) {
        loom::thread::yield_now();
    }

    /// Between a side's sequentially consistent write and its read of the other side's flag.
    /// A no-op in the real build: the C++20 model (Rust's) puts all `SeqCst` operations in one
    /// total order, which is what the protocol needs, and on x86 the compare-and-swap is a
    /// full barrier already. loom models `SeqCst` accesses only as acquire/release (its docs),
    /// but models `SeqCst` fences exactly, so its runs add one here to check the same order.
    #[cfg(not(all(test, loom)))]
    #[inline(always)]
    pub(super) fn store_load_order() {}

    #[cfg(all(test, loom))]
    pub(super) fn store_load_order() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Threads with an index below this may read on the fast path.
pub(super) const REGIONS: usize = 64;
/// Slots per thread: one cache line of `usize`s. A thread holding fast reads of two locks
/// whose addresses fall on the same slot takes the second through the inner lock.
const SLOTS: usize = 8;
/// Shared reads (with no write in between) after which the lock is biased again.
#[cfg(not(all(test, loom)))]
pub(super) const REBIAS_AFTER: u32 = 256;
/// One under loom: a model then reaches the re-biased state in one slow read.
#[cfg(all(test, loom))]
pub(super) const REBIAS_AFTER: u32 = 1;

/// The readers' slots of every lock in the process (one line per thread, 8 KiB in all).
#[cfg(not(all(test, loom)))]
static READERS: std::sync::LazyLock<Readers> = std::sync::LazyLock::new(Readers::new);
#[cfg(all(test, loom))]
loom::lazy_static! {
    static ref READERS: Readers = Readers::new();
}

/// Which readers hold which locks on the fast path: per thread index, a line of slots, each
/// empty (0) or holding the address of a lock its thread reads.
pub(super) struct Readers {
    regions: Box<[CachePadded<[AtomicUsize; SLOTS]>]>,
    /// One past the highest thread index that ever read on the fast path.
    used: AtomicUsize,
}

impl Readers {
    pub(super) fn new() -> Readers {
        Readers {
            regions: (0..REGIONS)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicUsize::new(0))))
                .collect(),
            used: AtomicUsize::new(0),
        }
    }

    /// Thread `region`'s line, covered by revocations from now on; `None` past
    /// [`REGIONS`].
    fn line(&self, region: usize) -> Option<&Line> {
        let line = self.regions.get(region)?;
        // SeqCst, before any fast read of this thread: a revocation that comes after such a
        // read in the total order reads `used` after this too (see the module docs).
        if region >= self.used.load(Ordering::SeqCst) {
            self.used.fetch_max(region + 1, Ordering::SeqCst);
        }
        Some(line)
    }
}

/// One thread's slots.
type Line = [AtomicUsize; SLOTS];

#[cfg(not(all(test, loom)))]
thread_local! {
    /// This thread's line of [`READERS`], once it has one: one thread-local load per read
    /// instead of the index, the bound and `used`. No destructor, so no "alive?" check.
    static MY_LINE: std::cell::Cell<Option<&'static Line>> = const { std::cell::Cell::new(None) };
}

/// This thread's line of [`READERS`].
#[cfg(not(all(test, loom)))]
#[inline(always)]
fn my_line() -> Option<&'static Line> {
    MY_LINE.with(std::cell::Cell::get).or_else(first_line)
}

/// This thread's first fast read: its line, by its dense index. A line may end up used by
/// two threads (an index handed on while its old thread is being torn down): they then
/// only meet on a slot's compare-and-swap, where one of them takes the inner lock.
#[cfg(not(all(test, loom)))]
#[cold]
fn first_line() -> Option<&'static Line> {
    let readers: &'static Readers = &READERS;
    let line = readers.line(keel_rollingwindow::thread_index()?)?;
    MY_LINE.with(|l| l.set(Some(line)));
    Some(line)
}

#[cfg(all(test, loom))]
fn my_line() -> Option<&'static Line> {
    None
}

/// Locks are on lines of their own (128-byte padded): the bits above those pick the slot.
#[inline]
fn slot_of(addr: usize) -> usize {
    (addr >> 7) % SLOTS
}

/// A reader-writer lock whose readers, while it is biased, write only their own thread's
/// slot. See the module docs.
pub(super) struct BiasedRwLock<T> {
    inner: RwLock<()>,
    /// Whether readers may take the fast path.
    bias: AtomicBool,
    /// Shared reads since the last write, up to [`REBIAS_AFTER`].
    slow_reads: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&T` to several threads at once (readers) and `&mut T` to one
// (a writer), exactly as `std::sync::RwLock`, so it needs the same bounds.
unsafe impl<T: Send> Send for BiasedRwLock<T> {}
// SAFETY: as above: `&T` on several threads needs `T: Sync`, `&mut T` on another `T: Send`.
unsafe impl<T: Send + Sync> Sync for BiasedRwLock<T> {}

impl<T> BiasedRwLock<T> {
    /// A lock holding `value`, biased from the start (nothing has written yet).
    pub(super) fn new(value: T) -> BiasedRwLock<T> {
        BiasedRwLock {
            inner: RwLock::new(()),
            bias: AtomicBool::new(true),
            slow_reads: AtomicU32::new(0),
            data: UnsafeCell::new(value),
        }
    }

    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Shared access.
    #[inline(always)]
    pub(super) fn read(&self) -> ReadGuard<'_, T> {
        self.read_on(my_line)
    }

    /// Exclusive access.
    #[inline(always)]
    pub(super) fn write(&self) -> WriteGuard<'_, T> {
        self.write_as(&READERS)
    }

    /// Shared access as the thread `region()` of `readers` (asked only when biased).
    #[cfg(test)]
    fn read_as<'a>(
        &'a self,
        readers: &'a Readers,
        region: impl FnOnce() -> usize,
    ) -> ReadGuard<'a, T> {
        self.read_on(|| readers.line(region()))
    }

    /// Shared access, on the fast path in the slots of `line()` (asked only when biased).
    #[inline(always)]
    fn read_on<'a, 'b: 'a>(&'a self, line: impl FnOnce() -> Option<&'b Line>) -> ReadGuard<'a, T> {
        if self.bias.load(Ordering::Relaxed)
            && let Some(line) = line()
            && let slot = &line[slot_of(self.addr())]
            && slot
                .compare_exchange(0, self.addr(), Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            // SeqCst with the compare-and-swap above against the writer's store and scan:
            // a writer that cleared `bias` before this load sees the slot and waits.
            store_load_order();
            if self.bias.load(Ordering::SeqCst) {
                return ReadGuard {
                    lock: self,
                    held: Held::Slot(slot),
                };
            }
            slot.store(0, Ordering::Release);
        }
        self.read_slow()
    }

    #[inline(never)]
    fn read_slow(&self) -> ReadGuard<'_, T> {
        let guard = read_lock(&self.inner);
        // No writer is inside while this shared lock is held, so the bias can come back.
        if !self.bias.load(Ordering::Relaxed) {
            // A load and a store, not an atomic add: two readers may count one read, which
            // only delays the bias a little, and a slow read then writes the lock's line
            // with one plain store after the lock's own read-modify-write.
            let reads = self.slow_reads.load(Ordering::Relaxed) + 1;
            if reads >= REBIAS_AFTER {
                // Release: a fast reader that sees it also sees every write before this
                // lock.
                self.bias.store(true, Ordering::Release);
            } else {
                self.slow_reads.store(reads, Ordering::Relaxed);
            }
        }
        ReadGuard {
            lock: self,
            held: Held::Shared(guard),
        }
    }

    /// Exclusive access, once every fast reader of `readers` has left.
    pub(super) fn write_as<'a>(&'a self, readers: &'a Readers) -> WriteGuard<'a, T> {
        let guard = write_lock(&self.inner);
        self.slow_reads.store(0, Ordering::Relaxed);
        if self.bias.load(Ordering::Relaxed) {
            self.revoke(readers);
        }
        WriteGuard {
            lock: self,
            _held: guard,
        }
    }

    /// Clears the bias and waits for the fast readers of this lock to leave.
    #[cold]
    fn revoke(&self, readers: &Readers) {
        self.bias.store(false, Ordering::SeqCst);
        store_load_order();
        let used = readers.used.load(Ordering::SeqCst).min(REGIONS);
        let at = slot_of(self.addr());
        for line in &readers.regions[..used] {
            let mut spins = 0u32;
            // Acquire: the reader's release store of 0 comes after its last read.
            while line[at].load(Ordering::SeqCst) == self.addr() {
                spin_wait(&mut spins);
            }
        }
    }
}

impl<T> fmt::Debug for BiasedRwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BiasedRwLock")
            .field("bias", &self.bias.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// How a reader holds the lock.
enum Held<'a> {
    /// Its slot holds the lock's address.
    Slot(&'a AtomicUsize),
    /// The inner lock, shared.
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
}

/// Shared access to a [`BiasedRwLock`]'s value.
pub(super) struct ReadGuard<'a, T> {
    lock: &'a BiasedRwLock<T>,
    held: Held<'a>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: no `&mut T` exists while this guard lives: a writer holds the inner lock
        // exclusively and, before touching the value, waits until no slot holds this lock
        // (fast path) — the inner lock held shared excludes it otherwise.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Held::Slot(slot) = self.held {
            // Release: this reader's reads come before a waiting writer's first write.
            slot.store(0, Ordering::Release);
        }
    }
}

/// Exclusive access to a [`BiasedRwLock`]'s value.
pub(super) struct WriteGuard<'a, T> {
    lock: &'a BiasedRwLock<T>,
    _held: RwLockWriteGuard<'a, ()>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the inner lock is held exclusively and no fast reader is left (the bias
        // was cleared before they were waited for, and no reader takes the fast path
        // without it): this guard is the only access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` keeps this the only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Barrier;

    use super::*;

    fn readers_of(lock: &BiasedRwLock<u64>, readers: &Readers) -> usize {
        readers
            .regions
            .iter()
            .filter(|line| line[slot_of(lock.addr())].load(Ordering::SeqCst) == lock.addr())
            .count()
    }

    #[test]
    fn a_biased_read_writes_only_its_slot_and_a_write_revokes() {
        let readers = Readers::new();
        let lock = BiasedRwLock::new(1u64);
        {
            let a = lock.read_as(&readers, || 3);
            let b = lock.read_as(&readers, || 5);
            assert_eq!((*a, *b), (1, 1));
            assert_eq!(readers_of(&lock, &readers), 2, "both on the fast path");
            assert!(lock.inner.try_write().is_some(), "the inner lock is free");
            // A second read on the same thread finds its slot taken: the inner lock.
            let c = lock.read_as(&readers, || 3);
            assert!(matches!(c.held, Held::Shared(_)));
        }
        assert_eq!(readers_of(&lock, &readers), 0, "guards empty their slots");
        *lock.write_as(&readers) += 1;
        assert!(
            !lock.bias.load(Ordering::SeqCst),
            "a write revokes the bias"
        );
        for n in 1..REBIAS_AFTER {
            let r = lock.read_as(&readers, || 3);
            assert!(
                matches!(r.held, Held::Shared(_)),
                "read {n} after the write"
            );
        }
        drop(lock.read_as(&readers, || 3));
        let r = lock.read_as(&readers, || 3);
        assert!(matches!(r.held, Held::Slot(_)), "biased again");
        assert_eq!(*r, 2);
    }

    #[test]
    fn threads_past_the_table_read_through_the_inner_lock() {
        let readers = Readers::new();
        let lock = BiasedRwLock::new(0u64);
        let r = lock.read_as(&readers, || REGIONS);
        assert!(matches!(r.held, Held::Shared(_)));
        let r2 = lock.read_as(&readers, || usize::MAX);
        assert!(matches!(r2.held, Held::Shared(_)));
    }

    #[test]
    fn readers_never_see_a_half_written_value() {
        // Writers keep both halves equal; readers on both paths check them.
        let lock = BiasedRwLock::new((0u64, 0u64));
        let threads = 4;
        let start = Barrier::new(threads);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (lock, start) = (&lock, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..20_000u64 {
                        if (i + t as u64).is_multiple_of(7) {
                            let mut w = lock.write();
                            w.0 = i;
                            std::hint::black_box(&mut *w);
                            w.1 = i;
                        } else {
                            let r = lock.read();
                            assert_eq!(r.0, r.1);
                        }
                    }
                });
            }
        });
        let (a, b) = *lock.read();
        assert_eq!(a, b);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::cell::UnsafeCell as Tracked;
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    /// A value whose every access loom checks against the happens-before order.
    struct Value(Tracked<u64>);

    // SAFETY: only accessed through the lock under test, which is what loom checks.
    unsafe impl Sync for Value {}

    impl Value {
        fn get(&self) -> u64 {
            // SAFETY: called with a read guard held; loom reports an overlapping write.
            self.0.with(|p| unsafe { *p })
        }

        fn bump(&self) {
            // SAFETY: called with the write guard held; loom reports an overlapping access.
            self.0.with_mut(|p| unsafe { *p += 1 })
        }
    }

    fn shared() -> Arc<(Readers, BiasedRwLock<Value>)> {
        Arc::new((Readers::new(), BiasedRwLock::new(Value(Tracked::new(0)))))
    }

    #[test]
    fn loom_a_fast_reader_and_a_revoking_writer_never_overlap() {
        loom::model(|| {
            let s = shared();
            let reader = {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    let (readers, lock) = &*s;
                    lock.read_as(readers, || 1).get()
                })
            };
            {
                let (readers, lock) = &*s;
                lock.write_as(readers).bump();
            }
            let seen = reader.join().unwrap();
            assert!(seen <= 1);
            let (readers, lock) = &*s;
            assert_eq!(lock.read_as(readers, || 0).get(), 1);
        });
    }

    #[test]
    fn loom_a_re_biased_lock_shows_the_last_write_to_fast_readers() {
        loom::model(|| {
            let s = shared();
            {
                let (readers, lock) = &*s;
                // Revoke, then one slow read re-biases (REBIAS_AFTER is 1 under loom).
                lock.write_as(readers).bump();
            }
            let writer = {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    let (readers, lock) = &*s;
                    lock.write_as(readers).bump();
                })
            };
            let (readers, lock) = &*s;
            let first = lock.read_as(readers, || 0).get();
            let second = lock.read_as(readers, || 0).get();
            assert!((1..=2).contains(&first) && first <= second);
            writer.join().unwrap();
            assert_eq!(lock.read_as(readers, || 0).get(), 2);
        });
    }

    #[test]
    fn loom_two_fast_readers_and_a_writer() {
        loom::model(|| {
            let s = shared();
            let readers: Vec<_> = (1..=2)
                .map(|region| {
                    let s = Arc::clone(&s);
                    thread::spawn(move || {
                        let (readers, lock) = &*s;
                        lock.read_as(readers, || region).get()
                    })
                })
                .collect();
            {
                let (readers, lock) = &*s;
                lock.write_as(readers).bump();
            }
            for r in readers {
                assert!(r.join().unwrap() <= 1);
            }
        });
    }
}
