//! Callback tasks: `rt_spawn` and the `rt_task` handle.

use crate::callback::{rt_callback, CallOnce};
use crate::error::*;
use crate::guard::{ffi_guard, ffi_guard_void};
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::task::AbortHandle;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::AcqRel, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// A handle to a spawned task: abort it, ask whether it finished, wait for
/// it. Reference counted: `rt_task_release` gives up the caller's
/// reference (it does not cancel the task).
pub struct rt_task {
    shared: Arc<TaskShared>,
}

pub(crate) struct TaskShared {
    /// PENDING until the callback starts (RUNNING) or the task is aborted
    /// first (CANCELLED).
    start: AtomicU8,
    /// Set (under the mutex) once the final call returned.
    done: Mutex<bool>,
    cv: Condvar,
    /// Threads waiting in `rt_task_join` (changed and read under `done`'s
    /// lock): `finish` skips the condvar's syscall when there are none.
    joiners: AtomicU32,
    abort: Mutex<Option<AbortHandle>>,
    /// Run by a successful abort (blocking work: the `RT_ECANCELED` call
    /// happens at once, not when a pool thread reaches the queued job).
    on_abort: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl TaskShared {
    pub(crate) fn new() -> Arc<TaskShared> {
        Arc::new(TaskShared {
            start: AtomicU8::new(PENDING),
            done: Mutex::new(false),
            cv: Condvar::new(),
            joiners: AtomicU32::new(0),
            abort: Mutex::new(None),
            on_abort: Mutex::new(None),
        })
    }

    /// Claims the right to run. False if aborted first.
    pub(crate) fn try_start(&self) -> bool {
        self.start
            .compare_exchange(
                PENDING,
                RUNNING,
                AcqRel,
                std::sync::atomic::Ordering::Acquire,
            )
            .is_ok()
    }

    pub(crate) fn finish(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done = true;
        let joiners = self.joiners.load(Relaxed);
        drop(done);
        if joiners > 0 {
            self.cv.notify_all();
        }
    }

    fn is_finished(&self) -> bool {
        *self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sets what a successful abort runs besides cancelling the task.
pub(crate) fn set_on_abort(shared: &TaskShared, hook: Box<dyn FnOnce() + Send>) {
    *shared.on_abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
}

/// Stores the abort handle of the task behind `shared`.
pub(crate) fn set_abort(shared: &TaskShared, abort: AbortHandle) {
    *shared.abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(abort);
}

/// A new caller-owned handle.
pub(crate) fn new_handle(shared: Arc<TaskShared>) -> *mut rt_task {
    Box::into_raw(Box::new(rt_task { shared }))
}

/// Marks the task finished when dropped, after the final call ran (its
/// fields drop in order: the callback first).
pub(crate) struct FinishOnDrop {
    pub(crate) callback: Option<CallOnce>,
    pub(crate) shared: Arc<TaskShared>,
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        // An uncalled callback gets RT_ECANCELED here.
        drop(self.callback.take());
        self.shared.finish();
    }
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
        let handle = match rt.handle() {
            Ok(h) => h,
            Err(e) => return e,
        };
        // Once shutdown has begun the task makes no call with status 0: its
        // worker may still poll it before it notices (after a callback shut
        // the runtime down, say); the callback, dropped uncalled, then gets
        // RT_ECANCELED.
        let shutdown = rt.shutdown_flag();
        if out.is_null() {
            // No handle: nobody can abort or join it, so no shared state.
            // Dropped unpolled (shutdown), the callback gets RT_ECANCELED.
            let callback = CallOnce::new(f, arg);
            drop(handle.spawn(async move {
                if !shutdown.is_set() {
                    callback.call(0)
                }
            }));
            return 0;
        }
        let shared = TaskShared::new();
        let guard = FinishOnDrop {
            callback: Some(CallOnce::new(f, arg)),
            shared: shared.clone(),
        };
        let join = handle.spawn(async move {
            let mut guard = guard;
            if !shutdown.is_set() && guard.shared.try_start() {
                if let Some(cb) = guard.callback.take() {
                    cb.call(0);
                }
            }
        });
        set_abort(&shared, join.abort_handle());
        drop(join);
        if !out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(new_handle(shared)) };
        }
        0
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
        let shared = &task.shared;
        if shared.is_finished() {
            return RT_EALREADY;
        }
        if shared
            .start
            .compare_exchange(
                PENDING,
                CANCELLED,
                AcqRel,
                std::sync::atomic::Ordering::Acquire,
            )
            .is_err()
        {
            return RT_EALREADY;
        }
        // Drop the future (and so make the ECANCELED call) promptly.
        if let Some(abort) = shared
            .abort
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            abort.abort();
        }
        let hook = shared
            .on_abort
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
        0
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
            Ok(t) => c_int::from(t.shared.is_finished()),
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
        let shared = &task.shared;
        let deadline = u64::try_from(timeout_ms)
            .ok()
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut done = shared.done.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return 0;
        }
        if timeout_ms != 0
            && (rt_core::runtime::is_runtime_thread() || crate::callback::is_in_callback())
        {
            return RT_EDEADLK;
        }
        shared.joiners.fetch_add(1, Relaxed);
        let result = loop {
            if *done {
                break 0;
            }
            match deadline {
                None => done = shared.cv.wait(done).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break RT_ETIMEDOUT;
                    }
                    done = shared
                        .cv
                        .wait_timeout(done, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        shared.joiners.fetch_sub(1, Relaxed);
        result
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
            out = new_handle(t.shared.clone());
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
