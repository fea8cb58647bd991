//! Storage for the timing wheel: a slab of entries threaded onto index-linked,
//! doubly linked lists.
//!
//! Every timer lives in one [`Entry`] of a [`Chunked`] array (entries never
//! move, so growing it never stalls an insert); the wheel's slots (and its
//! list of expired entries) are [`List`]s whose links are `u32` indexes into
//! that array. Freed entries are chained onto a free list through their
//! `next` field and reused before the array grows, so a steady state of
//! inserts and removals does not allocate. Each entry carries a generation, bumped every
//! time the entry is freed, so that a stale [`TimerKey`] can never reach the
//! entry's next occupant.

use super::TimerKey;
use crate::util::Chunked;

/// The "no entry" link value.
pub(super) const NIL: u32 = u32::MAX;

/// The `list` tag of an entry that is on the free list (holds no timer).
pub(super) const FREE: u16 = u16::MAX;

/// One timer (or a free cell) in the slab.
#[derive(Debug)]
pub(super) struct Entry<T> {
    /// The tick at which the timer expires (meaningless when free).
    pub(super) deadline: u64,
    /// The stored value; `None` exactly when the entry is free.
    pub(super) value: Option<T>,
    /// Previous entry in the list this entry is on, or [`NIL`].
    pub(super) prev: u32,
    /// Next entry in the list (or in the free list), or [`NIL`].
    pub(super) next: u32,
    /// Bumped every time the entry is freed; part of [`TimerKey`].
    pub(super) generation: u32,
    /// Which list the entry is on (a tag chosen by the wheel), or [`FREE`].
    pub(super) list: u16,
}

/// The head and tail of an index-linked, doubly linked list of entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct List {
    /// First entry, or [`NIL`] when the list is empty.
    pub(super) head: u32,
    /// Last entry, or [`NIL`] when the list is empty.
    pub(super) tail: u32,
}

impl List {
    /// An empty list.
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };

    /// Whether the list holds no entry.
    pub(super) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// The entries plus a free list and a count of live entries.
#[derive(Debug)]
pub(super) struct Slab<T> {
    /// All cells, live or free.
    entries: Chunked<Entry<T>>,
    /// First free cell, or [`NIL`].
    free_head: u32,
    /// Number of live entries.
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab (does not allocate).
    pub(super) fn new() -> Slab<T> {
        Slab {
            entries: Chunked::new(),
            free_head: NIL,
            len: 0,
        }
    }

    /// Number of live entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores a new entry, not yet on any list (its `list` tag must be set by
    /// linking it), and returns its index.
    ///
    /// # Panics
    ///
    /// If `u32::MAX` entries are already live.
    pub(super) fn alloc(&mut self, deadline: u64, value: T) -> u32 {
        self.len += 1;
        if self.free_head != NIL {
            let idx = self.free_head;
            let entry = &mut self.entries[idx as usize];
            self.free_head = entry.next;
            entry.deadline = deadline;
            entry.value = Some(value);
            entry.prev = NIL;
            entry.next = NIL;
            idx
        } else {
            let idx = self.entries.len();
            assert!(idx < NIL as usize, "timer wheel: too many timers");
            self.entries.push(Entry {
                deadline,
                value: Some(value),
                prev: NIL,
                next: NIL,
                generation: 0,
                list: FREE,
            });
            idx as u32
        }
    }

    /// Frees a live entry that is on no list and returns its key (as it was
    /// before freeing), deadline and value. The key becomes stale.
    pub(super) fn release(&mut self, idx: u32) -> (TimerKey, u64, T) {
        let free_head = self.free_head;
        let entry = &mut self.entries[idx as usize];
        let key = TimerKey {
            index: idx,
            generation: entry.generation,
        };
        let value = entry.value.take().expect("released a free entry");
        entry.generation = entry.generation.wrapping_add(1);
        entry.list = FREE;
        entry.prev = NIL;
        entry.next = free_head;
        self.free_head = idx;
        self.len -= 1;
        (key, entry.deadline, value)
    }

    /// The key naming the live entry at `idx`.
    pub(super) fn key(&self, idx: u32) -> TimerKey {
        TimerKey {
            index: idx,
            generation: self.entries[idx as usize].generation,
        }
    }

