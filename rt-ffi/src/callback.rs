//! C callbacks and the "called exactly once" guarantee.

use crate::error::RT_ECANCELED;
use std::ffi::{c_int, c_void};

/// `void (*)(void *arg, int status)`.
pub type rt_callback = Option<unsafe extern "C" fn(arg: *mut c_void, status: c_int)>;

thread_local! {
    /// How deep this thread is inside C callbacks made by the runtime.
    static IN_CALLBACK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// C callbacks this thread has made (`rt_run*` report the difference).
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many C callbacks this thread has made so far.
pub(crate) fn calls_made() -> u64 {
    CALLS.try_with(|c| c.get()).unwrap_or(0)
}

/// Runs `f` (which calls into C) marked as "inside a callback", so that
/// blocking calls made from it (`rt_task_join`, a stop that would wait for
/// another callback) answer `RT_EDEADLK` instead of deadlocking.
pub(crate) fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = IN_CALLBACK.try_with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    IN_CALLBACK.with(|c| c.set(c.get() + 1));
    CALLS.with(|c| c.set(c.get().wrapping_add(1)));
    let _leave = Leave;
    f()
}

thread_local! {
    /// While this thread runs the `work` of `rt_spawn_blocking`: the
    /// runtime's identity (`rt_runtime::identity`); 0 otherwise.
    static IN_WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` (blocking work of the runtime `owner`, an
/// `rt_runtime::identity`, calling into C) marked as such: blocking calls
/// are fine there, except waiting for a shutdown that waits for this work
/// (`rt_runtime_shutdown` answers `RT_EDEADLK` instead), and a shutdown of
/// `owner` from it counts this work as running.
pub(crate) fn in_blocking_work<R>(owner: usize, f: impl FnOnce() -> R) -> R {
    struct Leave(usize);
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = IN_WORK.try_with(|c| c.set(self.0));
        }
    }
    let _leave = Leave(IN_WORK.with(|c| c.replace(owner)));
    f()
}

/// True while this thread runs blocking work (`rt_spawn_blocking`).
pub(crate) fn is_in_blocking_work() -> bool {
    IN_WORK.try_with(|c| c.get() != 0).unwrap_or(false)
}

/// True while this thread runs blocking work of the runtime `owner` (an
/// `rt_runtime::identity`).
pub(crate) fn is_in_blocking_work_of(owner: usize) -> bool {
    IN_WORK.try_with(|c| c.get() == owner).unwrap_or(false)
}

/// True while this thread runs a C callback for the runtime.
pub(crate) fn is_in_callback() -> bool {
    IN_CALLBACK.try_with(|c| c.get() > 0).unwrap_or(false)
}

/// A callback with its argument that is called exactly once: explicitly
/// with [`CallOnce::call`], or with `RT_ECANCELED` when dropped uncalled
/// (task aborted before it ran, runtime shut down first).
pub(crate) struct CallOnce {
    f: unsafe extern "C" fn(*mut c_void, c_int),
    arg: *mut c_void,
    /// The status of the call made on drop (RT_ECANCELED unless the work
    /// it reports on already ran).
    drop_status: c_int,
}

// SAFETY: the C API documents that `arg` is handed to the callback on
// whichever thread runs it; the caller promises the pointee may be used
// from any thread. We never dereference it ourselves.
unsafe impl Send for CallOnce {}

impl CallOnce {
    pub(crate) fn new(f: unsafe extern "C" fn(*mut c_void, c_int), arg: *mut c_void) -> CallOnce {
        CallOnce {
            f,
            arg,
            drop_status: RT_ECANCELED,
        }
    }

    /// The status to report if it is dropped uncalled.
    pub(crate) fn set_drop_status(&mut self, status: c_int) {
        self.drop_status = status;
    }

    /// Calls it with `status`, consuming it.
    pub(crate) fn call(self, status: c_int) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: a C function pointer supplied by the caller with the
        // documented signature; called exactly once (self is consumed and
        // its Drop suppressed).
        in_callback(|| unsafe { (this.f)(this.arg, status) })
    }
}

impl CallOnce {
    /// Lets it go uncalled: for a callback handed to a call that failed,
    /// which is never called.
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }

    /// Calls it with `status` without the "inside a runtime callback"
    /// mark: for calls the host makes on its own thread (draining a
    /// completion queue), where blocking calls and `rt_run` are fine.
    pub(crate) fn call_unmarked(self, status: c_int) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: as in `call`.
        unsafe { (this.f)(this.arg, status) }
    }
}

impl Drop for CallOnce {
    fn drop(&mut self) {
        // SAFETY: as in `call`; reached only when `call` was not.
        in_callback(|| unsafe { (self.f)(self.arg, self.drop_status) })
    }
}
