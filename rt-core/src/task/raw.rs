//! `RawTask`: a type-erased pointer to a task, and the vtable of typed
//! operations behind it.
//!
//! A `RawTask` is `Copy` and owns nothing; the owning wrappers (`Task`,
//! `Notified`, `JoinHandle`, `AbortHandle`, wakers) each hold one reference
//! counted in the state word.

use super::cell::{Cell, Header};
use super::harness;
use super::state::{State, TransitionToNotifiedByRef, TransitionToNotifiedByVal};
use super::{Id, Schedule};
use std::future::Future;
use std::ptr::NonNull;
use std::task::Waker;

/// Typed operations on a task, reached through its header.
pub(crate) struct Vtable {
    /// Polls the task; consumes the caller's (`Notified`) reference.
    pub(super) poll: unsafe fn(NonNull<Header>),
    /// Hands a new `Notified` (whose reference the caller took) to the
    /// task's scheduler.
    pub(super) schedule: unsafe fn(NonNull<Header>),
    /// Frees the cell.
    pub(super) dealloc: unsafe fn(NonNull<Header>),
    /// Reads the output into `*mut Poll<Result<T::Output, JoinError>>` if
    /// the task is complete, else registers the waker.
    pub(super) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Join handle drop, slow path; consumes the handle's reference.
    pub(super) drop_join_handle_slow: unsafe fn(NonNull<Header>),
    /// Runtime shutdown; consumes the owned list's reference.
    pub(super) shutdown: unsafe fn(NonNull<Header>),
}

/// The vtable for tasks running a `T` on an `S`.
pub(super) fn vtable<T: Future, S: Schedule>() -> &'static Vtable {
    &Vtable {
        poll: harness::poll::<T, S>,
        schedule: harness::schedule::<T, S>,
        dealloc: harness::dealloc::<T, S>,
        try_read_output: harness::try_read_output::<T, S>,
        drop_join_handle_slow: harness::drop_join_handle_slow::<T, S>,
        shutdown: harness::shutdown::<T, S>,
    }
}

/// A type-erased, non-owning pointer to a task.
#[derive(Clone, Copy)]
pub(crate) struct RawTask {
    ptr: NonNull<Header>,
}

impl RawTask {
    /// Allocates a task; the returned pointer carries the three initial
    /// references.
    pub(super) fn new<T, S>(future: T, scheduler: S, id: Id) -> RawTask
    where
        T: Future,
        S: Schedule,
    {
        RawTask {
            ptr: Cell::<T, S>::allocate(future, scheduler, id),
        }
    }

    /// # Safety
    /// `ptr` points to a live task header.
    pub(super) unsafe fn from_raw(ptr: NonNull<Header>) -> RawTask {
        RawTask { ptr }
    }

    pub(super) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    pub(super) fn header(&self) -> &Header {
        // SAFETY: every RawTask in use is backed by a reference its owner
        // holds, so the cell is alive.
        unsafe { self.ptr.as_ref() }
    }

    pub(super) fn state(&self) -> &State {
        &self.header().state
    }

    pub(super) fn id(&self) -> Id {
        self.header().id
    }

    /// Polls the task; consumes one reference (the `Notified`'s).
    pub(super) fn poll(self) {
        // SAFETY: the vtable matches the cell's types; the caller passes
        // ownership of a `Notified` reference as `poll` requires.
        unsafe { (self.header().vtable.poll)(self.ptr) }
    }

    /// Schedules the task; consumes one reference (moved into the queue).
    fn schedule(self) {
        // SAFETY: as for poll; the caller took a reference for the queue.
        unsafe { (self.header().vtable.schedule)(self.ptr) }
    }

    fn dealloc(self) {
        // SAFETY: called only once the reference count reached zero, so
        // no other pointer to the cell is used again.
        unsafe { (self.header().vtable.dealloc)(self.ptr) }
    }

    /// # Safety
    /// `dst` points to a `Poll<Result<T::Output, JoinError>>` for this
    /// task's output type, and the caller is the join handle.
    pub(super) unsafe fn try_read_output(self, dst: *mut (), waker: &Waker) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.try_read_output)(self.ptr, dst, waker) }
    }

    /// Consumes the join handle's reference.
    pub(super) fn drop_join_handle_slow(self) {
        // SAFETY: the caller is the join handle giving up its reference.
        unsafe { (self.header().vtable.drop_join_handle_slow)(self.ptr) }
    }

    /// Consumes the owned list's reference.
    pub(super) fn shutdown(self) {
        // SAFETY: the caller removed the task from its owned list and passes
        // that reference on.
        unsafe { (self.header().vtable.shutdown)(self.ptr) }
    }

    /// Takes one more reference.
    pub(super) fn ref_inc(self) {
        self.state().ref_inc();
    }

    /// Releases one reference, freeing the task if it was the last.
    pub(super) fn drop_reference(self) {
        if self.state().ref_dec() {
            self.dealloc();
        }
    }

    /// `Waker::wake`: consumes one reference.
    pub(super) fn wake_by_val(self) {
        match self.state().transition_to_notified_by_val() {
            TransitionToNotifiedByVal::Submit => {
                self.schedule();
                // Only now: scheduling reads the scheduler inside the task.
                self.drop_reference();
            }
            TransitionToNotifiedByVal::DoNothing => {}
            TransitionToNotifiedByVal::Dealloc => self.dealloc(),
        }
    }

    /// `Waker::wake_by_ref`.
    pub(super) fn wake_by_ref(self) {
        match self.state().transition_to_notified_by_ref() {
            TransitionToNotifiedByRef::Submit => self.schedule(),
            TransitionToNotifiedByRef::DoNothing => {}
        }
    }

    /// Abort requested through a handle.
    pub(super) fn remote_abort(self) {
        if self.state().transition_to_notified_and_cancel() {
            // A new reference was taken for this notification: the runtime
            // will drop the future when it polls the entry.
            self.schedule();
        }
    }
}

// SAFETY: a RawTask is only a pointer; the task's shared parts (state word)
// are atomic and its typed parts are accessed under the state protocol.
unsafe impl Send for RawTask {}
// SAFETY: as for Send.
unsafe impl Sync for RawTask {}
