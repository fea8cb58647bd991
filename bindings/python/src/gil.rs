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
//!
//! "Exiting" is decided once, by `set_exiting` at the end of
//! `_shutdown_all`; a thread that checked it just before must not then
//! enter the interpreter while it finalizes: each use of Python here (an
//! attach, a pin's release) is counted from before its check to its end
//! (`IN_PYTHON`, whose gate `set_exiting` closes), and `set_exiting` waits,
//! with the GIL released, until none is under way.

use crate::in_flight::{Entered, InFlight};
use pyo3::ffi;
use pyo3::prelude::*;
use std::cell::Cell;
use std::time::Duration;

/// Attaches and pin releases under way; its gate is closed by `set_exiting`
/// (`_shutdown_all`, atexit): the interpreter is exiting.
pub(crate) static IN_PYTHON: InFlight = InFlight::new();

/// Counts a use of Python from before its exit check to its end: None
/// (nothing counted) once the interpreter is exiting.
fn in_python() -> Option<Entered<'static>> {
    IN_PYTHON.enter()
}

/// True once the interpreter is exiting (`_shutdown_all` ran).
pub(crate) fn is_exiting() -> bool {
    IN_PYTHON.is_closed()
}

/// Marks the interpreter as exiting (no thread state is released and no
/// callback calls Python after), then waits, with the GIL released, for
/// the uses of Python that began before: they need the GIL to end. (At
/// most a few seconds: all runtimes are shut down and idle by now, so they
/// are final calls and thread-state releases, each a moment's work; the
/// bound only covers a runtime made meanwhile by another thread, or a count
/// inherited through `os.fork()`.)
pub(crate) fn set_exiting(py: Python<'_>) {
    IN_PYTHON.close();
    crate::in_flight::wait_idle(py, &IN_PYTHON, Some(Duration::from_secs(2)));
}

/// This thread's pinned thread state: the `PyGILState_Ensure` it holds,
/// and the thread state saved when the GIL was let go right after.
struct Pin {
    gstate: ffi::PyGILState_STATE,
    tstate: *mut ffi::PyThreadState,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let Some(_in_python) = in_python() else {
            return;
        };
        // SAFETY: `tstate` is this thread's state saved by
        // `PyEval_SaveThread` in `pin`, and `gstate` the matching Ensure's
        // state; restored and released once, on this thread, while the
        // interpreter is initialized and not exiting (`in_python()`: exit
        // waits for this release before the interpreter finalizes).
        unsafe {
            if ffi::Py_IsInitialized() == 0 {
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
    // while the interpreter is initialized and not exiting (the caller,
    // `attach`, holds an `in_python()` count); the GIL it takes is let go at once
    // by `PyEval_SaveThread`.
    unsafe {
        if ffi::Py_IsInitialized() == 0 || !ffi::PyGILState_GetThisThreadState().is_null() {
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
    let _in_python = in_python()?;
    pin();
    Python::try_attach(f)
}
