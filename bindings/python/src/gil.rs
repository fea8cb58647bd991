//! Taking the GIL on runtime threads, cheaply.
//!
//! A thread Python does not know gets a fresh Python thread state from each
//! `PyGILState_Ensure` and loses it at the matching release: an allocation
//! and a walk of the interpreter's thread list per callback. So a runtime
//! thread keeps one thread state for its life: the first callback on it
//! "pins" one (an `Ensure` never released until the thread exits), and
//! every later attach only swaps it in. At thread exit the pin is released
//! (the thread state is deleted), unless the interpreter is exiting (then
//! it is left to the interpreter's own cleanup: taking the GIL during
//! finalization would end the thread inside its TLS destructor).

use pyo3::ffi;
use pyo3::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

/// Set by `_shutdown_all` (atexit): the interpreter is exiting.
static EXITING: AtomicBool = AtomicBool::new(false);

/// True once the interpreter is exiting (`_shutdown_all` ran).
pub(crate) fn is_exiting() -> bool {
    EXITING.load(SeqCst)
}

/// Marks the interpreter as exiting (no thread state is released after).
pub(crate) fn set_exiting() {
    EXITING.store(true, SeqCst);
}

/// This thread's pinned thread state: the `PyGILState_Ensure` it holds,
/// and the thread state saved when the GIL was let go right after.
struct Pin {
    gstate: ffi::PyGILState_STATE,
    tstate: *mut ffi::PyThreadState,
}

impl Drop for Pin {
    fn drop(&mut self) {
        // SAFETY: `tstate` is this thread's state saved by
        // `PyEval_SaveThread` in `pin`, and `gstate` the matching Ensure's
        // state; restored and released once, on this thread, while the
        // interpreter is initialized and not exiting.
        unsafe {
            if EXITING.load(SeqCst) || ffi::Py_IsInitialized() == 0 {
                return;
            }
            ffi::PyEval_RestoreThread(self.tstate);
            ffi::PyGILState_Release(self.gstate);
        }
    }
}

thread_local! {
    static PIN: Cell<Option<Pin>> = const { Cell::new(None) };
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

/// Pins a thread state on this thread if it has none (a runtime thread).
fn pin() {
    if PINNED.try_with(|p| p.replace(true)).unwrap_or(true) {
        return;
    }
    // SAFETY: these calls may be made without the GIL; `PyGILState_Ensure`
    // is only reached on a thread without a thread state (not attached),
    // while the interpreter is initialized and not exiting; the GIL it
    // takes is let go at once by `PyEval_SaveThread`.
    unsafe {
        if EXITING.load(SeqCst)
            || ffi::Py_IsInitialized() == 0
            || !ffi::PyGILState_GetThisThreadState().is_null()
        {
            return;
        }
        let gstate = ffi::PyGILState_Ensure();
        let tstate = ffi::PyEval_SaveThread();
        let _ = PIN.try_with(|p| p.set(Some(Pin { gstate, tstate })));
    }
}

/// Runs `f` with the GIL (None while the interpreter exits: no Python
/// call is made then).
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    if EXITING.load(SeqCst) {
        return None;
    }
    pin();
    Python::try_attach(f)
}
