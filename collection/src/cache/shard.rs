//! One shard of the cache: a slab of entries, a hash index into it, a recency list and an
//! expiry wheel, all threaded through the slab by `u32` links and all under the shard's lock.
//!
//! Nothing here knows about clocks, locks or loaders: every operation is handed the hash of its
//! key and the current time, so the shard can be tested and reasoned about on its own.

use std::borrow::Borrow;
use std::hash::Hash;
use std::mem;
use std::num::NonZeroU64;

use ahash::RandomState;
use hashbrown::HashTable;

use crate::metrics::{Request, ShardMetrics};

/// "No entry": the end of a list, or an empty slot of the wheel.
const NIL: u32 = u32::MAX;

/// The most entries one shard can index (`NIL` is reserved).
pub(super) const MAX_PER_SHARD: usize = (HEAD - 1) as usize;

/// In an expiry list, the `prev` of the list's first entry is `HEAD | slot`: unlinking it
/// needs no other lookup, and an entry need not sit in the slot its deadline names (see
/// [`Shard::insert`]). Slab indices stay below it.
const HEAD: u32 = 1 << 31;

/// The most entries a bounded shard reserves on its first insert.
const FIRST_CHUNK: usize = 1 << 16;

/// Below this many slab slots, compaction is not worth its pass.
const COMPACT_MIN_SLOTS: usize = 64;

/// Previous and next entry in one of the two intrusive lists.
#[derive(Clone, Copy, Debug)]
struct Links {
    prev: u32,
    next: u32,
}

const UNLINKED: Links = Links {
    prev: NIL,
    next: NIL,
};

/// One cached key.
///
/// For `u64 -> u64` this is 48 bytes, and `Option<Entry>` stays 48 bytes: `deadline` is never
/// zero, which gives the option its niche.
#[derive(Debug)]
struct Entry<K, V> {
    key: K,
    /// `None` remembers that the loader found nothing (negative caching).
    value: Option<V>,
    /// The deadline (when the entry stops being served, in nanoseconds on the cache's clock;
    /// exact: the wheel below only decides when the memory is given back) in the low 63 bits,
    /// and the second-chance "read since it was last looked at by eviction" flag in the top
    /// bit. Never zero, which gives `Option<Entry>` its niche.
    stamp: NonZeroU64,
    /// Recency: `head` is the most recently used entry, `tail` the eviction candidate.
    recency: Links,
    /// The list of the wheel slot the deadline falls in.
    expiry: Links,
}

/// The top bit of [`Entry::stamp`]: the entry was read since eviction last passed it.
const REFERENCED: u64 = 1 << 63;

/// The latest deadline an entry can have (292 years on the clock's time line).
const MAX_DEADLINE: u64 = REFERENCED - 1;

impl<K, V> Entry<K, V> {
    #[inline(always)]
    fn deadline(&self) -> u64 {
        self.stamp.get() & MAX_DEADLINE
    }

    #[inline(always)]
    fn referenced(&self) -> bool {
        self.stamp.get() & REFERENCED != 0
    }

    #[inline(always)]
    fn set_stamp(&mut self, deadline: u64, referenced: bool) {
        let flag = if referenced { REFERENCED } else { 0 };
        self.stamp =
            NonZeroU64::new(deadline.clamp(1, MAX_DEADLINE) | flag).unwrap_or(NonZeroU64::MIN);
    }
}

/// Statistics counted under the shard's lock: plain integers, no shared atomics on the hot path.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) evictions: u64,
    pub(super) expirations: u64,
}

/// What a lookup found.
pub(super) enum Found<V> {
    /// A live entry: `Some` value, or `None` for a remembered "not found".
    Live(Option<V>),
    /// No live entry (absent, or expired and now removed).
    Absent,
}

/// The shape of a shard, fixed at construction.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShardConfig {
    /// Entries kept before the least recently used one is evicted.
    pub(super) capacity: usize,
    /// Whether a capacity was asked for: only then do reads maintain the recency order.
    pub(super) bounded: bool,
    /// Exact LRU (a read moves the entry to the front of the list) instead of second chance
    /// (a read sets a flag; eviction moves flagged entries to the front as it meets them).
    pub(super) exact_lru: bool,
    /// The wheel's tick in nanoseconds (at least 1).
    pub(super) tick: u64,
    /// The wheel's slot count, a power of two.
    pub(super) slots: usize,
}

