//! The typed task operations behind the vtable: poll, complete, cancel,
//! join-handle reads and drops, shutdown.

use super::cell::{Cell, Core, Header, Trailer};
use super::state::{Snapshot, TransitionToIdle, TransitionToRunning};
use super::waker::waker_ref;
use super::{JoinError, Notified, Schedule, Task};
use std::any::Any;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

/// Typed view of a task cell.
struct Harness<T: Future, S: 'static> {
    cell: NonNull<Cell<T, S>>,
}

impl<T: Future, S: Schedule> Harness<T, S> {
    /// # Safety
    /// `ptr` is the header of a live `Cell<T, S>`.
    unsafe fn from_raw(ptr: NonNull<Header>) -> Harness<T, S> {
        Harness { cell: ptr.cast() }
    }

    fn cell(&self) -> &Cell<T, S> {
        // SAFETY: the caller of from_raw guaranteed a live cell of this type,
        // and the operation running now holds a reference to it.
        unsafe { self.cell.as_ref() }
    }

    fn header(&self) -> &Header {
        &self.cell().header
    }

    fn core(&self) -> &Core<T, S> {
        &self.cell().core
    }

    fn trailer(&self) -> &Trailer {
        &self.cell().trailer
    }

    fn header_ptr(&self) -> NonNull<Header> {
        self.cell.cast()
    }

    /// A `Task` for the reference the caller passes on (no count change).
    fn task_from_own_ref(&self) -> Task<S> {
        // SAFETY: the caller hands over a reference it owns.
        unsafe { Task::from_raw(self.header_ptr()) }
    }

    fn drop_reference(self) {
        if self.header().state.ref_dec() {
            self.dealloc();
        }
    }

    fn dealloc(self) {
        // SAFETY: the reference count is zero: this is the last pointer to
        // the cell, which was allocated as a Box<Cell<T, S>>.
        drop(unsafe { Box::from_raw(self.cell.as_ptr()) });
    }

    fn poll(self) {
        match self.poll_inner() {
            PollOutcome::Done => {}
            PollOutcome::Notified => {
                // Woken during its own poll: queue it at the back (a yield,
                // never LIFO) with the reference taken for it, then drop the
                // poller's (only now: scheduling reads task memory).
                let task = Notified(self.task_from_own_ref());
                self.core().scheduler.yield_now(task);
                self.drop_reference();
            }
            PollOutcome::Complete => self.complete(),
            PollOutcome::Dealloc => self.dealloc(),
        }
    }

    fn poll_inner(&self) -> PollOutcome {
        match self.header().state.transition_to_running() {
            TransitionToRunning::Success => {
                let waker = waker_ref(self.header_ptr());
                let cx = Context::from_waker(&waker);
                if poll_future(self.core(), cx).is_ready() {
                    return PollOutcome::Complete;
                }
                match self.header().state.transition_to_idle() {
                    TransitionToIdle::Ok => PollOutcome::Done,
                    TransitionToIdle::OkNotified => PollOutcome::Notified,
                    TransitionToIdle::OkDealloc => PollOutcome::Dealloc,
                    TransitionToIdle::Cancelled => {
                        cancel_task(self.core());
                        PollOutcome::Complete
                    }
                }
            }
            TransitionToRunning::Cancelled => {
                cancel_task(self.core());
                PollOutcome::Complete
            }
            TransitionToRunning::Failed => PollOutcome::Done,
            TransitionToRunning::Dealloc => PollOutcome::Dealloc,
        }
    }

    /// The caller holds `RUNNING` and the stage holds the final output (or
    /// error). Publishes completion, notifies the join handle, releases the
    /// task from its owner and drops the caller's reference.
    fn complete(self) {
        let snapshot = self.header().state.transition_to_complete();
        // Destructors and wakers are user code: never let them unwind past
        // this point, the bookkeeping below must run.
        let _ = catch_unwind(AssertUnwindSafe(|| self.notify_join(snapshot)));

        // One reference for the caller, one more if the owned list gave
        // its entry back.
        let me = ManuallyDrop::new(self.task_from_own_ref());
        let num_release = match self.core().scheduler.release(&me) {
            Some(task) => {
                std::mem::forget(task);
                2
            }
            None => 1,
        };
        if self.header().state.transition_to_terminal(num_release) {
            self.dealloc();
        }
    }

