//! The key → entry index: an open-addressing table of 4-byte slab indices, in groups of 12
//! that each fill one 64-byte cache line (12 tag bytes, an overflow count, 12 indices), so a
//! lookup usually reads one line of the index before the entry it finds.
//!
//! Why not `hashbrown::HashTable<u32>` (5 bytes a bucket, like this one): its bucket count
//! is a power of two at most 7/8 full, so a million timers need 2^21 buckets (10.5 bytes a
//! timer), and its tag bytes and indices live in two arrays (two cache misses a lookup).
//! This table holds `capacity` entries in `ceil(capacity / 11)` groups (at most 11/12 full),
//! and its capacity doubles with the slab's: about 6.1 bytes a timer at 2^20.
//!
//! Probing is linear over groups from the home group (the hash scaled onto the group count,
//! so any count works). There are no tombstones: each group counts the entries that were
//! placed beyond it because it was full when they were inserted (F14's overflow count), a
//! lookup stops at the first group whose count is zero, and a removal decrements the counts
//! it had incremented. A count that reaches 255 stays there until the table is rebuilt.

/// Slots per group.
const SLOTS: usize = 12;
/// Tag of an empty slot; a live slot's tag is 7 bits of its hash (top bit clear).
const EMPTY: u8 = 0x80;
/// Byte of the control word that holds the overflow count.
const OVERFLOW: usize = 12;
/// A count that reached this stays (too many to track; only a rebuild clears it).
const SATURATED: u8 = u8::MAX;

/// One cache line: 12 tags, the overflow count (byte 12), 12 slab indices.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Group {
    ctrl: [u8; 16],
    slots: [u32; SLOTS],
}

impl Group {
    const EMPTY: Group = Group {
        ctrl: [
            EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, 0,
            0, 0, 0,
        ],
        slots: [0; SLOTS],
    };

    /// Slots whose tag may be `tag` (a live tag): every slot with that tag, and rarely a
    /// live slot with tag `tag ^ 1` above one (callers compare the entry).
    #[inline]
    fn matching(&self, tag: u8) -> Mask {
        ctrl::matching(&self.ctrl, tag)
    }

    /// The empty slots.
    #[inline]
    fn empty(&self) -> Mask {
        ctrl::empty(&self.ctrl)
    }

    #[inline]
    fn overflow(&self) -> u8 {
        self.ctrl[OVERFLOW]
    }

    /// The slot of this group whose tag is `tag` and whose slab index `eq` accepts.
    #[inline(always)]
    fn find(&self, tag: u8, eq: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        let mut m = self.matching(tag);
        while m != 0 {
            let slot = slot_of(m);
            if eq(self.slots[slot]) {
                return Some(slot);
            }
            m &= m - 1;
        }
        None
    }
}

/// Matching the control bytes of a group: SSE2 on x86_64 (one compare and a byte mask),
/// SWAR over a `u128` elsewhere. SSE2 saves about 40 instructions per set+remove (the
/// instruction gate's `wheel_set_remove`: 546 with the SWAR matcher, 508 with hashbrown's
/// SSE2 groups before this index).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod ctrl {
    pub(super) use super::sse2::{Mask, STRIDE, empty, matching};
}
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
mod ctrl {
    pub(super) use super::swar::{Mask, STRIDE, empty, matching};
}

/// The SSE2 matcher: bit `i` for slot `i`, exact.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8,
    };

    /// Bit `i` for slot `i`.
    pub(super) type Mask = u16;
    /// Bits per slot in a [`Mask`].
    pub(super) const STRIDE: u32 = 1;
    /// The tag slots' bits (slots 0..12; bytes 12.. are the overflow count and padding).
    const TAGS: u16 = (1 << super::SLOTS) - 1;

    #[inline(always)]
    fn load(ctrl: &[u8; 16]) -> __m128i {
        let [lo, hi] = [0, 8].map(|at| {
            let mut half = [0; 8];
            half.copy_from_slice(&ctrl[at..at + 8]);
            i64::from_le_bytes(half)
        });
        // SAFETY: SSE2 is enabled for this build (the module's cfg), so the intrinsic's
        // target feature is present; it reads only its arguments.
        unsafe { _mm_set_epi64x(hi, lo) }
    }

    #[inline(always)]
    fn equal(ctrl: &[u8; 16], byte: u8) -> Mask {
        let group = load(ctrl);
        // SAFETY: as in `load`: SSE2 is enabled for this build; register-only intrinsics.
        let bits = unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(group, _mm_set1_epi8(byte as i8))) };
        bits as u16 & TAGS
    }

    /// The slots whose tag is `tag`.
    #[inline]
    pub(super) fn matching(ctrl: &[u8; 16], tag: u8) -> Mask {
        equal(ctrl, tag)
    }

    /// The empty slots.
    #[inline]
    pub(super) fn empty(ctrl: &[u8; 16]) -> Mask {
        equal(ctrl, super::EMPTY)
    }
}