    /// The index of the live entry named by `key`, or `None` if the key is
    /// stale (its entry was freed, and maybe reused) or out of range.
    pub(super) fn lookup(&self, key: TimerKey) -> Option<u32> {
        let entry = self.entries.get(key.index as usize)?;
        (entry.list != FREE && entry.generation == key.generation).then_some(key.index)
    }

    /// The entry at `idx` (live or not).
    pub(super) fn get(&self, idx: u32) -> &Entry<T> {
        &self.entries[idx as usize]
    }

    /// Appends the live entry `idx`, which must be on no list, to `list` and
    /// tags it with `tag`.
    pub(super) fn push_back(&mut self, list: &mut List, idx: u32, tag: u16) {
        debug_assert_ne!(tag, FREE);
        let old_tail = list.tail;
        {
            let entry = &mut self.entries[idx as usize];
            entry.prev = old_tail;
            entry.next = NIL;
            entry.list = tag;
        }
        if old_tail == NIL {
            list.head = idx;
        } else {
            self.entries[old_tail as usize].next = idx;
        }
        list.tail = idx;
    }

    /// Unlinks entry `idx` from `list`, which must be the list it is on. The
    /// entry keeps its tag until it is linked elsewhere or released.
    pub(super) fn unlink(&mut self, list: &mut List, idx: u32) {
        let (prev, next) = {
            let entry = &self.entries[idx as usize];
            (entry.prev, entry.next)
        };
        if prev == NIL {
            debug_assert_eq!(list.head, idx);
            list.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            debug_assert_eq!(list.tail, idx);
            list.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Unlinks and returns the first entry of `list`, if any.
    pub(super) fn pop_front(&mut self, list: &mut List) -> Option<u32> {
        let idx = list.head;
        if idx == NIL {
            return None;
        }
        let next = self.entries[idx as usize].next;
        list.head = next;
        if next == NIL {
            list.tail = NIL;
        } else {
            self.entries[next as usize].prev = NIL;
        }
        Some(idx)
    }

    /// Calls `f` with every stored value (any order).
    pub(super) fn for_each_value(&self, mut f: impl FnMut(&T)) {
        for i in 0..self.entries.len() {
            if let Some(v) = self.entries.get(i).and_then(|e| e.value.as_ref()) {
                f(v);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn collect<T>(slab: &Slab<T>, list: &List) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = list.head;
        let mut prev = NIL;
        while cur != NIL {
            assert_eq!(slab.get(cur).prev, prev, "broken back link");
            out.push(cur);
            prev = cur;
            cur = slab.get(cur).next;
        }
        assert_eq!(list.tail, prev, "tail does not match");
        out
    }

    #[test]
    fn list_push_unlink_pop() {
        let mut slab = Slab::new();
        let mut list = List::EMPTY;
        let ids: Vec<u32> = (0..5).map(|i| slab.alloc(i, i)).collect();
        for &id in &ids {
            slab.push_back(&mut list, id, 7);
        }
        assert_eq!(collect(&slab, &list), ids);
        slab.unlink(&mut list, ids[2]); // middle
        slab.unlink(&mut list, ids[0]); // head
        slab.unlink(&mut list, ids[4]); // tail
        assert_eq!(collect(&slab, &list), vec![ids[1], ids[3]]);
        assert_eq!(slab.pop_front(&mut list), Some(ids[1]));
        assert_eq!(slab.pop_front(&mut list), Some(ids[3]));
        assert_eq!(slab.pop_front(&mut list), None);
        assert!(list.is_empty());
        assert_eq!(list, List::EMPTY);
    }

    #[test]
    fn release_reuses_cells_and_bumps_generation() {
        let mut slab = Slab::new();
        let a = slab.alloc(10, "a");
        let key_a = slab.key(a);
        slab.get(a); // live
        let mut list = List::EMPTY;
        slab.push_back(&mut list, a, 0);
        assert_eq!(slab.lookup(key_a), Some(a));
        slab.unlink(&mut list, a);
        let (k, d, v) = slab.release(a);
        assert_eq!((k, d, v), (key_a, 10, "a"));
        assert_eq!(slab.lookup(key_a), None);
        assert_eq!(slab.len(), 0);
        let b = slab.alloc(20, "b");
        assert_eq!(b, a, "free cell is reused");
        slab.push_back(&mut list, b, 0);
        assert_ne!(slab.key(b), key_a);
        assert_eq!(slab.lookup(key_a), None);
        assert_eq!(slab.lookup(slab.key(b)), Some(b));
    }
}