/// A shard. See the module docs.
#[derive(Debug)]
pub(super) struct Shard<K, V> {
    entries: Vec<Option<Entry<K, V>>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    head: u32,
    tail: u32,
    len: usize,
    config: ShardConfig,
    /// Heads of the wheel's slot lists. Slot `t & mask` holds the entries whose deadline falls
    /// in tick `t` (`t = deadline / tick`), for every round.
    wheel: Box<[u32]>,
    /// Every tick before this one has been swept: no entry there is older than its deadline.
    swept: u64,
    /// `swept`'s end in nanoseconds: the next sweep is due once the clock reaches it. Kept so
    /// that the per-operation check is one comparison, not a division.
    next_sweep_at: u64,
    pub(super) counts: Counts,
    /// Moved with `counts.evictions`, `counts.expirations` and `len`.
    metrics: ShardMetrics,
}

impl<K, V> Shard<K, V> {
    /// An empty shard whose wheel starts at `now`.
    pub(super) fn new(config: ShardConfig, now: u64, metrics: ShardMetrics) -> Self {
        let swept = now / config.tick;
        Shard {
            entries: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            config,
            wheel: vec![NIL; config.slots].into_boxed_slice(),
            swept,
            next_sweep_at: swept.saturating_add(1).saturating_mul(config.tick),
            counts: Counts::default(),
            metrics,
        }
    }

    /// Counts a request (`keel_cache_requests_total`, feature `metrics`) whose lookup found
    /// `found`; nothing without the feature.
    #[inline(always)]
    pub(super) fn count_request(&mut self, found: &Found<V>) {
        self.metrics.request(match found {
            Found::Live(Some(_)) => Request::Hit,
            Found::Live(None) => Request::NotFound,
            Found::Absent => Request::Miss,
        });
    }

    /// Live and not yet reclaimed entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held by the slab, the free list, the index and the wheel.
    pub(super) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * mem::size_of::<Option<Entry<K, V>>>()
            + self.free.capacity() * mem::size_of::<u32>()
            + self.index.allocation_size()
            + self.wheel.len() * mem::size_of::<u32>()
    }

    /// Drops every entry (statistics are kept).
    pub(super) fn remove_all(&mut self) {
        self.metrics.entries_removed(self.len);
        self.clear();
    }

    /// Forgets every entry (compaction puts the live ones back).
    fn clear(&mut self) {
        self.entries = Vec::new();
        self.free = Vec::new();
        self.index = HashTable::new();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
        self.wheel.fill(NIL);
    }
}

