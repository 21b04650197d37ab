//! One shard of the cache: a dense slab of entries, a hash index into it, the eviction queues
//! and an expiry wheel, all threaded through the slab by `u32` links.
//!
//! A lookup of a live entry needs only `&Shard` ([`Shard::get_shared`]): the cache serves hits
//! under a shared (read) lock, and the one thing a hit writes, its entry's "visited" flag, is
//! an atomic bit. Everything else (inserts, eviction, expiry, exact-LRU promotion) takes
//! `&mut Shard` under the exclusive lock.
//!
//! Nothing here knows about clocks, locks or loaders: every operation is handed the hash of its
//! key and the current time, so the shard can be tested and reasoned about on its own.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashTable;

use crate::metrics::ShardMetrics;

/// The key hasher: foldhash's fast variant (one 128-bit multiply for an integer key, where
/// ahash's portable build takes two, and the hash is on the critical path of every lookup).
pub(super) type KeyHasher = foldhash::fast::SeedableRandomState;

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

/// Below this many slab slots, giving memory back is not worth a reallocation.
const SHRINK_MIN_SLOTS: usize = 64;

/// The top bit of [`Entry::stamp`]: the entry was read since eviction last passed it. Set by
/// readers under the shared lock (a plain atomic store: every concurrent writer of the bit
/// stores the same word), cleared under the exclusive lock.
const VISITED: u64 = 1 << 63;

/// The next bit of [`Entry::stamp`]: the entry is in the main queue (else the small one).
/// Written only under the exclusive lock.
const IN_MAIN: u64 = 1 << 62;

/// The latest deadline an entry can have (2^62 − 1 ns: 146 years on the clock's time line).
pub(super) const MAX_DEADLINE: u64 = IN_MAIN - 1;

/// The eviction queues an entry can be in.
const SMALL: usize = 0;
const MAIN: usize = 1;

/// Previous and next entry in one of the intrusive lists.
#[derive(Clone, Copy, Debug)]
struct Links {
    prev: u32,
    next: u32,
}

const UNLINKED: Links = Links {
    prev: NIL,
    next: NIL,
};

/// One cached key: what a read looks at. For `u64 -> u64` this is 32 bytes, two to a cache
/// line; its links live apart, in a [`Chain`], so that a hit touches one line of the slab.
#[derive(Debug)]
struct Entry<K, V> {
    key: K,
    /// `None` remembers that the loader found nothing (negative caching).
    value: Option<V>,
    /// The deadline (when the entry stops being served, in nanoseconds on the cache's clock;
    /// exact: the wheel below only decides when the memory is given back) in the low 62
    /// bits, [`IN_MAIN`] and [`VISITED`] above it.
    stamp: AtomicU64,
}

/// Where an entry sits in the lists (16 bytes), kept in a vector beside the slab, at the
/// entry's index: only writers under the exclusive lock walk the lists, and keeping them out
/// of [`Entry`] makes the slab that hits read a third smaller.
#[derive(Clone, Copy, Debug)]
struct Chain {
    /// The entry's place in its eviction queue: towards `head` the newer, `tail` the next
    /// candidate.
    queue: Links,
    /// The list of the wheel slot the deadline falls in.
    expiry: Links,
}

const UNCHAINED: Chain = Chain {
    queue: UNLINKED,
    expiry: UNLINKED,
};

impl<K, V> Entry<K, V> {
    fn new(key: K, value: Option<V>, deadline: u64, queue: usize) -> Self {
        let main = if queue == MAIN { IN_MAIN } else { 0 };
        Entry {
            key,
            value,
            stamp: AtomicU64::new(deadline.min(MAX_DEADLINE) | main),
        }
    }

