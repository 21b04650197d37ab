//! The keys in flight: [`SHARDS`] mutex-protected hash tables, the shard picked by the key's
//! hash so that unrelated keys rarely meet on one lock.
//!
//! # Ground rules
//!
//! - A [`Slot`] exists exactly while its flight does. It is inserted by the caller that finds
//!   no slot (the leader) and removed either by whoever ends the flight (its leader, on
//!   success, error or panic) or, for a leaderless flight nobody waits for any more, by the
//!   last follower to leave.
//! - Removal goes by the slot's `id`, never by key equality: no user code runs on removal, the
//!   key need not be cloned, and a stale handle cannot remove a newer flight of the same key.
//! - Lock order: a shard's lock, then a call's lock (see `call.rs`), never the reverse.

use std::hash::Hash;

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;

use super::call::Call;
use crate::sync::{Arc, Mutex, lock};

/// The number of shards: a power of two, enough that a handful of threads on distinct keys
/// seldom share a lock.
pub(super) const SHARDS: usize = 16;

/// Give a shard's table back to the allocator once it is empty and larger than this.
const SHRINK_ABOVE: usize = 1024;

/// One key in flight.
pub(super) struct Slot<K, V, E> {
    /// The key's hash, kept so the table can grow without calling user code.
    hash: u64,
    /// Unique within its shard; identifies the flight for removal.
    id: u64,
    key: K,
    /// The state followers wait on, allocated by the first follower; `None` while the leader
    /// runs alone (the uncontended path allocates nothing).
    pub(super) call: Option<Arc<Call<V, E>>>,
}

/// One shard: its table and the next flight id.
pub(super) struct Shard<K, V, E> {
    slots: HashTable<Slot<K, V, E>>,
    next_id: u64,
}

/// Where a caller landed: a new flight, or an existing one.
pub(super) enum Found<'a, K, V, E> {
    /// No flight for the key: one was inserted with this id, and the caller leads it.
    Inserted(u64),
    /// A flight is running (or leaderless); the caller may join it.
    Existing(&'a mut Slot<K, V, E>),
}

impl<K, V, E> Slot<K, V, E> {
    /// The flight's id.
    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

impl<K, V, E> Shard<K, V, E> {
    /// Finds the flight for `key`, or inserts a new one.
    pub(super) fn find_or_insert(&mut self, hash: u64, key: K) -> Found<'_, K, V, E>
    where
        K: Eq,
    {
        let entry = self
            .slots
            .entry(hash, |slot| slot.key == key, |slot| slot.hash);
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => Found::Existing(found.into_mut()),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let id = self.next_id;
                // 2^64 flights per shard cannot happen; wrapping keeps the build panic-free.
                self.next_id = self.next_id.wrapping_add(1);
                vacant.insert(Slot {
                    hash,
                    id,
                    key,
                    call: None,
                });
                Found::Inserted(id)
            }
        }
    }

    /// The call followers of flight `id` wait on, if any has arrived.
    pub(super) fn call(&self, hash: u64, id: u64) -> Option<Arc<Call<V, E>>> {
        let slot = self.slots.find(hash, |slot| slot.id == id);
        debug_assert!(slot.is_some(), "a live flight has a slot");
        slot.and_then(|slot| slot.call.clone())
    }

    /// Removes flight `id`, returning its followers' call if any arrived.
    pub(super) fn remove(&mut self, hash: u64, id: u64) -> Option<Arc<Call<V, E>>> {
        let Ok(found) = self.slots.find_entry(hash, |slot| slot.id == id) else {
            debug_assert!(false, "a flight is removed once");
            return None;
        };
        let (slot, _) = found.remove();
        if self.slots.is_empty() && self.slots.capacity() > SHRINK_ABOVE {
            self.slots.shrink_to(0, |slot| slot.hash);
        }
        slot.call
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// The followers waiting on `key`'s flight (0 if none is in flight).
    pub(super) fn waiting(&self, hash: u64, key: &K) -> usize
    where
        K: Eq,
    {
        self.slots
            .find(hash, |slot| slot.key == *key)
            .and_then(|slot| slot.call.as_ref())
            .map_or(0, |call| call.waiting())
    }
}

/// A shard behind its lock, alone on its cache line(s) so that shards do not false-share.
type Locked<K, V, E> = CachePadded<Mutex<Shard<K, V, E>>>;

/// The sharded table and its hasher.
pub(super) struct Shards<K, V, E> {
    hasher: ahash::RandomState,
    shards: Box<[Locked<K, V, E>]>,
}

impl<K, V, E> Shards<K, V, E> {
    pub(super) fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    slots: HashTable::new(),
                    next_id: 0,
                }))
            })
            .collect();
        Self {
            hasher: ahash::RandomState::new(),
            shards,
        }
    }

    /// The key's hash: picks the shard and the bucket within it.
    #[inline]
    pub(super) fn hash(&self, key: &K) -> u64
    where
        K: Hash,
    {
        self.hasher.hash_one(key)
    }

    /// The shard of `hash`. hashbrown uses the low bits for the bucket and the top seven for
    /// its control bytes, so the shard comes from bits in between.
    #[inline]
    pub(super) fn shard(&self, hash: u64) -> &Mutex<Shard<K, V, E>> {
        &self.shards[(hash >> 48) as usize % SHARDS]
    }

    /// The number of keys in flight (each shard read under its lock, not one snapshot).
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}
