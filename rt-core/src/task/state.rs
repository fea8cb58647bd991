//! The task's atomic state word.
//!
//! One `usize` packs the lifecycle bits and a reference count:
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | `RUNNING` | a thread is polling (or cancelling) the future; it owns the stage |
//! | 1 | `COMPLETE` | the future is gone; the output (if any) waits in the stage |
//! | 2 | `NOTIFIED` | a `Notified` for this task sits in (or is on its way to) a run queue |
//! | 3 | `JOIN_INTEREST` | a `JoinHandle` exists and will read (or drop) the output |
//! | 4 | `JOIN_WAKER` | the join waker slot is filled and owned by the runtime side |
//! | 5 | `CANCELLED` | the task was aborted (or the runtime shut down): drop the future at the next chance |
//! | 6.. | ref count | owned-list entry, queue entries (`Notified`), wakers, join/abort handles |
//!
//! Every transition is a CAS loop (or a single RMW where that suffices).
//! Rules of ownership for the non-atomic parts of the task:
//! - the stage (future or output) belongs to whoever set `RUNNING`, and after
//!   `COMPLETE` to the join handle while `JOIN_INTEREST` is set, otherwise to
//!   the completing thread;
//! - the join waker slot belongs to the join handle while `JOIN_WAKER` is
//!   clear; once the handle sets it, the runtime may read it, and only after
//!   `COMPLETE` does the runtime take it (and clear `JOIN_WAKER` again).

use crate::loom::AtomicUsize;
use std::fmt;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

const RUNNING: usize = 0b00_0001;
const COMPLETE: usize = 0b00_0010;
const LIFECYCLE_MASK: usize = RUNNING | COMPLETE;
const NOTIFIED: usize = 0b00_0100;
const JOIN_INTEREST: usize = 0b00_1000;
const JOIN_WAKER: usize = 0b01_0000;
const CANCELLED: usize = 0b10_0000;
const STATE_MASK: usize = LIFECYCLE_MASK | NOTIFIED | JOIN_INTEREST | JOIN_WAKER | CANCELLED;
const REF_COUNT_MASK: usize = !STATE_MASK;
const REF_COUNT_SHIFT: usize = STATE_MASK.count_ones() as usize;
const REF_ONE: usize = 1 << REF_COUNT_SHIFT;

/// A new task has three references (owned list, the first `Notified`, the
/// join handle), wants its output joined, and is about to be scheduled.
const INITIAL_STATE: usize = (REF_ONE * 3) | JOIN_INTEREST | NOTIFIED;

/// The atomic state word of one task.
pub(crate) struct State {
    val: AtomicUsize,
}

/// A copy of the state word at one moment.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

/// What `transition_to_running` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransitionToRunning {
    /// The caller now owns the future and must poll it.
    Success,
    /// The caller now owns the future and must drop it (the task was aborted).
    Cancelled,
    /// Someone else runs it or it is done; the caller's reference was released.
    Failed,
    /// As `Failed`, and that was the last reference: deallocate.
    Dealloc,
}

/// What `transition_to_idle` found after a `Pending` poll.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransitionToIdle {
    /// Idle now; the poller's reference was released.
    Ok,
    /// Woken during the poll: a reference was taken for a new `Notified`
    /// that must be scheduled (as a yield); the poller then drops its own.
    OkNotified,
    /// Idle, and the released reference was the last one.
    OkDealloc,
    /// Aborted during the poll: still `RUNNING`, the caller must drop the future.
    Cancelled,
}

/// What a wake that consumes its waker's reference must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransitionToNotifiedByVal {
    /// Nothing more.
    DoNothing,
    /// Schedule the task with the new reference taken for it, then drop
    /// the waker's.
    Submit,
    /// The waker held the last reference: deallocate.
    Dealloc,
}

/// What a wake that keeps its waker must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransitionToNotifiedByRef {
    /// Nothing more.
    DoNothing,
    /// Schedule the task with the new reference taken for it.
    Submit,
}

/// What dropping the join handle must clean up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TransitionToJoinHandleDrop {
    /// The task completed and nobody else will drop the output.
    pub(crate) drop_output: bool,
    /// The join waker slot is ours to clear.
    pub(crate) drop_waker: bool,
}

impl State {
    /// The state of a task that was just created.
    pub(crate) fn new() -> State {
        State {
            val: AtomicUsize::new(INITIAL_STATE),
        }
    }