    #[inline(always)]
    fn stamp(&self) -> u64 {
        self.stamp.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn deadline(&self) -> u64 {
        self.stamp() & MAX_DEADLINE
    }

    #[inline(always)]
    fn visited(&self) -> bool {
        self.stamp() & VISITED != 0
    }

    #[inline(always)]
    fn queue(&self) -> usize {
        usize::from(self.stamp() & IN_MAIN != 0)
    }

    /// Marks the entry read. Only the first read after eviction passed writes: the line stays
    /// clean (shared between cores) for the reads after it.
    #[inline(always)]
    fn visit(&self) {
        let stamp = self.stamp();
        if stamp & VISITED == 0 {
            self.mark_visited(stamp);
        }
    }

    /// Sets the visited bit of `stamp`, the entry's stamp as just read. A plain store: under
    /// the shared lock only this bit changes, and every reader stores the same word.
    #[inline(always)]
    fn mark_visited(&self, stamp: u64) {
        self.stamp.store(stamp | VISITED, Ordering::Relaxed);
    }

    #[inline(always)]
    fn set_deadline(&mut self, deadline: u64) {
        let stamp = self.stamp.get_mut();
        *stamp = (*stamp & !MAX_DEADLINE) | deadline.min(MAX_DEADLINE);
    }

    #[inline(always)]
    fn set_visited(&mut self, visited: bool) {
        let stamp = self.stamp.get_mut();
        *stamp = if visited {
            *stamp | VISITED
        } else {
            *stamp & !VISITED
        };
    }

    #[inline(always)]
    fn set_queue(&mut self, queue: usize) {
        let stamp = self.stamp.get_mut();
        *stamp = if queue == MAIN {
            *stamp | IN_MAIN
        } else {
            *stamp & !IN_MAIN
        };
    }
}

/// Statistics counted under the shard's exclusive lock (hits and misses are counted per
/// thread, outside the shards: see `tally.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
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

/// How a full shard picks what to evict (the builder's `Eviction`, resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Policy {
    /// Exact LRU: a read moves its entry to the front of the queue (under the exclusive lock).
    Lru,
    /// CLOCK: one queue in insertion order; a read sets the visited bit; eviction gives a
    /// visited entry another turn at the front, with the bit cleared.
    SecondChance,
    /// S3-FIFO: new keys enter a small probationary queue (a tenth of the shard); one read
    /// there promotes a key to the main queue (CLOCK, as above) when eviction reaches it,
    /// none evicts it and remembers its hash in the ghost table; a key the ghost remembers
    /// goes straight to the main queue when it comes back.
    S3Fifo,
}

/// The shape of a shard, fixed at construction.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShardConfig {
    /// Entries kept before one is evicted.
    pub(super) capacity: usize,
    /// Whether a capacity was asked for: only then do reads maintain the eviction order.
    pub(super) bounded: bool,
    /// The eviction policy of a bounded shard.
    pub(super) policy: Policy,
    /// The wheel's tick in nanoseconds (at least 1).
    pub(super) tick: u64,
    /// The wheel's slot count, a power of two.
    pub(super) slots: usize,
}

/// The head, tail and length of one eviction queue.
#[derive(Clone, Copy, Debug)]
struct Queue {
    head: u32,
    tail: u32,
    len: usize,
}

const EMPTY_QUEUE: Queue = Queue {
    head: NIL,
    tail: NIL,
    len: 0,
};

/// A shard. See the module docs.
#[derive(Debug)]
pub(super) struct Shard<K, V> {
    /// Dense: a removal moves the last entry into the hole.
    entries: Vec<Entry<K, V>>,
    /// `chains[i]` links `entries[i]` into its lists; moved with it.
    chains: Vec<Chain>,
    index: HashTable<u32>,
    /// `[SMALL, MAIN]`. Only S3-FIFO uses the small queue.
    queues: [Queue; 2],
    /// S3-FIFO's small-queue share of the capacity (0 for the other policies).
    small_capacity: usize,
    /// S3-FIFO's ghost: fingerprints of keys recently evicted from the small queue, in a
    /// direct-mapped table of the capacity rounded up to a power of two (a newer ghost
    /// overwrites an older one in its slot, which is the forgetting; a false match only
    /// admits a new key to the main queue). Empty for the other policies, and until the
    /// shard first evicts.
    ghost: Box<[u16]>,
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
    pub(super) fn new(mut config: ShardConfig, now: u64, metrics: ShardMetrics) -> Self {
        let swept = now / config.tick;
        if !config.bounded {
            // Nothing is evicted: a read needs no more than the shared lock and its bit.
            config.policy = Policy::SecondChance;
        }
        let s3 = config.policy == Policy::S3Fifo;
        Shard {
            entries: Vec::new(),
            chains: Vec::new(),
            index: HashTable::new(),
            queues: [EMPTY_QUEUE; 2],
            small_capacity: if s3 { (config.capacity / 10).max(1) } else { 0 },
            // Allocated by the first eviction, when the shard holds its capacity anyway.
            ghost: Box::default(),
            config,
            wheel: vec![NIL; config.slots].into_boxed_slice(),
            swept,
            next_sweep_at: swept.saturating_add(1).saturating_mul(config.tick),
            counts: Counts::default(),
            metrics,
        }
    }

