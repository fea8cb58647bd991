//! `contextvars` at C speed: a copy of the current context, and a call run
//! inside a context (`Context.run`'s work without its bound method and
//! argument tuple); the garbage collector's view of a context only its
//! handle holds ([`visit_owned`]: see `untracked.rs`).
//!
//! PEP 567's C functions (`PyContext_CopyCurrent`, `PyContext_Enter`,
//! `PyContext_Exit`: public C API outside the limited API; the module is
//! built per Python version). A context that is not exactly a
//! `contextvars.Context` goes through its `run` method, as asyncio's
//! `Handle._run` calls it.

use ffi::{PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit};
use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::PyTraverseError;
use std::mem::ManuallyDrop;
use std::os::raw::{c_int, c_void};

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
    // No arguments (a transport's readiness, a task's step): a transport's
    // is called natively, the others by a vectorcall with no argument tuple.
    let outcome = if args.is_empty() {
        match callback.cast_exact::<crate::transport::ReadyCall>() {
            Ok(ready) => ready.get().run(py),
            Err(_) => callback.call0().map(drop),
        }
    } else {
        callback.call1(args).map(drop)
    };
    // SAFETY: as above: the context this thread entered just before.
    let exited = unsafe { PyContext_Exit(context.as_ptr()) };
    if exited != 0 {
        // Only if the context is not the current one (a callback cannot
        // leave it so): report it over the call's outcome.
        return Err(PyErr::fetch(py));
    }
    outcome
}

/// Visits `context` for the garbage collector on behalf of the handle that
/// holds it. `untracked` is true if `untracked::untrack` untracked it (a
/// `contextvars.Context`, not tracked again since): if the handle is also
/// its only holder (reference count 1), it is visited through what it
/// refers to, as if the handle held that itself; otherwise as an object
/// (ignored by the collector if untracked: what it refers to then counts as
/// referenced from outside, which is safe).
pub(crate) fn visit_owned(
    context: &Py<PyAny>,
    untracked: bool,
    visit: &PyVisit<'_>,
) -> Result<(), PyTraverseError> {
    let p = context.as_ptr();
    // SAFETY: `p` is live (the handle's reference); a traversal runs with
    // the GIL held; reading a count runs no Python code.
    let owned = untracked && unsafe { ffi::Py_REFCNT(p) } == 1;
    // SAFETY: `p` is live; its type outlives it.
    let traverse = unsafe { (*ffi::Py_TYPE(p)).tp_traverse };
    let Some(traverse) = traverse.filter(|_| owned) else {
        return visit.call(context);
    };
    let mut forward = Forward { visit, error: None };
    // SAFETY: the context's own traversal, called as the collector calls it
    // (GIL held, during a traversal) with a visitor that hands each object
    // to `visit`; `forward` outlives the call.
    unsafe { traverse(p, forward_visit, (&raw mut forward).cast()) };
    forward.error.map_or(Ok(()), Err)
}

/// The state of [`forward_visit`]: the collector's visitor, and the error
/// that stopped the traversal.
struct Forward<'a, 'v> {
    visit: &'a PyVisit<'v>,
    error: Option<PyTraverseError>,
}

/// A `visitproc` that passes each object to a [`PyVisit`].
unsafe extern "C" fn forward_visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Forward` `visit_owned` passed, alive for the
    // traversal; the collector holds the GIL while it traverses.
    let forward = unsafe { &mut *arg.cast::<Forward<'_, '_>>() };
    if obj.is_null() {
        return 0;
    }
    // SAFETY: the thread holds the GIL (a traversal); `obj` is a live
    // object the context refers to. `from_owned_ptr` takes no reference
    // and `ManuallyDrop` releases none: the count is untouched.
    let obj = ManuallyDrop::new(unsafe { Bound::from_owned_ptr(Python::assume_attached(), obj) });
    match forward.visit.call(obj.as_unbound()) {
        Ok(()) => 0,
        Err(e) => {
            forward.error = Some(e);
            1
        }
    }
}
