//! The wheel itself: no clock, no lock, no thread. It is handed tick numbers (`poll(now)`),
//! which keeps it deterministic and lets every driver share it.

mod geometry;
mod index;
mod slab;

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroU64;

pub(crate) use geometry::Geometry;
use index::Index;
use slab::{Entry, NIL, SLOT_TAG, Slab};

/// The wheel holds [`slab::MAX_ENTRIES`] timers already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A deadline further than [`Geometry::range`] beyond the last processed tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooFar;

/// Never compact a wheel smaller than this many slab slots: small wheels are not worth it.
const MIN_COMPACT_SLOTS: usize = 1024;

/// A keyed hierarchical timing wheel over tick numbers.
///
/// Layout: entries in a slab (32 bytes each for `u64` keys and values), a hash index from
/// key to slab index ([`Index`]: 64-byte groups of 12 four-byte indices, about 6 bytes per
/// timer, growing with the slab), and per wheel slot the head of a
/// doubly linked list threaded through the entries. Each level has a `u64` bitmap of its
/// occupied slots, so finding the next due slot is a rotate and a `trailing_zeros`.
///
/// One more list, after the slots, holds the **overdue** entries: due at or before
/// `elapsed`, not handed out yet. Entries go there when a `set` catches the wheel up to the
/// present past slots nobody has polled yet (see
/// [`deadline_after_catch_up`](Self::deadline_after_catch_up)); the next `poll` fires them
/// first, earliest deadline first. Its occupancy is bit 0 of one more bitmap word.
#[derive(Debug)]
pub(crate) struct Wheel<K, V> {
    geometry: Geometry,
    slab: Slab<K, V>,
    index: Index,
    hasher: ahash::RandomState,
    /// Head entry of each slot, `level * slots_per_level + slot`, then of the overdue list.
    heads: Box<[u32]>,
    /// Occupancy bitmap of each level, then one word for the overdue list (bit 0).
    occupied: Box<[u64]>,
    /// The last processed tick: every deadline at or before it has fired, every live entry's
    /// slot starts after it.
    elapsed: u64,
    /// The capacity hint: compaction never shrinks below it.
    reserved: usize,
}

impl<K: Hash + Eq, V> Wheel<K, V> {
    pub(crate) fn new(geometry: Geometry, capacity: usize) -> Wheel<K, V> {
        let slots = geometry.levels() * geometry.slots_per_level();
        Wheel {
            geometry,
            slab: Slab::with_capacity(capacity),
            index: Index::with_capacity(capacity),
            hasher: ahash::RandomState::new(),
            heads: vec![NIL; slots + 1].into_boxed_slice(),
            occupied: vec![0; geometry.levels() + 1].into_boxed_slice(),
            elapsed: 0,
            reserved: capacity,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// The last processed tick.
    #[cfg(test)]
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// The tick a timer aimed at `target` is scheduled for: `target`, but never at or before
    /// the last processed tick (a deadline in the past fires on the next poll), and at most
    /// [`Geometry::range`] ticks after it.
    #[inline]
    pub(crate) fn deadline_for(&self, target: u64) -> Result<u64, TooFar> {
        let deadline = target.max(self.elapsed + 1);
        if deadline - self.elapsed > self.geometry.range() {
            return Err(TooFar);
        }
        Ok(deadline)
    }

    /// For a `target` that [`deadline_for`](Self::deadline_for) refused: moves `elapsed` up
    /// to `now` and returns the deadline, if that makes `target` fit. Slots due by `now`
    /// are processed on the way as `poll(now)` would, except that what is due goes to the
    /// overdue list instead of firing (the caller of `set` is not the one to hand timers
    /// out to): so the span always counts from the present, however long the wheel went
    /// unpolled (an idle driver asleep, a manual wheel nobody advances), and nothing fires
    /// late or out of order. On a refusal nothing changes.
    pub(crate) fn deadline_after_catch_up(&mut self, now: u64, target: u64) -> Result<u64, TooFar> {
        let deadline = target.max(now + 1);
        if now <= self.elapsed || deadline - now > self.geometry.range() {
            return Err(TooFar);
        }
        self.run_slots(now, |wheel, idx| wheel.link_overdue(idx));
        Ok(deadline)
    }

    #[inline]
    fn find<Q>(&self, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let slab = &self.slab;
        self.index.find(hash, |i| slab.get(i).key.borrow() == key)
    }

    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).is_some()
    }

