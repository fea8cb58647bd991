//! Callback tasks: `rt_spawn` and the `rt_task` handle.

use crate::callback::{rt_callback, CCall};
use crate::error::*;
use crate::guard::{ffi_guard, ffi_guard_void};
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::callback::TaskHandle;
use std::ffi::{c_int, c_void};
use std::time::Duration;

/// A handle to a spawned task: abort it, ask whether it finished, wait for
/// it. Reference counted: `rt_task_release` gives up the caller's
/// reference (it does not cancel the task).
pub struct rt_task {
    handle: TaskHandle,
}

/// A new caller-owned handle.
pub(crate) fn new_handle(handle: TaskHandle) -> *mut rt_task {
    Box::into_raw(Box::new(rt_task { handle }))
}

/// Spawns a callback task: `func(arg, 0)` runs once on a runtime thread (on a
/// current-thread runtime: on the thread that drives it). If the task is
/// aborted before it started, or the runtime's shutdown begins first (also
/// when a callback on that worker called `rt_runtime_shutdown`), `func(arg,
/// RT_ECANCELED)` is called instead, exactly once, possibly on the thread
/// calling `rt_task_abort` / `rt_runtime_shutdown`.
///
/// If `out` is not NULL it receives a task handle the caller owns and must
/// release with `rt_task_release`. `arg` is passed through untouched; it
/// must stay valid until the callback's call, and may be used from any
/// thread.
///
/// Returns 0; `RT_EINVAL` if `rt` or `func` is NULL; `RT_ESHUTDOWN` after
/// shutdown. On error `func` is never called. Thread-safe, also from inside
/// callbacks.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable; `func` has the
/// documented signature.
#[no_mangle]
pub unsafe extern "C" fn rt_spawn(
    rt: *const rt_runtime,
    func: rt_callback,
    arg: *mut c_void,
    out: *mut *mut rt_task,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let Some(f) = func else {
            return RT_EINVAL;
        };
        // (Once shutdown has begun the task makes no call with status 0;
        // the callback, dropped uncalled, then gets RT_ECANCELED.)
        match rt.spawn(CCall { f, arg }, !out.is_null()) {
            Ok(task) => {
                if let Some(task) = task {
                    // SAFETY: non-NULL (a handle was asked for) and writable
                    // per the contract.
                    unsafe { out.write(new_handle(task)) };
                }
                0
            }
            Err(e) => code(&e),
        }
    })
}

/// # Safety
/// `task` is NULL or a live handle.
unsafe fn task_ref<'a>(task: *const rt_task) -> Result<&'a rt_task, c_int> {
    // SAFETY: forwarded from the caller.
    unsafe { task.as_ref() }.ok_or(RT_EINVAL)
}

/// Aborts a task. A callback task that has not started gets its single
/// call with `RT_ECANCELED` instead; queued blocking work never runs (its
/// `done` gets `RT_ECANCELED`); a poll task is cancelled at its next
/// `RT_PENDING` (its `drop` runs once). Returns 0 if the abort took
/// effect, `RT_EALREADY` if the task already finished or (callback and
/// blocking tasks) already started: nothing changes then. `RT_EINVAL` for
/// NULL. Thread-safe.
///
/// # Safety
/// `task` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn rt_task_abort(task: *const rt_task) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let task = match unsafe { task_ref(task) } {
            Ok(t) => t,
            Err(e) => return e,
        };
        status(task.handle.abort())
    })
}

/// 1 if the task's final call has returned, 0 if not, `RT_EINVAL` for
/// NULL. Thread-safe.
///
/// # Safety
/// `task` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn rt_task_is_finished(task: *const rt_task) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { task_ref(task) } {
            Ok(t) => c_int::from(t.handle.is_finished()),
            Err(e) => e,
        }
    })
}

/// Blocks until the task's final call has returned, at most `timeout_ms`
/// (negative: no limit; 0: just check). Returns 0 when finished,
/// `RT_ETIMEDOUT`, `RT_EINVAL` for NULL, or `RT_EDEADLK` (without waiting)
/// when called on a thread that drives a runtime (a worker) or from inside
/// any runtime callback (including final `RT_ECANCELED` calls made during
/// shutdown) unless the task has already finished: waiting there could
/// wait for itself.
///
/// # Safety
/// `task` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn rt_task_join(task: *const rt_task, timeout_ms: i64) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let task = match unsafe { task_ref(task) } {
            Ok(t) => t,
            Err(e) => return e,
        };
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        status(task.handle.join(timeout))
    })
}

/// A new handle to the same task (handles are reference counted: each one
/// is released with `rt_task_release`). Returns NULL if `task` is NULL.
/// Thread-safe.
///
/// # Safety
/// `task` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn rt_task_clone(task: *const rt_task) -> *mut rt_task {
    let mut out = std::ptr::null_mut();
    ffi_guard_void(|| {
        // SAFETY: forwarded from the caller.
        if let Ok(t) = unsafe { task_ref(task) } {
            out = new_handle(t.handle.clone());
        }
    });
    out
}

/// Releases the caller's task handle. The task itself is not affected.
/// NULL is ignored. Thread-safe (but each handle is released once).
///
/// # Safety
/// `task` is NULL or a handle from `rt_spawn` not yet released.
#[no_mangle]
pub unsafe extern "C" fn rt_task_release(task: *mut rt_task) {
    ffi_guard_void(|| {
        if !task.is_null() {
            // SAFETY: created by Box::into_raw in rt_spawn; released once.
            drop(unsafe { Box::from_raw(task) });
        }
    })
}
