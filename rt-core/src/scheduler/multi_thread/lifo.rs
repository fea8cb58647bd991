//! A worker's LIFO slot, stealable when its worker is stuck.
//!
//! The task spawned or woken last by the running task goes to the slot and
//! runs right after it, on the same worker (the ping-pong fast path).
//! Tokio keeps the slot private to the worker, so a task that lands there
//! just before the running task blocks its thread waits for the whole
//! block. C callbacks block far more often than Rust futures do, so here
//! the slot is shared: its owner fills and empties it, and another worker
//! may take its task when the owner has been inside one poll for too long
//! (see `Lifo::polls` and `worker.rs`, "Stuck workers").
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
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

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
    /// The other workers' last look at `polls`, shared by all of them (so
    /// a runtime keeps one per worker, not one per pair of workers).
    seen: Seen,
}

/// The last poll count some other worker saw, and since when it has not
/// moved: `(polls << 32) | milliseconds on the stuck clock`, one word so a
/// reader never pairs a count with another count's time (`NOT_SEEN`: no
/// look yet). Written only by workers looking for a stuck slot (at
/// maintenance and parks), on a line of its own.
#[repr(align(128))]
struct Seen(AtomicU64);

const NOT_SEEN: u64 = u64::MAX;

/// Milliseconds since the first use, wrapping every 49 days (only
/// differences of a few milliseconds are taken).
pub(super) fn stuck_clock_ms() -> u32 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u32
}

impl<T> Lifo<T> {
    pub(super) fn new() -> Lifo<T> {
        Lifo {
            slot: LifoSlot::new(),
            polls: AtomicU32::new(0),
            seen: Seen(AtomicU64::new(NOT_SEEN)),
        }
    }

    /// Another worker's look, at `now_ms` on the stuck clock: for how many
    /// milliseconds the owner's poll count has not moved, as far as the
    /// looks of all workers tell (0 when it moved since the last look). Two
    /// workers looking at once may both record their look; either is right.
    pub(super) fn unmoved_for_ms(&self, now_ms: u32) -> u32 {
        let polls = self.polls();
        let seen = self.seen.0.load(Relaxed);
        if seen != NOT_SEEN && (seen >> 32) as u32 == polls {
            return now_ms.wrapping_sub(seen as u32);
        }
        self.seen
            .0
            .store((u64::from(polls) << 32) | u64::from(now_ms), Relaxed);
        0
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
    fn unmoved_for_counts_from_the_first_look_at_a_count() {
        let lifo = Lifo::<()>::new();
        assert_eq!(lifo.unmoved_for_ms(100), 0);
        assert_eq!(lifo.unmoved_for_ms(103), 3);
        assert_eq!(lifo.unmoved_for_ms(107), 7);
        lifo.poll_started();
        assert_eq!(lifo.unmoved_for_ms(108), 0);
        assert_eq!(lifo.unmoved_for_ms(110), 2);
        // The clock wraps.
        let lifo = Lifo::<()>::new();
        assert_eq!(lifo.unmoved_for_ms(u32::MAX - 1), 0);
        assert_eq!(lifo.unmoved_for_ms(3), 5);
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
