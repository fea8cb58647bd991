//! C callbacks and the "called exactly once" guarantee.

use crate::error::RT_ECANCELED;
use std::ffi::{c_int, c_void};

/// `void (*)(void *arg, int status)`.
pub type rt_callback = Option<unsafe extern "C" fn(arg: *mut c_void, status: c_int)>;

/// A callback with its argument that is called exactly once: explicitly
/// with [`CallOnce::call`], or with `RT_ECANCELED` when dropped uncalled
/// (task aborted before it ran, runtime shut down first).
pub(crate) struct CallOnce {
    f: unsafe extern "C" fn(*mut c_void, c_int),
    arg: *mut c_void,
}

// SAFETY: the C API documents that `arg` is handed to the callback on
// whichever thread runs it; the caller promises the pointee may be used
// from any thread. We never dereference it ourselves.
unsafe impl Send for CallOnce {}

impl CallOnce {
    pub(crate) fn new(f: unsafe extern "C" fn(*mut c_void, c_int), arg: *mut c_void) -> CallOnce {
        CallOnce { f, arg }
    }

    /// Calls it with `status`, consuming it.
    pub(crate) fn call(self, status: c_int) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: a C function pointer supplied by the caller with the
        // documented signature; called exactly once (self is consumed and
        // its Drop suppressed).
        unsafe { (this.f)(this.arg, status) }
    }
}

impl Drop for CallOnce {
    fn drop(&mut self) {
        // SAFETY: as in `call`; reached only when `call` was not.
        unsafe { (self.f)(self.arg, RT_ECANCELED) }
    }
}
