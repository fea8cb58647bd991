//! C callbacks: `rt_callback` and the layer's view of it. The "called
//! exactly once" guarantee and the "inside a callback" marks live in
//! `rt_core::callback` (`Once`, `in_callback`), shared with every binding.

use crate::error::RT_ECANCELED;
use rt_core::callback::{OnceCallback, Status};
use std::ffi::{c_int, c_void};

/// `void (*)(void *arg, int status)`.
pub type rt_callback = Option<unsafe extern "C" fn(arg: *mut c_void, status: c_int)>;

/// The C status of a call: 0, or `RT_ECANCELED` for the final call.
pub(crate) fn status_code(status: Status) -> c_int {
    match status {
        Status::Ok => 0,
        Status::Cancelled => RT_ECANCELED,
    }
}

/// A C callback with its argument, called once (`rt_spawn`,
/// `rt_spawn_blocking`'s `done`, `rt_queue_post`).
pub(crate) struct CCall {
    pub(crate) f: unsafe extern "C" fn(*mut c_void, c_int),
    pub(crate) arg: *mut c_void,
}

// SAFETY: the C API documents that `arg` is handed to the callback on
// whichever thread runs it; the caller promises the pointee may be used
// from any thread. We never dereference it ourselves.
unsafe impl Send for CCall {}

impl OnceCallback for CCall {
    fn call(self, status: Status) {
        // SAFETY: a C function pointer supplied by the caller with the
        // documented signature; called once (self is consumed; the layer's
        // `Once` makes exactly one call).
        unsafe { (self.f)(self.arg, status_code(status)) }
    }
}

/// The C status of a stop: 0, or `RT_EDEADLK` (stopped, but the callback
/// is still finishing on another thread: do not free `arg` yet).
pub(crate) fn stopped_code(stopped: rt_core::callback::Stopped) -> c_int {
    match stopped {
        rt_core::callback::Stopped::Done => 0,
        rt_core::callback::Stopped::StillRunning => crate::error::RT_EDEADLK,
    }
}