impl<K: Hash + Eq, V: Clone> Shard<K, V> {
    /// Looks `key` up at `now`: a live entry is marked most recently used; an expired one is
    /// removed (counted as an expiration). `key` is the key or a form it borrows as, `hash`
    /// the hash of either (they hash alike).
    pub(super) fn get<Q>(&mut self, hasher: &RandomState, hash: u64, key: &Q, now: u64) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.sweep_if_due(hasher, now);
        let Some(idx) = self.find(hash, key) else {
            return Found::Absent;
        };
        if self.entry(idx).deadline() <= now {
            self.remove_at(hasher, idx);
            self.counts.expirations += 1;
            self.metrics.expired();
            return Found::Absent;
        }
        if self.config.bounded {
            if self.config.exact_lru {
                self.promote(idx);
            } else {
                // Only the first read after eviction passed writes: the line stays clean for
                // the reads after it.
                let entry = self.entry_mut(idx);
                if !entry.referenced() {
                    let deadline = entry.deadline();
                    entry.set_stamp(deadline, true);
                }
            }
        }
        Found::Live(self.entry(idx).value.clone())
    }

    /// Whether `key` has a live entry with a value at `now`; touches neither recency nor
    /// statistics.
    pub(super) fn contains<Q>(&self, hash: u64, key: &Q, now: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(hash, key).is_some_and(|idx| {
            let entry = self.entry(idx);
            entry.deadline() > now && entry.value.is_some()
        })
    }

    /// Stores `value` for `key` until `deadline`, as the most recently used entry; returns the
    /// value it replaces, if that one was live. A deadline not after `now` stores nothing (and
    /// removes the key).
    pub(super) fn insert(
        &mut self,
        hasher: &RandomState,
        hash: u64,
        key: K,
        value: Option<V>,
        deadline: u64,
        now: u64,
    ) -> Option<Option<V>> {
        self.sweep_if_due(hasher, now);
        if let Some(idx) = self.find(hash, &key) {
            if deadline <= now {
                return self.remove_at(hasher, idx).live_value(now);
            }
            let deadline = deadline.min(MAX_DEADLINE);
            let old_deadline = self.entry(idx).deadline();
            // The entry's slot is visited no later than its old deadline's tick. A deadline in
            // that tick or later (the usual re-set: the key's jitter is fixed, so a later set
            // means a later deadline) leaves it there, and the sweep moves it when it gets
            // there. Only an earlier tick needs the list surgery now.
            if deadline / self.config.tick < old_deadline / self.config.tick {
                self.unlink_expiry(idx);
                self.link_expiry(idx, deadline);
            }
            let entry = self.entry_mut(idx);
            entry.set_stamp(deadline, false);
            let old = mem::replace(&mut entry.value, value);
            self.promote(idx);
            return (old_deadline > now).then_some(old);
        }
        if deadline <= now {
            return None;
        }
        let deadline = deadline.min(MAX_DEADLINE);
        if self.len >= self.config.capacity {
            self.evict_one(hasher);
        }
        let mut entry = Entry {
            key,
            value,
            stamp: NonZeroU64::MIN,
            recency: UNLINKED,
            expiry: UNLINKED,
        };
        entry.set_stamp(deadline, false);
        let idx = self.allocate(entry);
        let entries = &self.entries;
        self.index
            .insert_unique(hash, idx, |&i| hasher.hash_one(&occupied(entries, i).key));
        self.len += 1;
        self.metrics.entry_added();
        self.push_front(idx);
        self.link_expiry(idx, deadline);
        None
    }

    /// Removes `key`; returns its value if it was live at `now`.
    pub(super) fn remove<Q>(
        &mut self,
        hasher: &RandomState,
        hash: u64,
        key: &Q,
        now: u64,
    ) -> Option<Option<V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.sweep_if_due(hasher, now);
        let idx = self.find(hash, key)?;
        let removed = self.remove_at(hasher, idx).live_value(now);
        self.compact_if_sparse(hasher);
        removed
    }

    /// Reclaims the entries whose deadline passed in a tick that is over at `now`.
    pub(super) fn sweep_if_due(&mut self, hasher: &RandomState, now: u64) {
        if now >= self.next_sweep_at {
            self.sweep(hasher, now);
        }
    }

    fn sweep(&mut self, hasher: &RandomState, now: u64) {
        let due = now / self.config.tick;
        // Ticks before `due` are over. A gap of a whole turn or more visits every slot once.
        let whole_turn = due.saturating_sub(self.swept) >= self.wheel.len() as u64;
        let ticks = due.saturating_sub(self.swept).min(self.wheel.len() as u64);
        let mask = self.wheel.len() as u64 - 1;
        for t in self.swept..self.swept + ticks {
            let mut idx = self.wheel[(t & mask) as usize];
            while idx != NIL {
                let entry = self.entry(idx);
                let next = entry.expiry.next;
                let deadline = entry.deadline();
                // Reclaimed once its deadline's tick is over, wherever the entry sat (an entry
                // re-set into the tick still running waits for that tick, as it would in the
                // slot its deadline names); after a whole turn, everything expired goes.
                if deadline / self.config.tick < due || (whole_turn && deadline <= now) {
                    self.remove_at(hasher, idx);
                    self.counts.expirations += 1;
                    self.metrics.expired();
                } else if self.slot_of(deadline) != (t & mask) as usize {
                    // Re-set to a later deadline, which left it here: move it now.
                    self.unlink_expiry(idx);
                    self.link_expiry(idx, deadline);
                }
                // Otherwise it is due in a later round of this slot and stays.
                idx = next;
            }
        }
        self.swept = due;
        self.next_sweep_at = due.saturating_add(1).saturating_mul(self.config.tick);
        self.compact_if_sparse(hasher);
    }

    /// The slot of `key` (or of the key it is borrowed from), whose hash is `hash`.
    #[inline(always)]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| occupied(entries, i).key.borrow() == key)
            .copied()
    }

    #[inline(always)]
    fn entry(&self, idx: u32) -> &Entry<K, V> {
        occupied(&self.entries, idx)
    }

    #[inline(always)]
    fn entry_mut(&mut self, idx: u32) -> &mut Entry<K, V> {
        match self.entries.get_mut(idx as usize) {
            Some(Some(entry)) => entry,
            _ => unreachable!("linked slot {idx} is vacant"),
        }
    }

    fn allocate(&mut self, entry: Entry<K, V>) -> u32 {
        if let Some(idx) = self.free.pop() {
            self.entries[idx as usize] = Some(entry);
            return idx;
        }
        // `capacity` is at most MAX_PER_SHARD, so the index always fits below NIL.
        let idx = self.entries.len() as u32;
        if self.config.bounded && self.entries.capacity() == 0 {
            // A bounded shard knows its final size: one allocation, no doubling slack, up to
            // FIRST_CHUNK entries (3 MiB for `u64 -> u64`); a larger shard doubles from
            // there as it fills, so a huge capacity costs what the cache holds.
            self.entries
                .reserve_exact(self.config.capacity.min(FIRST_CHUNK));
        }
        self.entries.push(Some(entry));
        idx
    }

    /// Unlinks and frees entry `idx`; returns it.
    fn remove_at(&mut self, hasher: &RandomState, idx: u32) -> Entry<K, V> {
        self.unlink_recency(idx);
        self.unlink_expiry(idx);
        let hash = hasher.hash_one(&self.entry(idx).key);
        if let Ok(found) = self.index.find_entry(hash, |&i| i == idx) {
            found.remove();
        }
        self.len -= 1;
        self.metrics.entries_removed(1);
        self.free.push(idx);
        match self.entries[idx as usize].take() {
            Some(entry) => entry,
            None => unreachable!("removed slot {idx} was vacant"),
        }
    }

    /// Evicts the least recently used entry. Under second chance, flagged entries met at the
    /// tail get their flag cleared and move to the front instead; each is passed over at most
    /// once, so this ends within `len` steps.
    fn evict_one(&mut self, hasher: &RandomState) {
        loop {
            let tail = self.tail;
            if tail == NIL {
                return;
            }
            if !self.config.exact_lru && self.entry(tail).referenced() {
                let entry = self.entry_mut(tail);
                let deadline = entry.deadline();
                entry.set_stamp(deadline, false);
                self.promote(tail);
                continue;
            }
            self.remove_at(hasher, tail);
            self.counts.evictions += 1;
            self.metrics.evicted();
            return;
        }
    }

    // ---- recency list ---------------------------------------------------------------------

    #[inline(always)]
    fn promote(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink_recency(idx);
            self.push_front(idx);
        }
    }

    #[inline(always)]
    fn push_front(&mut self, idx: u32) {
        let old_head = self.head;
        self.entry_mut(idx).recency = Links {
            prev: NIL,
            next: old_head,
        };
        if old_head == NIL {
            self.tail = idx;
        } else {
            self.entry_mut(old_head).recency.prev = idx;
        }
        self.head = idx;
    }

    #[inline(always)]
    fn unlink_recency(&mut self, idx: u32) {
        let Links { prev, next } = self.entry(idx).recency;
        // A corrupted list would make eviction loop forever: fail loudly in tests instead.
        debug_assert!(prev == NIL || self.entry(prev).recency.next == idx);
        debug_assert!(prev != NIL || self.head == idx);
        debug_assert!(next == NIL || self.entry(next).recency.prev == idx);
        debug_assert!(next != NIL || self.tail == idx);
        if prev == NIL {
            self.head = next;
        } else {
            self.entry_mut(prev).recency.next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry_mut(next).recency.prev = prev;
        }
        self.entry_mut(idx).recency = UNLINKED;
    }

    // ---- expiry wheel ---------------------------------------------------------------------

    fn slot_of(&self, deadline: u64) -> usize {
        ((deadline / self.config.tick) & (self.wheel.len() as u64 - 1)) as usize
    }

    fn link_expiry(&mut self, idx: u32, deadline: u64) {
        let slot = self.slot_of(deadline);
        let old_head = self.wheel[slot];
        self.entry_mut(idx).expiry = Links {
            prev: HEAD | slot as u32,
            next: old_head,
        };
        if old_head != NIL {
            self.entry_mut(old_head).expiry.prev = idx;
        }
        self.wheel[slot] = idx;
    }

    fn unlink_expiry(&mut self, idx: u32) {
        let Links { prev, next } = self.entry(idx).expiry;
        debug_assert!(prev & HEAD == 0 || self.wheel[(prev & !HEAD) as usize] == idx);
        debug_assert!(prev & HEAD != 0 || self.entry(prev).expiry.next == idx);
        debug_assert!(next == NIL || self.entry(next).expiry.prev == idx);
        if prev & HEAD != 0 {
            self.wheel[(prev & !HEAD) as usize] = next;
        } else {
            self.entry_mut(prev).expiry.next = next;
        }
        if next != NIL {
            self.entry_mut(next).expiry.prev = prev;
        }
        self.entry_mut(idx).expiry = UNLINKED;
    }

    // ---- memory ---------------------------------------------------------------------------

    /// Gives memory back once three quarters of the slab are free (after mass expiry or
    /// removal): the live entries are moved to a fresh slab in recency order and the index is
    /// rebuilt. Each pass is paid for by the removals that emptied the slab, so it is O(1)
    /// amortised.
    fn compact_if_sparse(&mut self, hasher: &RandomState) {
        let slots = self.entries.len();
        if slots < COMPACT_MIN_SLOTS || self.len > slots / 4 {
            return;
        }
        let mut live = Vec::with_capacity(self.len);
        let mut idx = self.tail;
        while idx != NIL {
            let prev = self.entry(idx).recency.prev;
            if let Some(entry) = self.entries[idx as usize].take() {
                live.push(entry);
            }
            idx = prev;
        }
        self.clear();
        for entry in live {
            // Oldest first, so pushing each to the front restores the recency order.
            let hash = hasher.hash_one(&entry.key);
            let deadline = entry.deadline();
            let idx = self.entries.len() as u32;
            self.entries.push(Some(Entry {
                recency: UNLINKED,
                expiry: UNLINKED,
                ..entry
            }));
            let entries = &self.entries;
            self.index
                .insert_unique(hash, idx, |&i| hasher.hash_one(&occupied(entries, i).key));
            self.len += 1;
            self.push_front(idx);
            self.link_expiry(idx, deadline);
        }
    }
}

