//! `rt_spawn_blocking`: work on the blocking pool, completion on the runtime.

use crate::callback::{rt_callback, CallOnce};
use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{rt_runtime, runtime_ref};
use crate::task::{rt_task, FinishOnDrop, TaskShared};
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};

/// `void (*)(void *arg)`.
pub type rt_work_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

#[derive(Clone, Copy)]
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
        let handle = match rt.handle() {
            Ok(h) => h.clone(),
            Err(e) => return e,
        };
        let work = Work { f: work, arg };
        let shared = TaskShared::new();
        // `done` lives here until it is called (or, dropped uncalled, gets
        // RT_ECANCELED and marks the task finished).
        let finish = Arc::new(Mutex::new(Some(FinishOnDrop {
            callback: Some(CallOnce::new(done, arg)),
            shared: shared.clone(),
        })));
        // An abort of queued work makes the RT_ECANCELED call right away, on
        // the aborting thread (the queued closure then finds nothing to do).
        // Weak: the hook lives in the task's shared state, which `done`'s
        // guard points back to; a strong reference would be a cycle that keeps
        // `done` from ever being called if the work is dropped unrun.
        let on_abort = Arc::downgrade(&finish);
        let weak_finish = on_abort.clone();
        // The closure holds the only strong reference outside the runtime:
        // this thread keeps none, or it could be the last to let go (and so
        // make the call) after a racing shutdown already returned.
        let in_pool = finish;
        crate::task::set_on_abort(
            &shared,
            Box::new(move || {
                if let Some(finish) = on_abort.upgrade() {
                    drop(finish.lock().unwrap_or_else(|e| e.into_inner()).take());
                }
            }),
        );
        let task_shared = shared.clone();
        let rt_handle = handle.clone();
        // Keeps the identity valid (not reused) while the work runs.
        let owner = rt.shutdown_flag();
        let spawned = handle.try_spawn_blocking(move || {
            let finish = in_pool;
            if !task_shared.try_start() {
                return; // aborted: `finish` drops -> RT_ECANCELED
            }
            let work = work;
            // SAFETY: a C function pointer with the documented signature.
            crate::callback::in_blocking_work(owner.identity(), || unsafe { (work.f)(work.arg) });
            // From now on `done` reports success even if the runtime drops
            // the completion task (a shutdown racing with this).
            if let Some(f) = finish.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                if let Some(cb) = f.callback.as_mut() {
                    cb.set_drop_status(0);
                }
            }
            let on_runtime = finish.clone();
            let completion = rt_handle.spawn(async move {
                let taken = on_runtime.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(mut f) = taken {
                    if let Some(cb) = f.callback.take() {
                        cb.call(0);
                    }
                }
            });
            if completion.is_finished() {
                // The runtime refused the task (shut down): run `done` here.
                let taken = finish.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(mut f) = taken {
                    if let Some(cb) = f.callback.take() {
                        cb.call(0);
                    }
                }
            }
        });
        let join = match spawned {
            Ok(join) => join,
            // No pool thread and the OS refused one: a failed call, so
            // `done` is never called. Take it out before the closure (which
            // holds `finish`, alive until then) is dropped.
            Err((e, job)) => {
                if let Some(finish) = weak_finish.upgrade() {
                    let taken = finish.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(mut f) = taken {
                        if let Some(cb) = f.callback.take() {
                            cb.disarm();
                        }
                    }
                }
                drop(job);
                return from_io(&e);
            }
        };
        // If the pool refused the closure (a shutdown racing with this call),
        // dropping it made `done`'s RT_ECANCELED call: still a success.
        crate::task::set_abort(&shared, join.abort_handle());
        if !out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(crate::task::new_handle(shared)) };
        }
        0
    })
}