    /// Live and not yet reclaimed entries.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Heap bytes held by the slab and its chains, the index, the ghost table and the wheel.
    pub(super) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * mem::size_of::<Entry<K, V>>()
            + self.chains.capacity() * mem::size_of::<Chain>()
            + self.index.allocation_size()
            + self.ghost.len() * mem::size_of::<u16>()
            + self.wheel.len() * mem::size_of::<u32>()
    }

    /// Drops every entry (statistics are kept).
    pub(super) fn remove_all(&mut self) {
        self.metrics.entries_removed(self.len());
        self.entries = Vec::new();
        self.chains = Vec::new();
        self.index = HashTable::new();
        self.queues = [EMPTY_QUEUE; 2];
        self.wheel.fill(NIL);
    }

    /// Whether an operation at `now` must sweep first (under the exclusive lock).
    #[inline(always)]
    pub(super) fn sweep_due(&self, now: u64) -> bool {
        now >= self.next_sweep_at
    }
}

impl<K: Hash + Eq, V: Clone> Shard<K, V> {
    /// Looks `key` up at `now` under the shared lock: `Some` when that is enough (a live
    /// entry, marked visited; or no entry), `None` when the lookup needs the exclusive lock
    /// ([`get`](Shard::get)): a sweep is due, the entry expired (it is removed and counted),
    /// or exact LRU must move it.
    #[inline(always)]
    pub(super) fn get_shared<Q>(&self, hash: u64, key: &Q, now: u64) -> Option<Found<V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.sweep_due(now) {
            return None;
        }
        let Some(idx) = self.find(hash, key) else {
            return Some(Found::Absent);
        };
        let entry = self.entry(idx);
        // One load of the stamp for the deadline and the visited bit.
        let stamp = entry.stamp();
        if stamp & MAX_DEADLINE <= now || self.config.policy == Policy::Lru {
            return None;
        }
        if stamp & VISITED == 0 {
            entry.mark_visited(stamp);
        }
        Some(Found::Live(entry.value.clone()))
    }

    /// Looks `key` up at `now` under the exclusive lock: a live entry is marked used; an
    /// expired one is removed (counted as an expiration). `key` is the key or a form it
    /// borrows as, `hash` the hash of either (they hash alike).
    pub(super) fn get<Q>(&mut self, hasher: &KeyHasher, hash: u64, key: &Q, now: u64) -> Found<V>
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
        if self.config.policy == Policy::Lru {
            self.promote(idx);
        } else {
            self.entry(idx).visit();
        }
        Found::Live(self.entry(idx).value.clone())
    }

    /// Whether `key` has a live entry with a value at `now`; touches neither the eviction
    /// order nor statistics.
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

    /// Stores `value` for `key` until `deadline`; returns the value it replaces, if that one
    /// was live. A deadline not after `now` stores nothing (and removes the key). A new key
    /// enters its eviction queue at the front; re-setting a key counts as a use of it (LRU
    /// and second chance move it to the front, S3-FIFO marks it visited).
    pub(super) fn insert(
        &mut self,
        hasher: &KeyHasher,
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
            // there. Only an earlier tick needs the list surgery now (and only an earlier
            // deadline can be in one: the divisions are skipped otherwise).
            if deadline < old_deadline
                && deadline / self.config.tick < old_deadline / self.config.tick
            {
                self.unlink_expiry(idx);
                self.link_expiry(idx, deadline);
            }
            let policy = self.config.policy;
            let entry = self.entry_mut(idx);
            entry.set_deadline(deadline);
            let old = mem::replace(&mut entry.value, value);
            if policy == Policy::S3Fifo {
                entry.set_visited(true);
            } else {
                entry.set_visited(false);
                self.promote(idx);
            }
            return (old_deadline > now).then_some(old);
        }
        if deadline <= now {
            return None;
        }
        if self.len() >= self.config.capacity {
            self.evict_one(hasher);
        }
        let queue = if self.small_capacity > 0 && !self.forget_ghost(hash) {
            SMALL
        } else {
            MAIN
        };
        let idx = self.allocate(Entry::new(key, value, deadline, queue));
        let entries = &self.entries;
        self.index
            .insert_unique(hash, idx, |&i| hasher.hash_one(&occupied(entries, i).key));
        self.metrics.entry_added();
        self.push_front(queue, idx);
        self.link_expiry(idx, deadline.min(MAX_DEADLINE));
        None
    }

    /// Removes `key`; returns its value if it was live at `now`.
    pub(super) fn remove<Q>(
        &mut self,
        hasher: &KeyHasher,
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
        self.shrink_if_sparse(hasher);
        removed
    }

    /// Reclaims the entries whose deadline passed in a tick that is over at `now`.
    pub(super) fn sweep_if_due(&mut self, hasher: &KeyHasher, now: u64) {
        if self.sweep_due(now) {
            self.sweep(hasher, now);
        }
    }

    fn sweep(&mut self, hasher: &KeyHasher, now: u64) {
        let due = now / self.config.tick;
        // Ticks before `due` are over. A gap of a whole turn or more visits every slot once.
        let whole_turn = due.saturating_sub(self.swept) >= self.wheel.len() as u64;
        let ticks = due.saturating_sub(self.swept).min(self.wheel.len() as u64);
        let mask = self.wheel.len() as u64 - 1;
        for t in self.swept..self.swept + ticks {
            let mut idx = self.wheel[(t & mask) as usize];
            while idx != NIL {
                let mut next = self.chain(idx).expiry.next;
                let deadline = self.entry(idx).deadline();
                // Reclaimed once its deadline's tick is over, wherever the entry sat (an entry
                // re-set into the tick still running waits for that tick, as it would in the
                // slot its deadline names); after a whole turn, everything expired goes.
                if deadline / self.config.tick < due || (whole_turn && deadline <= now) {
                    let last = (self.len() - 1) as u32;
                    self.remove_at(hasher, idx);
                    // The removal moved the last entry into `idx`.
                    if next == last {
                        next = idx;
                    }
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
        self.shrink_if_sparse(hasher);
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
            Some(entry) => entry,
            None => unreachable!("linked slot {idx} is past the slab"),
        }
    }

    #[inline(always)]
    fn chain(&self, idx: u32) -> &Chain {
        match self.chains.get(idx as usize) {
            Some(chain) => chain,
            None => unreachable!("linked slot {idx} is past the slab"),
        }
    }

    #[inline(always)]
    fn chain_mut(&mut self, idx: u32) -> &mut Chain {
        match self.chains.get_mut(idx as usize) {
            Some(chain) => chain,
            None => unreachable!("linked slot {idx} is past the slab"),
        }
    }

    fn allocate(&mut self, entry: Entry<K, V>) -> u32 {
        // `capacity` is at most MAX_PER_SHARD, so the index always fits below HEAD.
        let idx = self.entries.len() as u32;
        if self.config.bounded && self.entries.capacity() == 0 {
            // A bounded shard knows its final size: one allocation, no doubling slack, up to
            // FIRST_CHUNK entries (3 MiB for `u64 -> u64`); a larger shard doubles from
            // there as it fills, so a huge capacity costs what the cache holds.
            let first = self.config.capacity.min(FIRST_CHUNK);
            self.entries.reserve_exact(first);
            self.chains.reserve_exact(first);
        }
        self.entries.push(entry);
        self.chains.push(UNCHAINED);
        idx
    }

    /// Unlinks and removes entry `idx`; returns it. The last entry of the slab moves into
    /// `idx` (its links and its index slot follow it).
    fn remove_at(&mut self, hasher: &KeyHasher, idx: u32) -> Entry<K, V> {
        self.unlink_queue(idx);
        self.unlink_expiry(idx);
        let hash = hasher.hash_one(&self.entry(idx).key);
        if let Ok(found) = self.index.find_entry(hash, |&i| i == idx) {
            found.remove();
        }
        self.metrics.entries_removed(1);
        let last = (self.entries.len() - 1) as u32;
        if idx != last {
            self.relink(hasher, last, idx);
        }
        self.chains.swap_remove(idx as usize);
        self.entries.swap_remove(idx as usize)
    }

    /// Points everything that points at entry `from` (its queue and expiry neighbours, the
    /// wheel, its index slot) at `to`, where `swap_remove` is about to move it.
    fn relink(&mut self, hasher: &KeyHasher, from: u32, to: u32) {
        let Chain { queue, expiry } = *self.chain(from);
        let entry = self.entry(from);
        let queue_id = entry.queue();
        let hash = hasher.hash_one(&entry.key);
        if let Some(slot) = self.index.find_mut(hash, |&i| i == from) {
            *slot = to;
        }
        if queue.prev == NIL {
            self.queues[queue_id].head = to;
        } else {
            self.chain_mut(queue.prev).queue.next = to;
        }
        if queue.next == NIL {
            self.queues[queue_id].tail = to;
        } else {
            self.chain_mut(queue.next).queue.prev = to;
        }
        if expiry.prev & HEAD != 0 {
            self.wheel[(expiry.prev & !HEAD) as usize] = to;
        } else if expiry.prev != NIL {
            self.chain_mut(expiry.prev).expiry.next = to;
        }
        if expiry.next != NIL {
            self.chain_mut(expiry.next).expiry.prev = to;
        }
    }

    /// Evicts one entry by the shard's policy. Visited entries met at a queue's tail get
    /// their bit cleared and another turn (S3-FIFO: in the main queue) instead; each is
    /// passed over at most once, so this ends within `2 × len` steps.
    fn evict_one(&mut self, hasher: &KeyHasher) {
        loop {
            let small = &self.queues[SMALL];
            let from = if small.len > 0
                && (small.len >= self.small_capacity || self.queues[MAIN].len == 0)
            {
                SMALL
            } else {
                MAIN
            };
            let tail = self.queues[from].tail;
            if tail == NIL {
                return;
            }
            if self.config.policy != Policy::Lru && self.entry(tail).visited() {
                self.unlink_queue(tail);
                let entry = self.entry_mut(tail);
                entry.set_visited(false);
                entry.set_queue(MAIN);
                self.push_front(MAIN, tail);
                continue;
            }
            if from == SMALL {
                let hash = hasher.hash_one(&self.entry(tail).key);
                self.remember_ghost(hash);
            }
            self.remove_at(hasher, tail);
            self.counts.evictions += 1;
            self.metrics.evicted();
            return;
        }
    }

    // ---- S3-FIFO's ghost ------------------------------------------------------------------

    /// The ghost slot and fingerprint of `hash` (a multiply mixes every bit into the
    /// fingerprint; 0 marks an empty slot).
    #[inline(always)]
    fn ghost_slot(&self, hash: u64) -> (usize, u16) {
        let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = (mixed >> 20) as usize & (self.ghost.len() - 1);
        (slot, ((mixed >> 48) as u16).max(1))
    }

    fn remember_ghost(&mut self, hash: u64) {
        if self.ghost.is_empty() {
            self.ghost = vec![0; self.config.capacity.next_power_of_two()].into_boxed_slice();
        }
        let (slot, print) = self.ghost_slot(hash);
        self.ghost[slot] = print;
    }

    /// Whether the ghost remembers `hash`; forgets it if so.
    fn forget_ghost(&mut self, hash: u64) -> bool {
        if self.ghost.is_empty() {
            return false;
        }
        let (slot, print) = self.ghost_slot(hash);
        let hit = self.ghost[slot] == print;
        if hit {
            self.ghost[slot] = 0;
        }
        hit
    }

    // ---- eviction queues ------------------------------------------------------------------

    /// Moves `idx` to the front of its queue.
    #[inline(always)]
    fn promote(&mut self, idx: u32) {
        let queue = self.entry(idx).queue();
        if self.queues[queue].head != idx {
            self.unlink_queue(idx);
            self.push_front(queue, idx);
        }
    }

    #[inline(always)]
    fn push_front(&mut self, queue: usize, idx: u32) {
        let old_head = self.queues[queue].head;
        self.chain_mut(idx).queue = Links {
            prev: NIL,
            next: old_head,
        };
        if old_head == NIL {
            self.queues[queue].tail = idx;
        } else {
            self.chain_mut(old_head).queue.prev = idx;
        }
        self.queues[queue].head = idx;
        self.queues[queue].len += 1;
    }

    #[inline(always)]
    fn unlink_queue(&mut self, idx: u32) {
        let queue = self.entry(idx).queue();
        let Links { prev, next } = self.chain(idx).queue;
        // A corrupted list would make eviction loop forever: fail loudly in tests instead.
        debug_assert!(prev == NIL || self.chain(prev).queue.next == idx);
        debug_assert!(prev != NIL || self.queues[queue].head == idx);
        debug_assert!(next == NIL || self.chain(next).queue.prev == idx);
        debug_assert!(next != NIL || self.queues[queue].tail == idx);
        if prev == NIL {
            self.queues[queue].head = next;
        } else {
            self.chain_mut(prev).queue.next = next;
        }
        if next == NIL {
            self.queues[queue].tail = prev;
        } else {
            self.chain_mut(next).queue.prev = prev;
        }
        self.queues[queue].len -= 1;
        self.chain_mut(idx).queue = UNLINKED;
    }

    // ---- expiry wheel ---------------------------------------------------------------------

    fn slot_of(&self, deadline: u64) -> usize {
        ((deadline / self.config.tick) & (self.wheel.len() as u64 - 1)) as usize
    }

    fn link_expiry(&mut self, idx: u32, deadline: u64) {
        let slot = self.slot_of(deadline);
        let old_head = self.wheel[slot];
        self.chain_mut(idx).expiry = Links {
            prev: HEAD | slot as u32,
            next: old_head,
        };
        if old_head != NIL {
            self.chain_mut(old_head).expiry.prev = idx;
        }
        self.wheel[slot] = idx;
    }

    fn unlink_expiry(&mut self, idx: u32) {
        let Links { prev, next } = self.chain(idx).expiry;
        debug_assert!(prev & HEAD == 0 || self.wheel[(prev & !HEAD) as usize] == idx);
        debug_assert!(prev & HEAD != 0 || self.chain(prev).expiry.next == idx);
        debug_assert!(next == NIL || self.chain(next).expiry.prev == idx);
        if prev & HEAD != 0 {
            self.wheel[(prev & !HEAD) as usize] = next;
        } else {
            self.chain_mut(prev).expiry.next = next;
        }
        if next != NIL {
            self.chain_mut(next).expiry.prev = prev;
        }
        self.chain_mut(idx).expiry = UNLINKED;
    }

    // ---- memory ---------------------------------------------------------------------------

    /// Gives memory back once three quarters of the slab are unused (after mass expiry or
    /// removal). The slab is dense, so this is a reallocation, no relinking; each one is paid
    /// for by the removals that emptied the slab, so it is O(1) amortised.
    fn shrink_if_sparse(&mut self, hasher: &KeyHasher) {
        let slots = self.entries.capacity();
        if slots < SHRINK_MIN_SLOTS || self.len() > slots / 4 {
            return;
        }
        self.entries.shrink_to(self.len() * 2);
        self.chains.shrink_to(self.len() * 2);
        let entries = &self.entries;
        self.index
            .shrink_to(self.len(), |&i| hasher.hash_one(&occupied(entries, i).key));
    }
}

/// A shard dropped with its cache holds nothing any more.
impl<K, V> Drop for Shard<K, V> {
    fn drop(&mut self) {
        self.metrics.entries_removed(self.entries.len());
    }
}

impl<K, V> Entry<K, V> {
    /// The value, if the entry was still live at `now`.
    fn live_value(self, now: u64) -> Option<Option<V>> {
        (self.deadline() > now).then_some(self.value)
    }
}

/// Entry `idx` of `entries`. Every index in the table and every link points into the slab;
/// one past it here is a bug in this module.
#[inline(always)]
fn occupied<K, V>(entries: &[Entry<K, V>], idx: u32) -> &Entry<K, V> {
    match entries.get(idx as usize) {
        Some(entry) => entry,
        None => unreachable!("linked slot {idx} is past the slab"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard_with(capacity: usize, policy: Policy) -> (Shard<u64, u64>, KeyHasher) {
        let config = ShardConfig {
            capacity,
            bounded: true,
            policy,
            tick: 10,
            slots: 8,
        };
        (
            Shard::new(config, 0, ShardMetrics::none()),
            KeyHasher::with_seed(1, foldhash::SharedSeed::global_fixed()),
        )
    }

    fn shard(capacity: usize) -> (Shard<u64, u64>, KeyHasher) {
        shard_with(capacity, Policy::Lru)
    }

    fn put(s: &mut Shard<u64, u64>, h: &KeyHasher, k: u64, deadline: u64, now: u64) {
        s.insert(h, h.hash_one(k), k, Some(k * 10), deadline, now);
    }

    fn get(s: &mut Shard<u64, u64>, h: &KeyHasher, k: u64, now: u64) -> Option<u64> {
        match s.get(h, h.hash_one(k), &k, now) {
            Found::Live(v) => v,
            Found::Absent => None,
        }
    }

    /// Every link, queue length and index slot agrees with the slab.
    fn check(s: &Shard<u64, u64>, h: &KeyHasher) {
        let mut seen = 0;
        for (q, queue) in s.queues.iter().enumerate() {
            let (mut idx, mut prev, mut len) = (queue.head, NIL, 0);
            while idx != NIL {
                let (e, chain) = (s.entry(idx), s.chain(idx));
                assert_eq!(chain.queue.prev, prev);
                assert_eq!(e.queue(), q);
                prev = idx;
                idx = chain.queue.next;
                len += 1;
            }
            assert_eq!(queue.tail, prev);
            assert_eq!(queue.len, len);
            seen += len;
        }
        assert_eq!(seen, s.len());
        assert_eq!(s.chains.len(), s.len());
        for (i, e) in s.entries.iter().enumerate() {
            assert_eq!(s.find(h.hash_one(e.key), &e.key), Some(i as u32));
        }
    }

    #[test]
    fn an_entry_is_32_bytes_and_its_chain_16_for_u64_keys_and_values() {
        assert_eq!(mem::size_of::<Entry<u64, u64>>(), 32);
        assert_eq!(mem::size_of::<Chain>(), 16);
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
        check(&s, &h);
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
        check(&s, &h);
    }

    #[test]
    fn a_sparse_slab_gives_memory_back_and_keeps_the_eviction_order() {
        let (mut s, h) = shard(1000);
        for k in 0..200 {
            put(&mut s, &h, k, if k < 190 { 15 } else { 500 }, 0);
        }
        let before = s.allocated_bytes();
        s.sweep_if_due(&h, 20);
        assert_eq!(s.len(), 10);
        check(&s, &h);
        assert!(
            s.allocated_bytes() < before,
            "{} !< {before}",
            s.allocated_bytes()
        );
        // The eviction order survived: 190 is the oldest and goes first.
        s.config.capacity = 10;
        put(&mut s, &h, 1000, 500, 20);
        assert_eq!(get(&mut s, &h, 190, 20), None);
        assert_eq!(get(&mut s, &h, 191, 20), Some(1910));
        check(&s, &h);
    }

    #[test]
    fn s3fifo_evicts_one_hit_wonders_before_keys_read_again() {
        let (mut s, h) = shard_with(20, Policy::S3Fifo);
        assert_eq!(s.small_capacity, 2);
        for k in 0..20 {
            put(&mut s, &h, k, 1000, 0);
        }
        for k in 0..10 {
            assert_eq!(get(&mut s, &h, k, 0), Some(k * 10));
        }
        // A stream of new keys read once: each evicts a key nobody read, never 0..10.
        for k in 100..200 {
            put(&mut s, &h, k, 1000, 0);
            check(&s, &h);
        }
        for k in 0..10 {
            assert_eq!(get(&mut s, &h, k, 0), Some(k * 10), "key {k}");
        }
        assert_eq!(s.len(), 20);
    }

    #[test]
    fn s3fifo_sends_a_key_the_ghost_remembers_to_the_main_queue() {
        let (mut s, h) = shard_with(10, Policy::S3Fifo);
        for k in 0..11 {
            put(&mut s, &h, k, 1000, 0); // 0 is evicted from the small queue: a ghost
        }
        assert_eq!(get(&mut s, &h, 0, 0), None);
        put(&mut s, &h, 0, 1000, 0);
        assert_eq!(s.entry(s.find(h.hash_one(0), &0).unwrap()).queue(), MAIN);
        check(&s, &h);
    }

    #[test]
    fn removals_move_the_last_entry_with_all_its_links() {
        for policy in [Policy::Lru, Policy::SecondChance, Policy::S3Fifo] {
            let (mut s, h) = shard_with(50, policy);
            let mut rng = 7u64;
            for step in 0..5_000u64 {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = (rng >> 33) % 80;
                let now = step / 10;
                match (rng >> 20) % 4 {
                    0 => {
                        s.remove(&h, h.hash_one(k), &k, now);
                    }
                    1 => {
                        get(&mut s, &h, k, now);
                    }
                    _ => put(&mut s, &h, k, now + 1 + (rng >> 40) % 300, now),
                }
                check(&s, &h);
            }
        }
    }
}