/// A shard dropped with its cache holds nothing any more.
impl<K, V> Drop for Shard<K, V> {
    fn drop(&mut self) {
        self.metrics.entries_removed(self.len);
    }
}

impl<K, V> Entry<K, V> {
    /// The value, if the entry was still live at `now`.
    fn live_value(self, now: u64) -> Option<Option<V>> {
        (self.deadline() > now).then_some(self.value)
    }
}

/// The occupied slot `idx` of `entries`. Every index in the table and every link points at an
/// occupied slot; a vacant one here is a bug in this module.
#[inline(always)]
fn occupied<K, V>(entries: &[Option<Entry<K, V>>], idx: u32) -> &Entry<K, V> {
    match entries.get(idx as usize) {
        Some(Some(entry)) => entry,
        _ => unreachable!("linked slot {idx} is vacant"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(capacity: usize) -> (Shard<u64, u64>, RandomState) {
        let config = ShardConfig {
            capacity,
            bounded: true,
            exact_lru: true,
            tick: 10,
            slots: 8,
        };
        (
            Shard::new(config, 0, ShardMetrics::none()),
            RandomState::with_seeds(1, 2, 3, 4),
        )
    }

    fn put(s: &mut Shard<u64, u64>, h: &RandomState, k: u64, deadline: u64, now: u64) {
        s.insert(h, h.hash_one(k), k, Some(k * 10), deadline, now);
    }

    fn get(s: &mut Shard<u64, u64>, h: &RandomState, k: u64, now: u64) -> Option<u64> {
        match s.get(h, h.hash_one(k), &k, now) {
            Found::Live(v) => v,
            Found::Absent => None,
        }
    }

    #[test]
    fn an_entry_is_an_exact_48_bytes_for_u64_keys_and_values() {
        assert_eq!(mem::size_of::<Option<Entry<u64, u64>>>(), 48);
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted() {
        let (mut s, h) = shard(3);
        for k in 1..=3 {
            put(&mut s, &h, k, 1000, 0);
        }
        assert_eq!(get(&mut s, &h, 1, 0), Some(10));
        put(&mut s, &h, 4, 1000, 0);
        assert_eq!(get(&mut s, &h, 2, 0), None);
        assert_eq!(s.counts.evictions, 1);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn expired_entries_are_reclaimed_once_their_tick_is_over() {
        let (mut s, h) = shard(100);
        put(&mut s, &h, 1, 25, 0); // tick 2
        put(&mut s, &h, 2, 25 + 8 * 10, 0); // tick 10: the same slot, one round later
        s.sweep_if_due(&h, 29);
        assert_eq!(s.len(), 2, "tick 2 is not over before 30");
        s.sweep_if_due(&h, 30);
        assert_eq!(s.len(), 1);
        assert_eq!(s.counts.expirations, 1);
        assert_eq!(get(&mut s, &h, 2, 30), Some(20));
        s.sweep_if_due(&h, 1_000);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_sparse_slab_is_compacted_in_recency_order() {
        let (mut s, h) = shard(1000);
        for k in 0..200 {
            put(&mut s, &h, k, if k < 190 { 15 } else { 500 }, 0);
        }
        let before = s.allocated_bytes();
        s.sweep_if_due(&h, 20);
        assert_eq!(s.len(), 10);
        assert!(
            s.allocated_bytes() < before,
            "{} !< {before}",
            s.allocated_bytes()
        );
        // The recency order survived: 190 is the oldest and goes first.
        s.config.capacity = 10;
        put(&mut s, &h, 1000, 500, 20);
        assert_eq!(get(&mut s, &h, 190, 20), None);
        assert_eq!(get(&mut s, &h, 191, 20), Some(1910));
    }
}
