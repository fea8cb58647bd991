//! C futures: `rt_spawn_poll` and `rt_waker`.

use crate::error::*;
use crate::guard::{ffi_guard, ffi_guard_void};
use crate::runtime::{rt_runtime, runtime_ref};
use crate::task::new_handle;
use rt_core::callback::{in_callback, ShutdownFlag, TaskHandle};
use std::ffi::{c_int, c_void};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Returned by a poll function: the task is done.
pub const RT_READY: c_int = 0;
/// Returned by a poll function: call me again after a wake.
pub const RT_PENDING: c_int = 1;

/// A waker handed to a C poll function. The one passed to `poll` is
/// borrowed for that call only: keep it with `rt_waker_clone`.
pub struct rt_waker {
    waker: Waker,
    owned: bool,
}

/// `int (*)(void *state, rt_waker *waker)`.
pub type rt_poll_fn =
    Option<unsafe extern "C" fn(state: *mut c_void, waker: *mut rt_waker) -> c_int>;
/// `void (*)(void *state)`.
pub type rt_drop_fn = Option<unsafe extern "C" fn(state: *mut c_void)>;

struct CFuture {
    poll: unsafe extern "C" fn(*mut c_void, *mut rt_waker) -> c_int,
    drop: Option<unsafe extern "C" fn(*mut c_void)>,
    state: *mut c_void,
    /// The task's handle state: finished when this drops.
    task: TaskHandle,
    done: bool,
    /// Once set, `poll` is not called again (the task waits to be dropped
    /// by the shutdown, which runs `drop`).
    shutdown: ShutdownFlag,
}

// SAFETY: the API documents that `state` is used from runtime threads (one
// at a time: a task is never polled concurrently).
unsafe impl Send for CFuture {}

impl Future for CFuture {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        if self.shutdown.is_set() {
            // Shutdown has begun (maybe from the last poll: its worker would
            // go on polling until it notices): no more polls, the shutdown
            // drops the task.
            return Poll::Pending;
        }
        // Never marked started: an abort cancels at the next RT_PENDING.
        let mut w = rt_waker {
            waker: cx.waker().clone(),
            owned: false,
        };
        // SAFETY: a C function pointer with the documented signature; `w`
        // outlives the call.
        let r = in_callback(|| unsafe { (self.poll)(self.state, &mut w) });
        if r == RT_PENDING {
            Poll::Pending
        } else {
            self.done = true;
            Poll::Ready(())
        }
    }
}

impl Drop for CFuture {
    fn drop(&mut self) {
        if let Some(d) = self.drop {
            // SAFETY: called once, after the last poll.
            in_callback(|| unsafe { d(self.state) });
        }
        self.task.finish();
    }
}

/// Spawns a task driven by a C poll function: `poll(state, waker)` is
/// called on a runtime thread (never two at once) and returns `RT_READY`
/// when done or `RT_PENDING` after arranging a wake (keep a clone of the
/// waker and call `rt_waker_wake` later). A task that returns `RT_PENDING`
/// without keeping the waker is simply never polled again; it is not a
/// leak: shutdown still drops it. `drop(state)` (if not NULL) runs exactly
/// once after the last poll: after `RT_READY`, on abort (at the next
/// `RT_PENDING`, or before the first poll), or at shutdown. No poll starts
/// once the runtime's shutdown has begun (also when the poll function
/// itself called `rt_runtime_shutdown`).
///
/// `*out` (if not NULL) receives a task handle to release with
/// `rt_task_release`. Returns 0; `RT_EINVAL` for a NULL `rt` or `poll`;
/// `RT_ESHUTDOWN` (then neither function is called). Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_spawn_poll(
    rt: *const rt_runtime,
    poll: rt_poll_fn,
    state: *mut c_void,
    drop: rt_drop_fn,
    out: *mut *mut crate::task::rt_task,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let Some(poll) = poll else {
            return RT_EINVAL;
        };
        let handle = match rt.handle() {
            Ok(h) => h,
            Err(e) => return code(&e),
        };
        let task = TaskHandle::new_unstarted();
        let fut = CFuture {
            poll,
            drop,
            state,
            task: task.clone(),
            done: false,
            shutdown: rt.shutdown_flag(),
        };
        let join = handle.spawn(fut);
        task.set_abort(join.abort_handle());
        if !out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(new_handle(task)) };
        }
        0
    })
}

/// A new owned waker for the same task (release it with `rt_waker_wake`
/// or `rt_waker_free`). Returns NULL if `waker` is NULL. Thread-safe.
///
/// # Safety
/// `waker` is NULL or a live waker.
#[no_mangle]
pub unsafe extern "C" fn rt_waker_clone(waker: *const rt_waker) -> *mut rt_waker {
    let mut out = std::ptr::null_mut();
    ffi_guard_void(|| {
        // SAFETY: forwarded from the caller.
        if let Some(w) = unsafe { waker.as_ref() } {
            out = Box::into_raw(Box::new(rt_waker {
                waker: w.waker.clone(),
                owned: true,
            }));
        }
    });
    out
}

/// Wakes the task and frees the waker (an owned one, from
/// `rt_waker_clone`). Returns 0; `RT_EINVAL` for NULL or for the borrowed
/// waker passed to `poll` (use `rt_waker_wake_by_ref` on that one).
/// Thread-safe.
///
/// # Safety
/// `waker` is NULL or a live waker, not used again after success.
#[no_mangle]
pub unsafe extern "C" fn rt_waker_wake(waker: *mut rt_waker) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { waker.as_ref() } {
            Some(w) if w.owned => {
                // SAFETY: owned wakers come from Box::into_raw in rt_waker_clone.
                let w = unsafe { Box::from_raw(waker) };
                w.waker.wake();
                0
            }
            _ => RT_EINVAL,
        }
    })
}

/// Wakes the task; the waker stays valid. Returns 0 or `RT_EINVAL` for
/// NULL. Thread-safe.
///
/// # Safety
/// `waker` is NULL or a live waker.
#[no_mangle]
pub unsafe extern "C" fn rt_waker_wake_by_ref(waker: *const rt_waker) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { waker.as_ref() } {
            Some(w) => {
                w.waker.wake_by_ref();
                0
            }
            None => RT_EINVAL,
        }
    })
}

/// Frees an owned waker without waking. NULL and the borrowed waker passed
/// to `poll` are ignored. Thread-safe.
///
/// # Safety
/// `waker` is NULL or a live waker, not used again.
#[no_mangle]
pub unsafe extern "C" fn rt_waker_free(waker: *mut rt_waker) {
    ffi_guard_void(|| {
        // SAFETY: forwarded from the caller.
        if let Some(w) = unsafe { waker.as_ref() } {
            if w.owned {
                // SAFETY: owned wakers come from Box::into_raw.
                drop(unsafe { Box::from_raw(waker) });
            }
        }
    })
}
