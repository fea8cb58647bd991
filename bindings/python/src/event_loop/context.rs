//! `contextvars` at C speed: a copy of the current context, and a call run
//! inside a context (`Context.run`'s work without its bound method and
//! argument tuple).
//!
//! PEP 567's C functions (`PyContext_CopyCurrent`, `PyContext_Enter`,
//! `PyContext_Exit`: public C API outside the limited API; the module is
//! built per Python version). A context that is not exactly a
//! `contextvars.Context` goes through its `run` method, as asyncio's
//! `Handle._run` calls it.

use ffi::{PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// `contextvars.copy_context()`.
pub(crate) fn copy_current(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held (`py`); it returns a new reference, or NULL
    // with an exception set (taken by `from_owned_ptr_or_err`).
    unsafe { Bound::from_owned_ptr_or_err(py, PyContext_CopyCurrent()) }
}

/// `context.run(callback, *args)`, the result dropped.
pub(crate) fn run_in(
    context: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<()> {
    let py = context.py();
    // SAFETY: a type check of a live object (the GIL is held: `Bound`).
    if unsafe { ffi::PyContext_CheckExact(context.as_ptr()) } == 0 {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(callback.clone());
        all.extend(args.iter());
        context.call_method1("run", PyTuple::new(py, all)?)?;
        return Ok(());
    }
    // SAFETY: the GIL is held; `context` is a live `contextvars.Context`
    // (exact type checked above). Enter fails (RuntimeError, set) if the
    // context is already entered; otherwise it is exited on this thread
    // after the call, whatever the call did, as `Context.run` does.
    unsafe {
        if PyContext_Enter(context.as_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    // No arguments (a transport's `_read_ready`, a task's step): a
    // vectorcall with no argument tuple at all.
    let outcome = if args.is_empty() {
        callback.call0()
    } else {
        callback.call1(args)
    }
    .map(drop);
    // SAFETY: as above: the context this thread entered just before.
    let exited = unsafe { PyContext_Exit(context.as_ptr()) };
    if exited != 0 {
        // Only if the context is not the current one (a callback cannot
        // leave it so): report it over the call's outcome.
        return Err(PyErr::fetch(py));
    }
    outcome
}