    fn notify_join(&self, snapshot: Snapshot) {
        if !snapshot.is_join_interested() {
            // Nobody will read the output: drop it here.
            // SAFETY: COMPLETE without JOIN_INTEREST gives the completing
            // thread the stage.
            unsafe { self.core().drop_future_or_output() };
        } else if snapshot.is_join_waker_set() {
            // SAFETY: COMPLETE with JOIN_WAKER set lets the runtime read the
            // waker slot.
            unsafe { self.trailer().wake_join() };
            let snapshot = self.header().state.unset_waker_after_complete();
            if !snapshot.is_join_interested() {
                // The handle went away meanwhile and left the waker to us.
                // SAFETY: JOIN_INTEREST and JOIN_WAKER both clear after
                // COMPLETE: no one else touches the slot.
                unsafe { self.trailer().set_waker(None) };
            }
        }
    }

    fn shutdown(self) {
        if !self.header().state.transition_to_shutdown() {
            // Running elsewhere (that poller will see CANCELLED) or already
            // complete: only give up the owned list's reference.
            self.drop_reference();
            return;
        }
        // We took RUNNING: drop the future and complete as cancelled.
        cancel_task(self.core());
        self.complete();
    }

    fn try_read_output(&self, dst: &mut Poll<Result<T::Output, JoinError>>, waker: &Waker) {
        if can_read_output(self.header(), self.trailer(), waker) {
            // SAFETY: COMPLETE observed by the join handle, the caller.
            *dst = Poll::Ready(unsafe { self.core().take_output() });
        }
    }

    fn drop_join_handle_slow(self) {
        let transition = self.header().state.transition_to_join_handle_dropped();
        if transition.drop_output {
            // SAFETY: COMPLETE and the handle held JOIN_INTEREST: the output
            // is the handle's to drop.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                self.core().drop_future_or_output()
            }));
        }
        if transition.drop_waker {
            // SAFETY: JOIN_WAKER is clear, so the slot is the handle's. A
            // panicking waker destructor must not skip the release below.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                self.trailer().set_waker(None)
            }));
        }
        self.drop_reference();
    }
}

enum PollOutcome {
    Done,
    Notified,
    Complete,
    Dealloc,
}

/// Polls the future inside `catch_unwind`; on completion (or panic) the
/// output is stored in the stage and `Ready` returned.
fn poll_future<T: Future, S>(core: &Core<T, S>, cx: Context<'_>) -> Poll<()> {
    // SAFETY: the caller holds RUNNING.
    let output = match catch_unwind(AssertUnwindSafe(|| unsafe { core.poll(cx) })) {
        Ok(Poll::Pending) => return Poll::Pending,
        Ok(Poll::Ready(output)) => Ok(output),
        Err(panic) => {
            // The future panicked mid-poll; it is still in the stage. Drop
            // it now (its destructor may panic too: that is caught and lost).
            // SAFETY: the caller holds RUNNING.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe { core.drop_future_or_output() }));
            Err(JoinError::panic(core.task_id, panic))
        }
    };
    // SAFETY: the caller holds RUNNING; the stage is Consumed, so nothing is
    // dropped by the store.
    unsafe { core.store_output(output) };
    Poll::Ready(())
}

/// Drops the future of a cancelled task and stores the cancellation (or the
/// panic its destructor raised) as the output.
fn cancel_task<T: Future, S>(core: &Core<T, S>) {
    // SAFETY: the caller holds RUNNING.
    let res = catch_unwind(AssertUnwindSafe(|| unsafe { core.drop_future_or_output() }));
    let err = panic_to_error(core, res);
    // SAFETY: the caller holds RUNNING; the stage is Consumed.
    unsafe { core.store_output(Err(err)) };
}