    /// Reads the state.
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.val.load(Acquire))
    }

    fn fetch_update_action<T>(&self, mut f: impl FnMut(Snapshot) -> (T, Option<Snapshot>)) -> T {
        let mut curr = self.load();
        loop {
            let (output, next) = f(curr);
            let Some(next) = next else { return output };
            match self
                .val
                .compare_exchange_weak(curr.0, next.0, AcqRel, Acquire)
            {
                Ok(_) => return output,
                Err(actual) => curr = Snapshot(actual),
            }
        }
    }

    fn fetch_update(
        &self,
        mut f: impl FnMut(Snapshot) -> Option<Snapshot>,
    ) -> Result<Snapshot, Snapshot> {
        let mut curr = self.load();
        loop {
            let Some(next) = f(curr) else {
                return Err(curr);
            };
            match self
                .val
                .compare_exchange_weak(curr.0, next.0, AcqRel, Acquire)
            {
                Ok(_) => return Ok(next),
                Err(actual) => curr = Snapshot(actual),
            }
        }
    }

    /// A queued `Notified` is about to be polled. Consumes `NOTIFIED`.
    pub(crate) fn transition_to_running(&self) -> TransitionToRunning {
        self.fetch_update_action(|mut next| {
            assert!(next.is_notified(), "polled a task that was not notified");
            if !next.is_idle() {
                // Running elsewhere or already complete (e.g. shut down): this
                // queue entry is stale. Release its reference.
                next.ref_dec();
                let action = if next.ref_count() == 0 {
                    TransitionToRunning::Dealloc
                } else {
                    TransitionToRunning::Failed
                };
                return (action, Some(next));
            }
            next.0 |= RUNNING;
            next.0 &= !NOTIFIED;
            let action = if next.is_cancelled() {
                TransitionToRunning::Cancelled
            } else {
                TransitionToRunning::Success
            };
            (action, Some(next))
        })
    }

    /// The poll returned `Pending`: give up `RUNNING`.
    pub(crate) fn transition_to_idle(&self) -> TransitionToIdle {
        self.fetch_update_action(|curr| {
            assert!(curr.is_running());
            if curr.is_cancelled() {
                return (TransitionToIdle::Cancelled, None);
            }
            let mut next = curr;
            next.0 &= !RUNNING;
            if next.is_notified() {
                // A new reference for the new `Notified`; the poller drops
                // its own after scheduling it.
                next.ref_inc();
                return (TransitionToIdle::OkNotified, Some(next));
            }
            next.ref_dec();
            let action = if next.ref_count() == 0 {
                TransitionToIdle::OkDealloc
            } else {
                TransitionToIdle::Ok
            };
            (action, Some(next))
        })
    }

    /// `RUNNING` -> `COMPLETE` in one step; returns the new state.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        const DELTA: usize = RUNNING | COMPLETE;
        let prev = Snapshot(self.val.fetch_xor(DELTA, AcqRel));
        assert!(prev.is_running() && !prev.is_complete());
        Snapshot(prev.0 ^ DELTA)
    }

    /// Releases `count` references at the end of completion; true if that
    /// was the last of them.
    pub(crate) fn transition_to_terminal(&self, count: usize) -> bool {
        let prev = Snapshot(self.val.fetch_sub(count * REF_ONE, AcqRel));
        assert!(prev.ref_count() >= count, "ref count underflow");
        prev.ref_count() == count
    }

    /// A wake that consumes a reference (`Waker::wake`).
    pub(crate) fn transition_to_notified_by_val(&self) -> TransitionToNotifiedByVal {
        self.fetch_update_action(|mut next| {
            let action = if next.is_running() {
                // The poller will see NOTIFIED and reschedule with its own reference.
                next.0 |= NOTIFIED;
                next.ref_dec();
                assert!(next.ref_count() > 0);
                TransitionToNotifiedByVal::DoNothing
            } else if next.is_complete() || next.is_notified() {
                next.ref_dec();
                if next.ref_count() == 0 {
                    TransitionToNotifiedByVal::Dealloc
                } else {
                    TransitionToNotifiedByVal::DoNothing
                }
            } else {
                // A new reference for the queue entry; the caller drops the
                // waker's own after scheduling (the scheduler still reads
                // task memory while it queues the entry).
                next.0 |= NOTIFIED;
                next.ref_inc();
                TransitionToNotifiedByVal::Submit
            };
            (action, Some(next))
        })
    }

    /// A wake that keeps its reference (`Waker::wake_by_ref`).
    pub(crate) fn transition_to_notified_by_ref(&self) -> TransitionToNotifiedByRef {
        self.fetch_update_action(|mut next| {
            if next.is_complete() || next.is_notified() {
                (TransitionToNotifiedByRef::DoNothing, None)
            } else if next.is_running() {
                next.0 |= NOTIFIED;
                (TransitionToNotifiedByRef::DoNothing, Some(next))
            } else {
                next.0 |= NOTIFIED;
                next.ref_inc();
                (TransitionToNotifiedByRef::Submit, Some(next))
            }
        })
    }

    /// Abort from a handle. Returns true if the caller took a new reference
    /// and must schedule the task so the runtime drops its future.
    pub(crate) fn transition_to_notified_and_cancel(&self) -> bool {
        self.fetch_update_action(|mut next| {
            if next.is_cancelled() || next.is_complete() {
                (false, None)
            } else if next.is_running() || next.is_notified() {
                // The poller or the queued entry will observe CANCELLED.
                next.0 |= CANCELLED | NOTIFIED;
                (false, Some(next))
            } else {
                next.0 |= CANCELLED | NOTIFIED;
                next.ref_inc();
                (true, Some(next))
            }
        })
    }

    /// Runtime shutdown: mark cancelled, and take `RUNNING` if the task is
    /// idle. True if the caller now owns the future and must drop it.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        let mut prev = Snapshot(0);
        let _ = self.fetch_update(|mut next| {
            prev = next;
            if next.is_idle() {
                next.0 |= RUNNING;
            }
            next.0 |= CANCELLED;
            Some(next)
        });
        prev.is_idle()
    }

    /// Fast path of dropping a join handle of a task that has not even been
    /// polled yet.
    pub(crate) fn drop_join_handle_fast(&self) -> Result<(), ()> {
        self.val
            .compare_exchange_weak(
                INITIAL_STATE,
                (INITIAL_STATE - REF_ONE) & !JOIN_INTEREST,
                AcqRel,
                Acquire,
            )
            .map(|_| ())
            .map_err(|_| ())
    }

    /// The join handle goes away (its reference is released separately).
    pub(crate) fn transition_to_join_handle_dropped(&self) -> TransitionToJoinHandleDrop {
        self.fetch_update_action(|mut next| {
            assert!(next.is_join_interested());
            let mut transition = TransitionToJoinHandleDrop {
                drop_output: false,
                drop_waker: false,
            };
            next.0 &= !JOIN_INTEREST;
            if next.is_complete() {
                transition.drop_output = true;
            } else {
                // Take the waker slot back from the runtime side.
                next.0 &= !JOIN_WAKER;
            }
            if !next.is_join_waker_set() {
                transition.drop_waker = true;
            }
            (transition, Some(next))
        })
    }

    /// The join handle stored a waker; publish it. Fails if the task
    /// completed meanwhile (then the output can be read instead).
    pub(crate) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.fetch_update(|curr| {
            assert!(curr.is_join_interested());
            assert!(!curr.is_join_waker_set());
            if curr.is_complete() {
                return None;
            }
            Some(Snapshot(curr.0 | JOIN_WAKER))
        })
    }

    /// The join handle wants to replace its waker: take the slot back.
    /// Fails if the task completed meanwhile.
    pub(crate) fn unset_waker(&self) -> Result<Snapshot, Snapshot> {
        self.fetch_update(|curr| {
            assert!(curr.is_join_interested());
            assert!(curr.is_join_waker_set());
            if curr.is_complete() {
                return None;
            }
            Some(Snapshot(curr.0 & !JOIN_WAKER))
        })
    }

    /// After waking the join waker on completion, hand the slot back.
    pub(crate) fn unset_waker_after_complete(&self) -> Snapshot {
        let prev = Snapshot(self.val.fetch_and(!JOIN_WAKER, AcqRel));
        assert!(prev.is_complete());
        assert!(prev.is_join_waker_set());
        Snapshot(prev.0 & !JOIN_WAKER)
    }

    /// Takes one more reference (clone of a waker or handle).
    pub(crate) fn ref_inc(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let prev = self.val.fetch_add(REF_ONE, Relaxed);
        // Like Arc: an overflow means references leak on a massive scale.
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Releases one reference; true if it was the last.
    pub(crate) fn ref_dec(&self) -> bool {
        let prev = Snapshot(self.val.fetch_sub(REF_ONE, AcqRel));
        assert!(prev.ref_count() >= 1, "ref count underflow");
        prev.ref_count() == 1
    }
}

