//! The task waker: our own `RawWaker` vtable over the task header.
//!
//! A waker holds one task reference. `wake` consumes it, `wake_by_ref`
//! keeps it, `clone` takes another.

use super::cell::Header;
use super::raw::RawTask;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_waker, wake_by_val, wake_by_ref, drop_waker);

/// A waker borrowed for the duration of one poll: it does not hold a
/// reference of its own (the poller's reference keeps the task alive), so it
/// must never be dropped as a real waker.
pub(super) struct WakerRef {
    waker: ManuallyDrop<Waker>,
}

impl Deref for WakerRef {
    type Target = Waker;
    fn deref(&self) -> &Waker {
        &self.waker
    }
}

/// The waker passed to the future while it is polled.
pub(super) fn waker_ref(header: NonNull<Header>) -> WakerRef {
    let raw = RawWaker::new(header.as_ptr() as *const (), &WAKER_VTABLE);
    // SAFETY: the vtable functions uphold the RawWaker contract for a task
    // header pointer; ManuallyDrop keeps the borrowed waker from releasing a
    // reference it does not own.
    let waker = unsafe { Waker::from_raw(raw) };
    WakerRef {
        waker: ManuallyDrop::new(waker),
    }
}

fn raw_task(ptr: *const ()) -> RawTask {
    // SAFETY: every waker built by this module wraps a non-null header
    // pointer of a task it holds (or, for WakerRef, borrows) a reference to.
    unsafe { RawTask::from_raw(NonNull::new_unchecked(ptr as *mut Header)) }
}

unsafe fn clone_waker(ptr: *const ()) -> RawWaker {
    raw_task(ptr).ref_inc();
    RawWaker::new(ptr, &WAKER_VTABLE)
}

unsafe fn wake_by_val(ptr: *const ()) {
    raw_task(ptr).wake_by_val();
}

unsafe fn wake_by_ref(ptr: *const ()) {
    raw_task(ptr).wake_by_ref();
}

unsafe fn drop_waker(ptr: *const ()) {
    raw_task(ptr).drop_reference();
}
