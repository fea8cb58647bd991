//! A worker's LIFO slot, stealable when its worker is stuck.
//!
//! The task spawned or woken last by the running task goes to the slot and
//! runs right after it, on the same worker (the ping-pong fast path).
//! Tokio keeps the slot private to the worker, so a task that lands there
//! just before the running task blocks its thread waits for the whole
//! block. C callbacks block far more often than Rust futures do, so here
//! the slot is shared: its owner fills and empties it, and another worker
//! may take its task when the owner has been inside one poll for too long
//! (see `Lifo::polls` and `worker.rs`, "stuck LIFO slots").
//!
//! The slot is a cell plus a state word, EMPTY -> FULL by the owner only,
//! and FULL -> BUSY -> EMPTY by whoever takes the task (owner or thief):
//! - the owner fills an EMPTY slot with a plain store: nobody else moves
//!   the state out of EMPTY, so no locked instruction on that path;
//! - taking, and replacing a FULL slot, claim it with one CAS
//!   (FULL -> BUSY) and release it with a store;
//! - a thief only ever takes a FULL slot; an owner that finds it BUSY (a
//!   thief is taking it) treats it as empty when taking, and waits the few
//!   instructions until it is EMPTY when filling.

use crate::loom::{AtomicUsize, UnsafeCell};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

const EMPTY: usize = 0;
const FULL: usize = 1;
const BUSY: usize = 2;

/// A LIFO slot holding at most one `T`.
pub(super) struct LifoSlot<T> {
    state: AtomicUsize,
    cell: UnsafeCell<Option<T>>,
}

// SAFETY: the cell is only accessed by the one thread that moved the state
// EMPTY -> (cell write) -> FULL (the owner, the only one to leave EMPTY) or
// FULL -> BUSY (CAS, so one thread at a time) -> EMPTY/FULL; the Release
// stores and Acquire CAS/loads order those accesses. A `T` moves between
// threads through it, hence `T: Send`.
unsafe impl<T: Send> Send for LifoSlot<T> {}
// SAFETY: as above: every access to the cell is exclusive by the protocol.
unsafe impl<T: Send> Sync for LifoSlot<T> {}

impl<T> LifoSlot<T> {
    pub(super) fn new() -> LifoSlot<T> {
        LifoSlot {
            state: AtomicUsize::new(EMPTY),
            cell: UnsafeCell::new(None),
        }
    }

    /// True if a task sits in the slot (not being taken).
    pub(super) fn is_full(&self) -> bool {
        self.state.load(Acquire) == FULL
    }

    /// Owner only: puts `task` in the slot and returns the task it held,
    /// if any (a thief may have taken that one just before).
    pub(super) fn push(&self, task: T) -> Option<T> {
        loop {
            match self.state.load(Acquire) {
                EMPTY => {
                    // SAFETY: EMPTY, and only the owner (this thread) leaves
                    // EMPTY: nobody else touches the cell until the store
                    // below publishes it.
                    self.cell.with_mut(|p| unsafe { *p = Some(task) });
                    self.state.store(FULL, Release);
                    return None;
                }
                FULL => {
                    if self
                        .state
                        .compare_exchange(FULL, BUSY, Acquire, Relaxed)
                        .is_ok()
                    {
                        // SAFETY: this thread moved FULL -> BUSY: the cell
                        // is its own until the store below.
                        let prev = self.cell.with_mut(|p| unsafe { (*p).replace(task) });
                        self.state.store(FULL, Release);
                        return prev;
                    }
                }
                // A thief is taking the task: it stores EMPTY next.
                _ => crate::loom::spin_loop(),
            }
        }
    }

    /// Takes the task (owner or thief). `None` if the slot is empty or
    /// another thread is taking its task.
    pub(super) fn take(&self) -> Option<T> {
        if self.state.load(Relaxed) != FULL {
            return None;
        }
        if self
            .state
            .compare_exchange(FULL, BUSY, Acquire, Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: this thread moved FULL -> BUSY: the cell is its own until
        // the store below.
        let task = self.cell.with_mut(|p| unsafe { (*p).take() });
        debug_assert!(task.is_some());
        self.state.store(EMPTY, Release);
        task
    }
}

/// What other workers see of one worker's LIFO slot, on its own cache
/// line (the owner writes it on every LIFO push and every poll).
#[repr(align(128))]
pub(super) struct Lifo<T> {
    pub(super) slot: LifoSlot<T>,
    /// Bumped by the owner each time it starts polling a task: a thief
    /// that sees it unchanged for a while, with a task in the slot, knows
    /// the owner is stuck in one poll.
    polls: AtomicU32,
}

impl<T> Lifo<T> {
    pub(super) fn new() -> Lifo<T> {
        Lifo {
            slot: LifoSlot::new(),
            polls: AtomicU32::new(0),
        }
    }

    /// Owner only: a poll starts.
    #[inline]
    pub(super) fn poll_started(&self) {
        // One writer: no read-modify-write needed.
        self.polls
            .store(self.polls.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// The owner's poll count.
    pub(super) fn polls(&self) -> u32 {
        self.polls.load(Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn push_replaces_and_take_empties() {
        let slot = LifoSlot::new();
        assert!(!slot.is_full());
        assert_eq!(slot.take(), None);
        assert_eq!(slot.push(1), None);
        assert!(slot.is_full());
        assert_eq!(slot.push(2), Some(1));
        assert_eq!(slot.take(), Some(2));
        assert!(!slot.is_full());
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn dropping_a_full_slot_drops_its_task() {
        let task = std::sync::Arc::new(());
        let slot = LifoSlot::new();
        slot.push(task.clone());
        assert_eq!(std::sync::Arc::strong_count(&task), 2);
        drop(slot);
        assert_eq!(std::sync::Arc::strong_count(&task), 1);
    }

    #[test]
    fn poll_count() {
        let lifo = Lifo::<()>::new();
        assert_eq!(lifo.polls(), 0);
        lifo.poll_started();
        lifo.poll_started();
        assert_eq!(lifo.polls(), 2);
        assert_eq!(std::mem::align_of::<Lifo<()>>(), 128);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// The owner pushes two tasks (the second replaces the first) and takes
    /// the slot, while a thief takes it: every task comes out exactly once
    /// (none lost, none duplicated), and the cell is never accessed by two
    /// threads at once (loom's UnsafeCell checks that).
    #[test]
    fn owner_and_thief_take_each_task_once() {
        loom::model(|| {
            let slot = Arc::new(LifoSlot::new());
            let thief = {
                let slot = slot.clone();
                loom::thread::spawn(move || slot.take())
            };
            let mut got = Vec::new();
            assert!(slot.push(1).is_none());
            got.extend(slot.push(2));
            got.extend(slot.take());
            got.extend(thief.join().unwrap());
            got.extend(slot.take());
            got.sort_unstable();
            assert_eq!(got, vec![1, 2]);
        });
    }

    /// Two thieves race for one task: exactly one gets it.
    #[test]
    fn two_thieves_one_task() {
        loom::model(|| {
            let slot = Arc::new(LifoSlot::new());
            assert!(slot.push(7).is_none());
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let slot = slot.clone();
                    loom::thread::spawn(move || slot.take())
                })
                .collect();
            let got: Vec<i32> = ts.into_iter().filter_map(|t| t.join().unwrap()).collect();
            assert_eq!(got, vec![7]);
            assert!(!slot.is_full());
        });
    }
}