/// The portable matcher (on x86_64 only the tests use it, against the SSE2 one).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
mod swar {
    /// Bit `8i + 7` for slot `i`.
    pub(super) type Mask = u128;
    /// Bits per slot in a [`Mask`].
    pub(super) const STRIDE: u32 = 8;
    /// One in each byte.
    const LO: u128 = u128::from_le_bytes([1; 16]);
    /// The top bit of each tag byte (bytes 0..12).
    const TAGS_HI: u128 = u128::from_le_bytes([
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0, 0, 0,
    ]);

    /// The zero-byte test on `ctrl ^ tag`: exact but for a live slot with tag `tag ^ 1`
    /// just above a match (the borrow), which callers filter by comparing the entry.
    #[inline]
    pub(super) fn matching(ctrl: &[u8; 16], tag: u8) -> Mask {
        // The tag in every byte, built in 64 bits (a 128-bit multiply costs three).
        let half = u128::from(0x0101_0101_0101_0101u64 * u64::from(tag));
        let x = u128::from_le_bytes(*ctrl) ^ (half | half << 64);
        x.wrapping_sub(LO) & !x & TAGS_HI
    }

    #[inline]
    pub(super) fn empty(ctrl: &[u8; 16]) -> Mask {
        u128::from_le_bytes(*ctrl) & TAGS_HI
    }
}

use ctrl::{Mask, STRIDE};

/// The slot a bit of a [`Mask`] stands for.
#[inline]
fn slot_of(mask: Mask) -> usize {
    (mask.trailing_zeros() / STRIDE) as usize
}

/// Where an entry is, or where a new one would go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    group: usize,
    slot: usize,
    /// The home group of the hash probed for.
    home: usize,
    tag: u8,
}

/// The key → slab index table. Keys are not stored: callers match candidates through
/// closures over the slab, and hand in hashes.
#[derive(Debug)]
pub(crate) struct Index {
    groups: Box<[Group]>,
    /// Entries it holds before it must grow.
    capacity: usize,
    len: usize,
}

impl Index {
    /// An empty table that holds `capacity` entries before it grows (none allocated for 0).
    pub(crate) fn with_capacity(capacity: usize) -> Index {
        let groups = if capacity == 0 {
            0
        } else {
            // At most 11 of 12 slots in use on average, and always one group with a free slot.
            capacity.div_ceil(SLOTS - 1).max(1)
        };
        Index {
            groups: vec![Group::EMPTY; groups].into_boxed_slice(),
            capacity,
            len: 0,
        }
    }

    /// Bytes allocated.
    pub(crate) fn allocation_size(&self) -> usize {
        self.groups.len() * std::mem::size_of::<Group>()
    }

    /// The home group and the tag of `hash`.
    #[inline]
    fn home(&self, hash: u64) -> (usize, u8) {
        let group = ((u128::from(hash) * self.groups.len() as u128) >> 64) as usize;
        (group, (hash & 0x7F) as u8)
    }

    #[inline]
    fn next(&self, group: usize) -> usize {
        if group + 1 == self.groups.len() {
            0
        } else {
            group + 1
        }
    }

    /// The position of the entry with `hash` for which `eq` holds.
    #[inline]
    fn position(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<Position> {
        if self.groups.is_empty() {
            return None;
        }
        let (home, tag) = self.home(hash);
        let mut g = home;
        loop {
            let group = &self.groups[g];
            if let Some(slot) = group.find(tag, &mut eq) {
                return Some(Position {
                    group: g,
                    slot,
                    home,
                    tag,
                });
            }
            if group.overflow() == 0 {
                return None;
            }
            g = self.next(g);
        }
    }

    /// The slab index of the entry with `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.position(hash, eq)
            .map(|p| self.groups[p.group].slots[p.slot])
    }

