//! The entry store: one `Vec` slot per timer, recycled through a free list, with the slot
//! lists threaded through the entries (no allocation per timer).

use std::num::NonZeroU64;

/// "No entry" in a link.
pub(crate) const NIL: u32 = u32::MAX;

/// Links at or above this value are not entry indices but "this entry is the head of wheel
/// slot `link - SLOT_TAG`": removing an entry then finds the slot head to update without
/// storing the slot in every entry.
pub(crate) const SLOT_TAG: u32 = 0xFFFF_0000;

/// The most entries a wheel can hold (indices below [`SLOT_TAG`]).
pub(crate) const MAX_ENTRIES: usize = SLOT_TAG as usize;

/// One timer. 32 bytes for `u64` keys and values: key, value, deadline, two links.
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The tick it fires on. Never zero (the wheel starts at tick 0 and deadlines are later),
    /// which gives `Option<Entry>` a niche: a vacant slot costs no tag.
    pub(crate) deadline: NonZeroU64,
    pub(crate) next: u32,
    /// The previous entry in the slot list, or `SLOT_TAG + slot id` for the list's head.
    pub(crate) prev: u32,
}

/// Entries by index; vacant slots are listed in `free` and reused first.
#[derive(Debug)]
pub(crate) struct Slab<K, V> {
    entries: Vec<Option<Entry<K, V>>>,
    free: Vec<u32>,
}

impl<K, V> Slab<K, V> {
    pub(crate) fn with_capacity(capacity: usize) -> Slab<K, V> {
        Slab {
            entries: Vec::with_capacity(capacity),
            free: Vec::new(),
        }
    }

    /// Live entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Slots, live or vacant.
    #[inline]
    pub(crate) fn slots(&self) -> usize {
        self.entries.len()
    }

    /// Stores `entry`; `None` if the wheel already holds [`MAX_ENTRIES`].
    #[inline]
    pub(crate) fn insert(&mut self, entry: Entry<K, V>) -> Option<u32> {
        if let Some(idx) = self.free.pop() {
            self.entries[idx as usize] = Some(entry);
            return Some(idx);
        }
        if self.entries.len() >= MAX_ENTRIES {
            return None;
        }
        self.entries.push(Some(entry));
        Some((self.entries.len() - 1) as u32)
    }

    #[inline]
    pub(crate) fn take(&mut self, idx: u32) -> Entry<K, V> {
        let entry = self.entries[idx as usize]
            .take()
            .expect("slab index of a live entry");
        self.free.push(idx);
        entry
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &Entry<K, V> {
        self.entries[idx as usize]
            .as_ref()
            .expect("slab index of a live entry")
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut Entry<K, V> {
        self.entries[idx as usize]
            .as_mut()
            .expect("slab index of a live entry")
    }

    /// Takes every live entry out and releases the storage.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = Entry<K, V>> {
        self.free = Vec::new();
        std::mem::take(&mut self.entries).into_iter().flatten()
    }

    /// Replaces the contents with `entries` (already linked for their new indices), sized to
    /// them: how the wheel gives memory back after many timers fired or were removed.
    pub(crate) fn replace(&mut self, entries: Vec<Option<Entry<K, V>>>) {
        self.entries = entries;
        self.free = Vec::new();
    }

    /// Bytes held by the store (entries and free list), for the memory accounting tests.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Option<Entry<K, V>>>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_u64_pairs_take_32_bytes_even_when_optional() {
        assert_eq!(std::mem::size_of::<Option<Entry<u64, u64>>>(), 32);
        assert_eq!(std::mem::size_of::<Option<Entry<u64, ()>>>(), 24);
    }

    #[test]
    fn vacant_slots_are_reused_first() {
        let mut slab = Slab::with_capacity(2);
        let entry = |k| Entry {
            key: k,
            value: (),
            deadline: NonZeroU64::MIN,
            next: NIL,
            prev: NIL,
        };
        let a = slab.insert(entry(1)).unwrap();
        let b = slab.insert(entry(2)).unwrap();
        assert_eq!(slab.take(a).key, 1);
        assert_eq!(slab.len(), 1);
        let c = slab.insert(entry(3)).unwrap();
        assert_eq!(c, a);
        assert_eq!(slab.get(b).key, 2);
        assert_eq!(slab.slots(), 2);
    }
}
