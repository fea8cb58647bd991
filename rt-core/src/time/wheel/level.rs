//! One level of the hierarchical timing wheel: 64 slots, each a list of
//! entries, plus a bitmask of the non-empty slots.
//!
//! Level `n` splits time into slots of `64^n` ticks; the 64 slots of a level
//! together cover `64^(n + 1)` ticks (the level's *range*). An entry sits at
//! level `n` when its deadline first differs from the wheel's `elapsed` tick in
//! the `n`-th group of 6 bits (see [`level_for`]), so the slot it sits in is
//! always strictly after `elapsed`'s own slot within the current range of the
//! level. The only exception is the top level, which also holds deadlines in
//! the *next* range (the wheel keeps deadlines at most [`MAX_DURATION`] ahead,
//! i.e. within one rotation of the top level): those sit in slots at or before
//! `elapsed`'s slot and are found after the slots still ahead in this range.

use super::slab::{List, Slab};
#[cfg(doc)]
use super::MAX_DURATION;
use super::{LEVEL_MULT, NUM_LEVELS};

/// Bits of a tick taken by one level's slot number.
const SLOT_BITS: u32 = 6;

/// Mask of a slot number within a level.
const SLOT_MASK: u64 = LEVEL_MULT - 1;

/// Number of slots in a level.
const NUM_SLOTS: usize = LEVEL_MULT as usize;

/// The earliest non-empty slot of a level and the tick at which it must be
/// processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expiration {
    /// Level of the slot.
    pub(super) level: usize,
    /// Slot number within the level.
    pub(super) slot: usize,
    /// First tick covered by the slot: its entries fire (deadline reached) or
    /// cascade to lower levels at this tick.
    pub(super) deadline: u64,
}

/// One level of the wheel.
#[derive(Debug)]
pub(super) struct Level {
    /// Which level this is (0 = finest).
    level: usize,
    /// Bit `i` is set exactly when `slots[i]` is non-empty.
    occupied: u64,
    /// One list of entries per slot.
    slots: [List; NUM_SLOTS],
}

/// Number of ticks covered by one slot of `level`: `64^level`.
#[cfg(all(test, not(loom)))]
pub(super) fn slot_range(level: usize) -> u64 {
    1 << (SLOT_BITS as usize * level)
}

/// Number of ticks covered by a whole `level` (its 64 slots): `64^(level + 1)`.
#[inline]
pub(super) fn level_range(level: usize) -> u64 {
    1 << (SLOT_BITS as usize * (level + 1))
}

/// The level at which an entry due at `deadline` is stored when time has been
/// processed up to `elapsed`: the highest 6-bit group in which the two differ,
/// i.e. `floor(log2((elapsed ^ deadline) | 63) / 6)`, clamped to the top level.
#[inline]
pub(super) fn level_for(elapsed: u64, deadline: u64) -> usize {
    let masked = (elapsed ^ deadline) | SLOT_MASK;
    let significant = 63 - masked.leading_zeros() as usize;
    (significant / SLOT_BITS as usize).min(NUM_LEVELS - 1)
}

/// The slot of `level` that covers `deadline`.
#[inline]
pub(super) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (SLOT_BITS as usize * level)) & SLOT_MASK) as usize
}

/// The `list` tag of an entry in `slot` of `level` (`0..NUM_LEVELS * 64`).
#[inline]
pub(super) fn tag(level: usize, slot: usize) -> u16 {
    (level * NUM_SLOTS + slot) as u16
}

/// Splits a tag made by [`tag`] back into `(level, slot)`.
#[inline]
pub(super) fn untag(tag: u16) -> (usize, usize) {
    let tag = tag as usize;
    (tag / NUM_SLOTS, tag % NUM_SLOTS)
}

impl Level {
    /// An empty level number `level`.
    pub(super) fn new(level: usize) -> Level {
        debug_assert!(level < NUM_LEVELS);
        Level {
            level,
            occupied: 0,
            slots: [List::EMPTY; NUM_SLOTS],
        }
    }

    /// The earliest non-empty slot of this level relative to `elapsed`, found
    /// from the `occupied` mask alone.
    ///
    /// The mask is rotated so that bit 0 is the slot right after `elapsed`'s
    /// own slot; `trailing_zeros` then gives the distance to the first
    /// non-empty slot in cycle order (slots after `elapsed`'s slot, then the
    /// wrapped ones, ending with `elapsed`'s own slot). A wrapped slot can only
    /// be occupied at the top level and stands for the next rotation.
    ///
    /// Level 0 must not be asked while `elapsed`'s own slot holds entries (the
    /// due entries, which the wheel checks first).
    pub(super) fn next_expiration(&self, elapsed: u64) -> Option<Expiration> {
        if self.occupied == 0 {
            return None;
        }
        let shift = SLOT_BITS as usize * self.level;
        let now_slot = (elapsed >> shift) & SLOT_MASK;
        let first = (now_slot + 1) & SLOT_MASK;
        let distance = u64::from(self.occupied.rotate_right(first as u32).trailing_zeros());
        let slot = (first + distance) & SLOT_MASK;
        let level_start = elapsed & !(level_range(self.level) - 1);
        let mut deadline = level_start + (slot << shift);
        if slot <= now_slot {
            // The slot is in the next rotation of this level. Only the top
            // level can hold such entries (far deadlines fudged into it).
            debug_assert_eq!(
                self.level,
                NUM_LEVELS - 1,
                "wrapped slot below the top level"
            );
            deadline += level_range(self.level);
        }
        debug_assert!(deadline > elapsed);
        Some(Expiration {
            level: self.level,
            slot: slot as usize,
            deadline,
        })
    }

