//! Where a deadline goes: the level and slot arithmetic of the hierarchical wheel.
//!
//! Level `l` has `2^bits` slots, each covering `2^(l·bits)` ticks, so level 0 holds the next
//! `2^bits` ticks one per slot and every level above covers `2^bits` times the one below. A
//! deadline lives on the lowest level whose slot still tells it apart from "now": the level
//! of the highest bit group in which the deadline and the wheel's `elapsed` differ. When a
//! slot on level `l > 0` comes due, its entries move down (cascade) to lower levels.

/// The shape of a wheel: slots per level (a power of two, `2^bits`) and the number of levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// log2 of the slots per level, 1..=6 (one `u64` occupancy bitmap per level).
    bits: u32,
    /// Number of levels.
    levels: u32,
}

impl Geometry {
    pub(crate) const fn new(bits: u32, levels: u32) -> Geometry {
        Geometry { bits, levels }
    }

    #[inline]
    pub(crate) const fn levels(self) -> usize {
        self.levels as usize
    }

    #[inline]
    pub(crate) const fn slots_per_level(self) -> usize {
        1 << self.bits
    }

    #[inline]
    const fn slot_mask(self) -> u64 {
        (1 << self.bits) - 1
    }

    /// How far beyond `elapsed` a deadline may lie (inclusive): the span of the whole wheel
    /// less one top-level slot. The margin keeps a far deadline out of the top-level slot
    /// `elapsed` is in (which would read as due now, a turn early): with `elapsed` at offset
    /// `e < slot` in its top-level slot `k`, `elapsed + range` lies at offset `e` of slot
    /// `k + slots − 1`, the last one before `k` comes round again.
    #[inline]
    pub(crate) const fn range(self) -> u64 {
        let total = self.bits * self.levels;
        let top_slot = 1u64 << (self.bits * (self.levels - 1));
        let span = if total >= 64 { u64::MAX } else { 1 << total };
        span - top_slot
    }

    /// The level a `deadline` (> `elapsed`, within `range`) belongs on.
    #[inline]
    pub(crate) fn level_for(self, elapsed: u64, deadline: u64) -> usize {
        // OR-ing the slot mask makes "differs only in the lowest group" (and equal) land on
        // level 0 rather than a negative level.
        let masked = (elapsed ^ deadline) | self.slot_mask();
        let significant = 63 - masked.leading_zeros();
        ((significant / self.bits) as usize).min(self.levels() - 1)
    }

    /// The slot of `deadline` on `level`.
    #[inline]
    pub(crate) fn slot_for(self, level: usize, deadline: u64) -> usize {
        ((deadline >> (level as u32 * self.bits)) & self.slot_mask()) as usize
    }

    /// The first tick of the earliest occupied slot of `level`, given its occupancy bitmap
    /// (bit `s` set = slot `s` holds entries) and `elapsed`; with the slot's index.
    ///
    /// Every occupied slot starts after `elapsed` (entries are placed after it, and `poll`
    /// never moves `elapsed` past an occupied slot's start), so the search starts just after
    /// the slot `elapsed` is in and wraps round the level: one rotate and one
    /// `trailing_zeros`, no scan.
    #[inline]
    pub(crate) fn next_in_level(
        self,
        level: usize,
        occupied: u64,
        elapsed: u64,
    ) -> Option<(usize, u64)> {
        if occupied == 0 {
            return None;
        }
        let shift = level as u32 * self.bits;
        let slot_ticks = 1u64 << shift;
        let level_ticks = slot_ticks << self.bits;
        let n = self.slots_per_level() as u32;
        let current = ((elapsed >> shift) & self.slot_mask()) as u32;
        // Rotate right by `current` within an n-bit ring, so bit 0 is the current slot.
        let rotated = if n == 64 {
            occupied.rotate_right(current)
        } else {
            let ring = (1u64 << n) - 1;
            ((occupied >> current) | (occupied << (n - current))) & ring
        };
        let ahead = rotated.trailing_zeros();
        let slot = (current + ahead) & (n - 1);
        let level_start = elapsed & !(level_ticks.wrapping_sub(1));
        let mut start = level_start.wrapping_add(slot as u64 * slot_ticks);
        if start <= elapsed && ahead != 0 {
            // The slot is on the next turn of this level.
            start = start.wrapping_add(level_ticks);
        }
        Some((slot as usize, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_split_by_the_highest_differing_group() {
        let g = Geometry::new(6, 6);
        assert_eq!(g.level_for(0, 1), 0);
        assert_eq!(g.level_for(0, 63), 0);
        assert_eq!(g.level_for(0, 64), 1);
        assert_eq!(g.level_for(0, 4095), 1);
        assert_eq!(g.level_for(0, 4096), 2);
        assert_eq!(
            g.level_for(63, 64),
            1,
            "crossing a level-0 boundary needs level 1"
        );
        assert_eq!(g.level_for(64, 127), 0);
        assert_eq!(g.range(), (1 << 36) - (1 << 30));
    }

    #[test]
    fn slots_and_next_expiration() {
        let g = Geometry::new(6, 6);
        assert_eq!(g.slot_for(0, 5), 5);
        assert_eq!(g.slot_for(1, 64 * 3 + 7), 3);
        // Level 0, elapsed 10, slots 12 and 3 (3 is on the next turn: tick 67).
        let occ = (1 << 12) | (1 << 3);
        assert_eq!(g.next_in_level(0, occ, 10), Some((12, 12)));
        assert_eq!(g.next_in_level(0, 1 << 3, 10), Some((3, 67)));
        // Level 1 slot 2 starts at tick 128.
        assert_eq!(g.next_in_level(1, 1 << 2, 70), Some((2, 128)));
        assert_eq!(g.next_in_level(1, 0, 70), None);
    }

    #[test]
    fn small_levels_rotate_within_their_ring() {
        let g = Geometry::new(2, 3); // 4 slots per level, 64 ticks in all
        assert_eq!(g.range(), 64 - 16);
        assert_eq!(g.level_for(0, 3), 0);
        assert_eq!(g.level_for(0, 4), 1);
        assert_eq!(g.level_for(0, 63), 2);
        assert_eq!(g.next_in_level(0, 1 << 1, 2), Some((1, 5)));
        assert_eq!(g.next_in_level(0, 1 << 3, 2), Some((3, 3)));
    }
}
