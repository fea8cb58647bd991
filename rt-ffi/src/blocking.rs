//! `rt_spawn_blocking`: work on the blocking pool, completion on the runtime.

use crate::callback::{rt_callback, CCall};
use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{rt_runtime, runtime_ref};
use crate::task::rt_task;
use std::ffi::{c_int, c_void};

/// `void (*)(void *arg)`.
pub type rt_work_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

/// The C work function with its argument.
struct Work {
    f: unsafe extern "C" fn(*mut c_void),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread.
unsafe impl Send for Work {}

/// Runs `work(arg)` on the blocking pool (a thread where blocking is fine),
/// then `done(arg, 0)` exactly once on a runtime thread. If `work` never
/// started (aborted first, or the runtime shut down while it waited for a
/// free pool thread, the pool being at `max_blocking_threads`),
/// `done(arg, RT_ECANCELED)` is called instead and `work` never runs. If the
/// runtime shuts down while `work` runs, `done(arg, 0)` runs on the pool
/// thread right after `work`. An abort of queued work makes the
/// `RT_ECANCELED` call at once, on the aborting thread.
///
/// `*out` (if not NULL) receives a task handle: `rt_task_abort` cancels
/// queued work (`RT_EALREADY` once it started), `rt_task_join` waits for
/// `done` to return. Release it with `rt_task_release`.
///
/// Returns 0; `RT_EINVAL` for a NULL `rt`, `work` or `done`;
/// `RT_ESHUTDOWN`; `-errno` (`-EAGAIN`) when the pool has no thread and
/// the OS refuses to start one (with a pool thread alive, the work waits
/// for a free one instead). On error neither function is called.
/// Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_spawn_blocking(
    rt: *const rt_runtime,
    work: rt_work_fn,
    done: rt_callback,
    arg: *mut c_void,
    out: *mut *mut rt_task,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let (Some(work), Some(done)) = (work, done) else {
            return RT_EINVAL;
        };
        let work = Work { f: work, arg };
        let run = move || {
            let work = work;
            // SAFETY: a C function pointer with the documented signature.
            unsafe { (work.f)(work.arg) }
        };
        let done = CCall { f: done, arg };
        match rt.spawn_blocking(run, done) {
            Ok(task) => {
                if !out.is_null() {
                    // SAFETY: non-NULL and writable per the contract.
                    unsafe { out.write(crate::task::new_handle(task)) };
                }
                0
            }
            Err(e) => code(&e),
        }
    })
}