impl Snapshot {
    pub(crate) fn is_idle(self) -> bool {
        self.0 & LIFECYCLE_MASK == 0
    }
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING == RUNNING
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE == COMPLETE
    }
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED == NOTIFIED
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED == CANCELLED
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST == JOIN_INTEREST
    }
    pub(crate) fn is_join_waker_set(self) -> bool {
        self.0 & JOIN_WAKER == JOIN_WAKER
    }
    pub(crate) fn ref_count(self) -> usize {
        (self.0 & REF_COUNT_MASK) >> REF_COUNT_SHIFT
    }
    fn ref_inc(&mut self) {
        self.0 += REF_ONE;
    }
    fn ref_dec(&mut self) {
        assert!(self.ref_count() > 0);
        self.0 -= REF_ONE;
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.load().fmt(f)
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interested", &self.is_join_interested())
            .field("join_waker", &self.is_join_waker_set())
            .field("ref_count", &self.ref_count())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn initial_state() {
        let s = State::new().load();
        assert_eq!(s.ref_count(), 3);
        assert!(s.is_notified() && s.is_idle() && s.is_join_interested());
        assert!(!s.is_cancelled() && !s.is_join_waker_set());
    }

    #[test]
    fn poll_pending_then_wake_by_val() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        // Poll returned pending, no wake: the queue's reference is released.
        assert_eq!(s.transition_to_idle(), TransitionToIdle::Ok);
        assert_eq!(s.load().ref_count(), 2);
        s.ref_inc(); // a waker clone
        assert_eq!(
            s.transition_to_notified_by_val(),
            TransitionToNotifiedByVal::Submit
        );
        // The queue entry got its own reference; the caller then drops the
        // waker's.
        assert_eq!(s.load().ref_count(), 4);
        assert!(!s.ref_dec());
        assert_eq!(s.load().ref_count(), 3);
        // A second wake while notified only drops its reference.
        s.ref_inc();
        assert_eq!(
            s.transition_to_notified_by_val(),
            TransitionToNotifiedByVal::DoNothing
        );
        assert_eq!(s.load().ref_count(), 3);
    }

    #[test]
    fn wake_while_running_reschedules_as_yield() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        assert_eq!(
            s.transition_to_notified_by_ref(),
            TransitionToNotifiedByRef::DoNothing
        );
        assert_eq!(s.transition_to_idle(), TransitionToIdle::OkNotified);
        // New entry's reference taken; the poller still holds its own.
        assert_eq!(s.load().ref_count(), 4);
        assert!(s.load().is_notified());
    }

    #[test]
    fn abort_idle_task_schedules_it() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        assert_eq!(s.transition_to_idle(), TransitionToIdle::Ok);
        assert!(s.transition_to_notified_and_cancel());
        assert!(!s.transition_to_notified_and_cancel());
        assert_eq!(s.transition_to_running(), TransitionToRunning::Cancelled);
    }

    #[test]
    fn abort_while_running_is_seen_by_poller() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        assert!(!s.transition_to_notified_and_cancel());
        assert_eq!(s.transition_to_idle(), TransitionToIdle::Cancelled);
        assert!(s.load().is_running());
    }

    #[test]
    fn join_handle_drop_after_complete_drops_output() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        let snap = s.transition_to_complete();
        assert!(snap.is_complete() && snap.is_join_interested());
        let t = s.transition_to_join_handle_dropped();
        assert!(t.drop_output && t.drop_waker);
    }

    #[test]
    fn fast_join_drop_only_from_initial_state() {
        let s = State::new();
        assert!(s.drop_join_handle_fast().is_ok());
        assert_eq!(s.load().ref_count(), 2);
        assert!(!s.load().is_join_interested());
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        assert!(s.drop_join_handle_fast().is_err());
    }

    #[test]
    fn shutdown_takes_idle_task_only() {
        let s = State::new();
        assert!(s.transition_to_shutdown());
        assert!(s.load().is_cancelled() && s.load().is_running());
        let s = State::new();
        assert_eq!(s.transition_to_running(), TransitionToRunning::Success);
        assert!(!s.transition_to_shutdown());
    }
}