    /// The entry with `hash` for which `eq` holds, or where a new entry with `hash` goes
    /// (valid until the table next changes). Makes room first if the table is full, with
    /// `rehash` giving the hash of a held slab index.
    #[inline]
    pub(crate) fn find_or_vacancy(
        &mut self,
        hash: u64,
        mut eq: impl FnMut(u32) -> bool,
        rehash: impl Fn(u32) -> u64,
    ) -> Result<u32, Position> {
        if self.len == self.capacity {
            self.grow(rehash);
        }
        let (home, tag) = self.home(hash);
        let mut g = home;
        let mut vacancy = None;
        loop {
            let group = &self.groups[g];
            if let Some(slot) = group.find(tag, &mut eq) {
                return Ok(group.slots[slot]);
            }
            if vacancy.is_none() {
                let empty = group.empty();
                if empty != 0 {
                    vacancy = Some(Position {
                        group: g,
                        slot: slot_of(empty),
                        home,
                        tag,
                    });
                }
            }
            if group.overflow() == 0 {
                break;
            }
            g = self.next(g);
        }
        match vacancy {
            Some(p) => Err(p),
            // Every group on the way is full: the first with room further on.
            None => Err(self.vacancy_after(g, home, tag)),
        }
    }

    /// The first empty slot from group `g` on (there is one: the table is never full).
    #[inline]
    fn vacancy_after(&self, mut g: usize, home: usize, tag: u8) -> Position {
        loop {
            let empty = self.groups[g].empty();
            if empty != 0 {
                return Position {
                    group: g,
                    slot: slot_of(empty),
                    home,
                    tag,
                };
            }
            g = self.next(g);
        }
    }

    /// Puts slab index `value` at `at` (from [`find_or_vacancy`](Self::find_or_vacancy),
    /// nothing changed since), counting it as an overflow of every group it was probed past.
    #[inline]
    pub(crate) fn insert_at(&mut self, at: Position, value: u32) {
        let mut g = at.home;
        while g != at.group {
            let count = &mut self.groups[g].ctrl[OVERFLOW];
            *count = count.saturating_add(1);
            g = self.next(g);
        }
        let group = &mut self.groups[at.group];
        debug_assert_eq!(group.ctrl[at.slot], EMPTY);
        group.ctrl[at.slot] = at.tag;
        group.slots[at.slot] = value;
        self.len += 1;
    }

    /// Inserts `value`, known not to be held, with `hash`; `rehash` as for
    /// [`find_or_vacancy`](Self::find_or_vacancy).
    pub(crate) fn insert_unique(&mut self, hash: u64, value: u32, rehash: impl Fn(u32) -> u64) {
        if self.len == self.capacity {
            self.grow(rehash);
        }
        self.place(hash, value);
    }

    /// Inserts `value` with `hash`; there is room.
    fn place(&mut self, hash: u64, value: u32) {
        let (home, tag) = self.home(hash);
        let at = self.vacancy_after(home, home, tag);
        self.insert_at(at, value);
    }

    /// Removes the entry with `hash` for which `eq` holds and returns its slab index.
    #[inline]
    pub(crate) fn remove(&mut self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let at = self.position(hash, eq)?;
        let mut g = at.home;
        while g != at.group {
            let count = &mut self.groups[g].ctrl[OVERFLOW];
            if *count != SATURATED {
                *count -= 1;
            }
            g = self.next(g);
        }
        let group = &mut self.groups[at.group];
        group.ctrl[at.slot] = EMPTY;
        self.len -= 1;
        Some(group.slots[at.slot])
    }

    /// Doubles the capacity (as the slab's `Vec` does), re-placing every entry.
    #[cold]
    fn grow(&mut self, rehash: impl Fn(u32) -> u64) {
        let mut bigger = Index::with_capacity((self.capacity * 2).max(8));
        for group in self.groups.iter() {
            for slot in 0..SLOTS {
                if group.ctrl[slot] != EMPTY {
                    let value = group.slots[slot];
                    bigger.place(rehash(value), value);
                }
            }
        }
        *self = bigger;
    }

    #[cfg(test)]
    fn overflow_total(&self) -> usize {
        self.groups.iter().map(|g| usize::from(g.overflow())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poor hash (many collisions in home group and tag) to exercise overflow.
    fn bad_hash(v: u32) -> u64 {
        // Home group from the top bits, tag from the low 7: 4 distinct homes, 2 tags.
        (u64::from(v % 4) << 62) | u64::from(v % 2)
    }

    #[test]
    fn a_group_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Group>(), 64);
        assert_eq!(std::mem::align_of::<Group>(), 64);
    }

    #[test]
    fn sized_at_11_of_12_slots() {
        let index = Index::with_capacity(1 << 20);
        assert_eq!(index.allocation_size(), (1usize << 20).div_ceil(11) * 64);
        assert_eq!(Index::with_capacity(0).allocation_size(), 0);
        assert_eq!(Index::with_capacity(1).allocation_size(), 64);
    }