    /// Appends the entry `idx` (on no list) to `slot`.
    #[inline]
    pub(super) fn push<T>(&mut self, slab: &mut Slab<T>, idx: u32, slot: usize) {
        slab.push_back(&mut self.slots[slot], idx, tag(self.level, slot));
        self.occupied |= 1 << slot;
    }

    /// Unlinks and returns the first entry of `slot`, if any.
    #[inline]
    pub(super) fn pop<T>(&mut self, slab: &mut Slab<T>, slot: usize) -> Option<u32> {
        let list = &mut self.slots[slot];
        let idx = slab.pop_front(list)?;
        if list.is_empty() {
            self.occupied &= !(1 << slot);
        }
        Some(idx)
    }

    /// The first entry of `slot` ([`NIL`](super::slab::NIL) if none); the
    /// rest follow through the entries' `next` links.
    #[inline]
    pub(super) fn slot_head(&self, slot: usize) -> u32 {
        self.slots[slot].head
    }

    /// Whether `slot` holds an entry.
    #[inline]
    pub(super) fn is_occupied(&self, slot: usize) -> bool {
        self.occupied & (1 << slot) != 0
    }

    /// Unlinks the entry `idx` from `slot`, where it must be.
    #[inline]
    pub(super) fn remove<T>(&mut self, slab: &mut Slab<T>, idx: u32, slot: usize) {
        let list = &mut self.slots[slot];
        slab.unlink(list, idx);
        if list.is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// Empties `slot` and returns its former list. The entries keep their old
    /// tags and links; the caller must re-link or release every one of them.
    #[inline]
    pub(super) fn take_slot(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        std::mem::replace(&mut self.slots[slot], List::EMPTY)
    }

    /// Whether no slot of this level holds an entry.
    #[cfg(all(test, not(loom)))]
    pub(super) fn is_empty(&self) -> bool {
        self.occupied == 0
    }

    /// The occupancy mask (for invariant checks in tests).
    #[cfg(all(test, not(loom)))]
    pub(super) fn occupied(&self) -> u64 {
        self.occupied
    }

    /// The list of `slot` (for invariant checks in tests).
    #[cfg(all(test, not(loom)))]
    pub(super) fn slot_list(&self, slot: usize) -> List {
        self.slots[slot]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(slot_range(0), 1);
        assert_eq!(level_range(0), 64);
        assert_eq!(slot_range(1), 64);
        assert_eq!(level_range(1), 4096);
        assert_eq!(level_range(5), 1 << 36);
    }

    #[test]
    fn level_for_boundaries() {
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, (1 << 18) - 1), 2);
        assert_eq!(level_for(0, 1 << 18), 3);
        assert_eq!(level_for(0, (1 << 24) - 1), 3);
        assert_eq!(level_for(0, 1 << 24), 4);
        assert_eq!(level_for(0, (1 << 30) - 1), 4);
        assert_eq!(level_for(0, 1 << 30), 5);
        assert_eq!(level_for(0, (1 << 36) - 1), 5);
        // Beyond the top level: clamped.
        assert_eq!(level_for(0, 1 << 36), 5);
        assert_eq!(level_for(0, u64::MAX), 5);
        // Relative to `elapsed`, not to zero: crossing a 64-tick boundary by
        // one tick goes to level 1.
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(4095, 4096), 2);
    }

    #[test]
    fn slot_for_and_tags() {
        assert_eq!(slot_for(63, 0), 63);
        assert_eq!(slot_for(64, 0), 0);
        assert_eq!(slot_for(64, 1), 1);
        assert_eq!(slot_for(4096 * 3 + 64 * 5 + 7, 1), 5);
        assert_eq!(slot_for(4096 * 3 + 64 * 5 + 7, 2), 3);
        for level in 0..NUM_LEVELS {
            for slot in 0..NUM_SLOTS {
                assert_eq!(untag(tag(level, slot)), (level, slot));
            }
        }
    }

    #[test]
    fn next_expiration_rotates_and_wraps() {
        let mut slab = Slab::new();
        let mut level = Level::new(1);
        assert!(level.is_empty());
        assert_eq!(level.next_expiration(0), None);
        let a = slab.alloc(64 * 10, ());
        level.push(&mut slab, a, 10);
        let b = slab.alloc(64 * 3, ());
        level.push(&mut slab, b, 3);
        // elapsed = 0: slot 3 first.
        assert_eq!(level.next_expiration(0).unwrap().deadline, 64 * 3);
        // elapsed in slot 5 of the second range of level 1: slot 10 of this
        // range comes first.
        let elapsed = 4096 + 64 * 5 + 1;
        let exp = level.next_expiration(elapsed).unwrap();
        assert_eq!((exp.slot, exp.deadline), (10, 4096 + 64 * 10));
        level.remove(&mut slab, a, 10);
        level.remove(&mut slab, b, 3);
        assert!(level.is_empty());

        // Top level: a slot at or before `elapsed`'s slot is next rotation,
        // and comes after the slots still ahead.
        let mut top = Level::new(5);
        let elapsed = 5 * slot_range(5) + 100;
        let c = slab.alloc(0, ());
        top.push(&mut slab, c, 5);
        let exp = top.next_expiration(elapsed).unwrap();
        assert_eq!(exp.deadline, level_range(5) + 5 * slot_range(5));
        let d = slab.alloc(0, ());
        top.push(&mut slab, d, 6);
        let exp = top.next_expiration(elapsed).unwrap();
        assert_eq!((exp.slot, exp.deadline), (6, 6 * slot_range(5)));
        let list = top.take_slot(6);
        assert_eq!(list.head, d);
        assert_eq!(top.next_expiration(elapsed).unwrap().slot, 5);
    }
}