fn panic_to_error<T: Future, S>(
    core: &Core<T, S>,
    res: Result<(), Box<dyn Any + Send>>,
) -> JoinError {
    match res {
        Ok(()) => JoinError::cancelled(core.task_id),
        Err(panic) => JoinError::panic(core.task_id, panic),
    }
}

/// The join handle's side of completion: true if the output can be read
/// now; otherwise the waker is registered (or refreshed).
fn can_read_output(header: &Header, trailer: &Trailer, waker: &Waker) -> bool {
    let snapshot = header.state.load();
    if snapshot.is_complete() {
        return true;
    }
    let res = if !snapshot.is_join_waker_set() {
        set_join_waker(header, trailer, waker.clone(), snapshot)
    } else {
        // SAFETY: the slot is set and only the join handle (the caller)
        // writes it.
        if unsafe { trailer.will_wake(waker) } {
            return false;
        }
        // Take the slot back, store the new waker, publish again.
        header
            .state
            .unset_waker()
            .and_then(|snapshot| set_join_waker(header, trailer, waker.clone(), snapshot))
    };
    match res {
        Ok(_) => false,
        Err(snapshot) => {
            assert!(snapshot.is_complete());
            true
        }
    }
}

fn set_join_waker(
    header: &Header,
    trailer: &Trailer,
    waker: Waker,
    snapshot: Snapshot,
) -> Result<Snapshot, Snapshot> {
    assert!(snapshot.is_join_interested());
    assert!(!snapshot.is_join_waker_set());
    // SAFETY: JOIN_WAKER is clear: the slot belongs to the join handle.
    unsafe { trailer.set_waker(Some(waker)) };
    let res = header.state.set_join_waker();
    if res.is_err() {
        // Completed meanwhile: the runtime will not look at the slot, clear it.
        // SAFETY: JOIN_WAKER is still clear.
        unsafe { trailer.set_waker(None) };
    }
    res
}

// ---- vtable entry points ----

/// # Safety
/// `ptr` is the header of a live `Cell<T, S>`; the caller passes one reference.
pub(super) unsafe fn poll<T: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    unsafe { Harness::<T, S>::from_raw(ptr) }.poll();
}

/// # Safety
/// As for `poll`; the passed reference moves into the queue entry.
pub(super) unsafe fn schedule<T: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    let harness = unsafe { Harness::<T, S>::from_raw(ptr) };
    let task = Notified(harness.task_from_own_ref());
    harness.core().scheduler.schedule(task);
}

/// # Safety
/// The reference count is zero and `ptr` is the header of a `Cell<T, S>`.
pub(super) unsafe fn dealloc<T: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    unsafe { Harness::<T, S>::from_raw(ptr) }.dealloc();
}

/// # Safety
/// `dst` points to a `Poll<Result<T::Output, JoinError>>`; the caller is the
/// join handle of the live task at `ptr`.
pub(super) unsafe fn try_read_output<T: Future, S: Schedule>(
    ptr: NonNull<Header>,
    dst: *mut (),
    waker: &Waker,
) {
    // SAFETY: forwarded from the caller: the pointer type matches T's output.
    let dst = unsafe { &mut *(dst as *mut Poll<Result<T::Output, JoinError>>) };
    // SAFETY: forwarded from the caller.
    unsafe { Harness::<T, S>::from_raw(ptr) }.try_read_output(dst, waker);
}

/// # Safety
/// The caller is the join handle giving up its reference.
pub(super) unsafe fn drop_join_handle_slow<T: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    unsafe { Harness::<T, S>::from_raw(ptr) }.drop_join_handle_slow();
}

/// # Safety
/// The caller took the task out of its owned list and passes that reference.
pub(super) unsafe fn shutdown<T: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    unsafe { Harness::<T, S>::from_raw(ptr) }.shutdown();
}