    #[test]
    fn the_matchers_agree() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            let mut g = Group::EMPTY;
            for slot in 0..SLOTS {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly a few tags, so that matches (and the SWAR borrow) are common.
                g.ctrl[slot] = if x & 3 == 0 {
                    EMPTY
                } else {
                    (x >> 8) as u8 & 3
                };
            }
            g.ctrl[OVERFLOW] = (x >> 20) as u8;
            let slots = |mask: Mask, stride: u32| -> Vec<usize> {
                (0..SLOTS)
                    .filter(|&i| mask >> (i as u32 * stride + stride - 1) & 1 == 1)
                    .collect()
            };
            let empty: Vec<usize> = (0..SLOTS).filter(|&i| g.ctrl[i] == EMPTY).collect();
            assert_eq!(slots(g.empty(), STRIDE), empty);
            let swar_empty = swar::empty(&g.ctrl);
            assert_eq!(
                (0..SLOTS)
                    .filter(|&i| swar_empty >> (i * 8 + 7) & 1 == 1)
                    .collect::<Vec<_>>(),
                empty
            );
            for tag in 0..4u8 {
                let exact: Vec<usize> = (0..SLOTS).filter(|&i| g.ctrl[i] == tag).collect();
                let got = slots(g.matching(tag), STRIDE);
                let m = swar::matching(&g.ctrl, tag);
                let swar: Vec<usize> = (0..SLOTS).filter(|&i| m >> (i * 8 + 7) & 1 == 1).collect();
                // Every match, and nothing but live slots (the SWAR may add `tag ^ 1` ones).
                for got in [&got, &swar] {
                    assert!(exact.iter().all(|i| got.contains(i)), "{g:?} {tag}");
                    assert!(
                        got.iter()
                            .all(|&i| g.ctrl[i] == tag || g.ctrl[i] == tag ^ 1)
                    );
                }
                if STRIDE == 1 {
                    assert_eq!(got, exact);
                }
            }
        }
    }

    #[test]
    fn colliding_entries_overflow_and_come_back() {
        let mut index = Index::with_capacity(0);
        let n = 500u32;
        for v in 0..n {
            let h = bad_hash(v);
            let at = index
                .find_or_vacancy(h, |x| x == v, bad_hash)
                .expect_err("new");
            index.insert_at(at, v);
        }
        assert_eq!(index.len, n as usize);
        assert!(index.overflow_total() > 0);
        for v in 0..n {
            assert_eq!(index.find(bad_hash(v), |x| x == v), Some(v), "{v}");
            assert_eq!(
                index.find_or_vacancy(bad_hash(v), |x| x == v, bad_hash),
                Ok(v)
            );
        }
        assert_eq!(index.find(bad_hash(n), |x| x == n), None);
        // Remove the even ones, then every other: the rest stay findable.
        for v in (0..n).step_by(2) {
            assert_eq!(index.remove(bad_hash(v), |x| x == v), Some(v));
            assert_eq!(index.remove(bad_hash(v), |x| x == v), None);
        }
        for v in 0..n {
            let found = index.find(bad_hash(v), |x| x == v);
            assert_eq!(found, (v % 2 == 1).then_some(v), "{v}");
        }
        for v in (1..n).step_by(2) {
            assert_eq!(index.remove(bad_hash(v), |x| x == v), Some(v));
        }
        assert_eq!(index.len, 0);
        assert_eq!(index.overflow_total(), 0, "every overflow count given back");
    }

    #[test]
    fn random_churn_matches_a_set() {
        use std::collections::HashSet;
        let mut index = Index::with_capacity(3);
        let mut held = HashSet::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        let hash = |v: u32| {
            let z = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z ^ (z >> 29)
        };
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 3000) as u32;
            if x & (1 << 40) == 0 {
                match index.find_or_vacancy(hash(v), |y| y == v, hash) {
                    Ok(found) => assert!(held.contains(&found)),
                    Err(at) => {
                        assert!(held.insert(v));
                        index.insert_at(at, v);
                    }
                }
            } else {
                assert_eq!(index.remove(hash(v), |y| y == v).is_some(), held.remove(&v));
            }
            assert_eq!(index.len, held.len());
        }
        for v in 0..3000 {
            assert_eq!(index.find(hash(v), |y| y == v).is_some(), held.contains(&v));
        }
    }
}