    /// The tick `key` fires on, if it is scheduled.
    pub(crate) fn deadline_of<Q>(&self, key: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).map(|i| self.slab.get(i).deadline.get())
    }

    /// Schedules `key` at `deadline` (from [`deadline_for`](Self::deadline_for)); an existing
    /// timer for `key` takes the new value and deadline, and its old value is returned.
    pub(crate) fn set(&mut self, key: K, value: V, deadline: u64) -> Result<Option<V>, Full> {
        let hash = self.hasher.hash_one(&key);
        let (slab, hasher) = (&self.slab, &self.hasher);
        let vacancy = match self.index.find_or_vacancy(
            hash,
            |i| slab.get(i).key == key,
            |i| hasher.hash_one(&slab.get(i).key),
        ) {
            Ok(idx) => {
                let old = std::mem::replace(&mut self.slab.get_mut(idx).value, value);
                self.reschedule_at(idx, deadline);
                return Ok(Some(old));
            }
            Err(vacancy) => vacancy,
        };
        let entry = Entry {
            key,
            value,
            deadline: nonzero(deadline),
            next: NIL,
            prev: NIL,
        };
        let idx = self.slab.insert(entry).ok_or(Full)?;
        self.index.insert_at(vacancy, idx);
        self.link(idx, deadline);
        Ok(None)
    }

    /// Moves `key`'s timer to `deadline`; false if there is none.
    pub(crate) fn reschedule<Q>(&mut self, key: &Q, deadline: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.find(key) {
            Some(idx) => {
                self.reschedule_at(idx, deadline);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn reschedule_at(&mut self, idx: u32, deadline: u64) {
        let elapsed = self.elapsed;
        let entry = self.slab.get_mut(idx);
        let old = entry.deadline.get();
        if deadline >= old && old > elapsed {
            // Later (the common case: a TTL refreshed, a timeout pushed back): the entry's
            // slot starts no later than its old deadline, so it can stay there. When that
            // slot comes due the entry is not due yet and moves to the slot of its new
            // deadline. One write instead of unlinking from one list and linking into another.
            // (Not for an overdue entry: it would be handed out at once.)
            entry.deadline = nonzero(deadline);
            return;
        }
        self.unlink(idx);
        self.slab.get_mut(idx).deadline = nonzero(deadline);
        self.link(idx, deadline);
    }

    /// Cancels `key`'s timer and returns its key and value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let slab = &self.slab;
        let idx = self
            .index
            .remove(hash, |i| slab.get(i).key.borrow() == key)?;
        self.unlink(idx);
        let entry = self.slab.take(idx);
        self.maybe_compact();
        Some((entry.key, entry.value))
    }

    /// The first tick of the earliest occupied slot: when `poll` next has work (possibly only
    /// moving entries down a level); `elapsed` while overdue entries wait. `None` when empty.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.occupied[self.geometry.levels()] != 0 {
            return Some(self.elapsed);
        }
        self.next_slot().map(|(_, _, start)| start)
    }

    /// The earliest occupied slot: the first level that has one wins, because every entry
    /// of a level lies inside the current slot of the level above, which ends before any
    /// occupied slot of that level starts.
    #[inline]
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        (0..self.geometry.levels()).find_map(|level| {
            self.geometry
                .next_in_level(level, self.occupied[level], self.elapsed)
                .map(|(slot, start)| (level, slot, start))
        })
    }

    /// Processes every slot due by tick `now`: timers whose deadline is at or before `now` go
    /// to `fire` (removed from the wheel first), the others move to the slot of their deadline.
    /// Work is proportional to the entries in the slots that came due.
    pub(crate) fn poll(&mut self, now: u64, mut fire: impl FnMut(K, V)) -> usize {
        let mut fired = 0;
        if self.occupied[self.geometry.levels()] != 0 {
            // Due before anything in a slot (whose deadlines are all after `elapsed`).
            for idx in self.take_overdue() {
                self.fire_at(idx, &mut fire);
                fired += 1;
            }
        }
        self.run_slots(now, |wheel, idx| {
            wheel.fire_at(idx, &mut fire);
            fired += 1;
        });
        self.maybe_compact();
        fired
    }

    /// Processes every slot due by tick `now`, earliest first, handing each entry due at
    /// its slot's start to `due`; the others move to the slot of their deadline. Leaves
    /// `elapsed` at `now` (or later, if it was).
    fn run_slots(&mut self, now: u64, mut due: impl FnMut(&mut Self, u32)) {
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            // Take the whole list before walking it, so that entries moved down a level are
            // never seen twice in one pass.
            let sid = level * self.geometry.slots_per_level() + slot;
            let mut idx = std::mem::replace(&mut self.heads[sid], NIL);
            self.occupied[level] &= !(1u64 << slot);
            while idx != NIL {
                let entry = self.slab.get(idx);
                let (next, deadline) = (entry.next, entry.deadline.get());
                // Fire only what is due at this slot's start; anything later (in a higher
                // level's slot, or moved later) goes down to its own slot, which this loop
                // reaches in order if it is due by `now`: timers come out earliest first even
                // when the clock has jumped over many ticks.
                if deadline <= self.elapsed {
                    due(self, idx);
                } else {
                    self.link(idx, deadline);
                }
                idx = next;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// Takes entry `idx` out of the slab and the index and hands it to `fire`.
    fn fire_at(&mut self, idx: u32, fire: &mut impl FnMut(K, V)) {
        let entry = self.slab.take(idx);
        let hash = self.hasher.hash_one(&entry.key);
        self.index.remove(hash, |i| i == idx);
        fire(entry.key, entry.value);
    }

    /// Empties the overdue list: the entries still due (by `elapsed`), earliest deadline
    /// first; one moved later since goes to the slot of its new deadline instead.
    fn take_overdue(&mut self) -> Vec<u32> {
        let levels = self.geometry.levels();
        let mut idx = std::mem::replace(
            &mut self.heads[levels * self.geometry.slots_per_level()],
            NIL,
        );
        self.occupied[levels] = 0;
        let mut due = Vec::new();
        while idx != NIL {
            let entry = self.slab.get(idx);
            let (next, deadline) = (entry.next, entry.deadline.get());
            if deadline <= self.elapsed {
                due.push((deadline, idx));
            } else {
                self.link(idx, deadline);
            }
            idx = next;
        }
        due.sort_unstable();
        due.into_iter().map(|(_, idx)| idx).collect()
    }

    /// Takes every timer out, unfired, and releases the storage down to the capacity hint.
    pub(crate) fn drain(&mut self) -> Vec<(K, V)> {
        self.heads.fill(NIL);
        self.occupied.fill(0);
        self.index = Index::with_capacity(self.reserved);
        let drained: Vec<(K, V)> = self.slab.take_all().map(|e| (e.key, e.value)).collect();
        self.slab = Slab::with_capacity(self.reserved);
        drained
    }

    /// Bytes held by the slab and the index (not counting the fixed slot arrays).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.slab.allocated_bytes() + self.index.allocation_size()
    }

    /// Puts entry `idx` at the head of the slot its `deadline` (after `elapsed`) belongs to.
    #[inline]
    fn link(&mut self, idx: u32, deadline: u64) {
        let level = self.geometry.level_for(self.elapsed, deadline);
        let slot = self.geometry.slot_for(level, deadline);
        self.link_into(idx, level, slot);
    }

    /// Puts entry `idx` at the head of the overdue list.
    fn link_overdue(&mut self, idx: u32) {
        self.link_into(idx, self.geometry.levels(), 0);
    }

    /// Puts entry `idx` at the head of list `slot` of `level` (level `levels`, slot 0: the
    /// overdue list).
    #[inline]
    fn link_into(&mut self, idx: u32, level: usize, slot: usize) {
        let sid = level * self.geometry.slots_per_level() + slot;
        let head = self.heads[sid];
        let entry = self.slab.get_mut(idx);
        entry.next = head;
        entry.prev = SLOT_TAG + sid as u32;
        if head != NIL {
            self.slab.get_mut(head).prev = idx;
        }
        self.heads[sid] = idx;
        self.occupied[level] |= 1u64 << slot;
    }

    /// Takes entry `idx` out of its slot list.
    #[inline]
    fn unlink(&mut self, idx: u32) {
        let entry = self.slab.get(idx);
        let (next, prev) = (entry.next, entry.prev);
        if prev >= SLOT_TAG {
            let sid = (prev - SLOT_TAG) as usize;
            self.heads[sid] = next;
            if next == NIL {
                let per_level = self.geometry.slots_per_level();
                self.occupied[sid / per_level] &= !(1u64 << (sid % per_level));
            }
        } else {
            self.slab.get_mut(prev).next = next;
        }
        if next != NIL {
            self.slab.get_mut(next).prev = prev;
        }
    }

    /// Gives memory back once fewer than a quarter of the slab's slots are live: the live
    /// entries are copied into a fresh slab of their size, slot by slot (so each slot's list
    /// ends up contiguous), and the index is rebuilt. O(live), paid at most once per
    /// three-quarters of a slab freed, so O(1) amortised per removal.
    fn maybe_compact(&mut self) {
        let slots = self.slab.slots();
        if slots <= MIN_COMPACT_SLOTS.max(self.reserved) || self.slab.len() >= slots / 4 {
            return;
        }
        let live = self.slab.len();
        let mut old = std::mem::replace(&mut self.slab, Slab::with_capacity(0));
        let mut fresh: Vec<Option<Entry<K, V>>> = Vec::with_capacity(live.max(self.reserved));
        for sid in 0..self.heads.len() {
            let mut idx = self.heads[sid];
            if idx == NIL {
                continue;
            }
            self.heads[sid] = fresh.len() as u32;
            let mut prev = SLOT_TAG + sid as u32;
            while idx != NIL {
                let mut entry = old.take(idx);
                let next = entry.next;
                let at = fresh.len() as u32;
                entry.prev = prev;
                entry.next = if next == NIL { NIL } else { at + 1 };
                fresh.push(Some(entry));
                prev = at;
                idx = next;
            }
        }
        let key_of = |i: u32| {
            &fresh[i as usize]
                .as_ref()
                .expect("compacted entries are live")
                .key
        };
        let mut index = Index::with_capacity(live.max(self.reserved));
        for i in 0..fresh.len() as u32 {
            let hash = self.hasher.hash_one(key_of(i));
            index.insert_unique(hash, i, |j| self.hasher.hash_one(key_of(j)));
        }
        self.index = index;
        self.slab.replace(fresh);
    }
}

#[inline]
fn nonzero(deadline: u64) -> NonZeroU64 {
    NonZeroU64::new(deadline).expect("deadlines are after tick 0")
}

#[cfg(test)]
mod tests;
