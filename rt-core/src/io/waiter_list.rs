//! `WaiterList`: the tasks waiting, through the async readiness futures, on
//! one direction of one I/O resource; `WakeList`: a batch of wakers to wake
//! once a lock is released.
//!
//! The list is a slab: a waiter is named by its slot and an id that no
//! other waiter of the list ever has, so a waiter that was woken (and so
//! taken out) or cleared can tell, and its key never names a newer waiter
//! that reused the slot. Inserting, updating and removing are O(1); waking
//! everyone is a scan. The list only holds data: `ScheduledIo` keeps it
//! behind its lock and decides who is woken when.

use std::task::Waker;

/// Names one waiter of a [`WaiterList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey {
    index: usize,
    id: u64,
}

/// The waiters of one direction.
#[derive(Debug, Default)]
pub(crate) struct WaiterList {
    slots: Vec<Slot>,
    /// Vacant slots, reused first.
    free: Vec<usize>,
    len: usize,
    /// The id the next waiter gets; ids only grow.
    next_id: u64,
}

#[derive(Debug)]
enum Slot {
    Vacant,
    Waiting { id: u64, waker: Waker },
}

impl WaiterList {
    /// Number of waiters.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The id the next inserted waiter will get: every waiter in the list
    /// now has a smaller one.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Adds a waiter.
    pub(crate) fn insert(&mut self, waker: Waker) -> WaiterKey {
        let id = self.next_id;
        self.next_id += 1;
        let slot = Slot::Waiting { id, waker };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.len += 1;
        WaiterKey { index, id }
    }

    /// The waker of the waiter `key`, if it is still in the list (it is not
    /// once woken or cleared).
    pub(crate) fn waker_mut(&mut self, key: WaiterKey) -> Option<&mut Waker> {
        match self.slots.get_mut(key.index) {
            Some(Slot::Waiting { id, waker }) if *id == key.id => Some(waker),
            _ => None,
        }
    }

    /// Takes the waiter `key` out, if it is still in the list. The caller
    /// drops the waker (after releasing its lock).
    pub(crate) fn remove(&mut self, key: WaiterKey) -> Option<Waker> {
        match self.slots.get(key.index) {
            Some(Slot::Waiting { id, .. }) if *id == key.id => Some(self.vacate(key.index)),
            _ => None,
        }
    }

    /// Takes out the waiters with an id below `below_id`, scanning from
    /// slot `*cursor` on, into `out` until it is full. Returns true if it
    /// stopped because `out` is full before the end: call again (with the
    /// same cursor) once `out` is emptied.
    pub(crate) fn take_batch(
        &mut self,
        cursor: &mut usize,
        below_id: u64,
        out: &mut WakeList,
    ) -> bool {
        while *cursor < self.slots.len() {
            if out.is_full() {
                return true;
            }
            let index = *cursor;
            *cursor += 1;
            if matches!(self.slots[index], Slot::Waiting { id, .. } if id < below_id) {
                out.push(self.vacate(index));
            }
        }
        false
    }

    /// Takes every waiter out (without waking them). The caller drops the
    /// wakers after releasing its lock.
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        let wakers = std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|slot| match slot {
                Slot::Waiting { waker, .. } => Some(waker),
                Slot::Vacant => None,
            })
            .collect();
        self.free.clear();
        self.len = 0;
        wakers
    }

    fn vacate(&mut self, index: usize) -> Waker {
        let Slot::Waiting { waker, .. } = std::mem::replace(&mut self.slots[index], Slot::Vacant)
        else {
            unreachable!("vacate: slot {index} is not waiting");
        };
        self.len -= 1;
        if self.len == 0 {
            // Nobody left: start over compactly (ids keep growing, so no
            // old key can name a new waiter).
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(index);
        }
        waker
    }
}

/// How many wakers one batch holds.
const BATCH: usize = 32;

/// Wakers collected under a lock, woken after it is released (a waker may
/// run arbitrary code, even code that takes the same lock).
pub(crate) struct WakeList {
    wakers: [Option<Waker>; BATCH],
    len: usize,
}

impl WakeList {
    pub(crate) fn new() -> WakeList {
        WakeList {
            wakers: [const { None }; BATCH],
            len: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == BATCH
    }

    /// Adds `waker`.
    ///
    /// # Panics
    /// If the list is full.
    pub(crate) fn push(&mut self, waker: Waker) {
        assert!(!self.is_full(), "WakeList::push on a full list");
        self.wakers[self.len] = Some(waker);
        self.len += 1;
    }

    /// Wakes (and so drops) every waker held, leaving the list empty.
    pub(crate) fn wake_all(&mut self) {
        let len = std::mem::take(&mut self.len);
        for slot in &mut self.wakers[..len] {
            if let Some(waker) = slot.take() {
                waker.wake();
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Waker, Arc<Count>) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (Waker::from(c.clone()), c)
    }

    #[test]
    fn keys_of_removed_waiters_do_not_name_new_ones() {
        let mut list = WaiterList::default();
        let (w, _) = waker();
        let a = list.insert(w.clone());
        let b = list.insert(w.clone());
        assert!(list.remove(a).is_some());
        assert!(list.remove(a).is_none(), "removed twice");
        let c = list.insert(w.clone());
        assert_eq!(c.index, a.index, "slot reused");
        assert!(list.waker_mut(a).is_none(), "old key names the new waiter");
        assert!(list.waker_mut(c).is_some());
        assert!(list.remove(b).is_some());
        assert!(list.remove(c).is_some());
        assert_eq!(list.len(), 0);
        // Emptied: slots start over, old keys still name nothing.
        let d = list.insert(w);
        assert_eq!(d.index, 0);
        assert!(list.waker_mut(a).is_none());
        assert!(list.waker_mut(b).is_none());
    }

    #[test]
    fn batches_take_only_older_waiters() {
        let mut list = WaiterList::default();
        let (w, count) = waker();
        for _ in 0..(BATCH + 5) {
            list.insert(w.clone());
        }
        let limit = list.next_id();
        let mut out = WakeList::new();
        let mut cursor = 0;
        assert!(list.take_batch(&mut cursor, limit, &mut out));
        out.wake_all();
        assert_eq!(count.0.load(Ordering::SeqCst), BATCH);
        // A waiter that came after the wake began is left alone.
        let late = list.insert(w.clone());
        assert!(!list.take_batch(&mut cursor, limit, &mut out));
        out.wake_all();
        assert_eq!(count.0.load(Ordering::SeqCst), BATCH + 5);
        assert_eq!(list.len(), 1);
        assert!(list.waker_mut(late).is_some());
        assert_eq!(list.take_all().len(), 1);
        assert_eq!(list.len(), 0);
    }
}
