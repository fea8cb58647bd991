//! Hand-written `METH_FASTCALL | METH_KEYWORDS` methods, installed over
//! pyo3's generated ones when the module loads, for the few calls made
//! once or twice per echo request (`LoopCore.call_soon`,
//! `SocketTransportCore.write`).
//!
//! pyo3's generated method parses every call generically (a description of
//! the parameters, keyword names matched as UTF-8 strings, a slot array):
//! 100 to 280 instructions per call, next to the 2,500 of a whole small
//! `Protocol` echo request. A hand-written method reads the common shape
//! of its call directly. [`install`] gives it the generated method's
//! signature and docstring (for `help()` and `inspect`) and keeps the
//! generated method, so that a fast one can leave the rare shapes
//! (keywords, wrong counts) to it ([`call_generic`]).

use crate::errors::panic_error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A `METH_FASTCALL | METH_KEYWORDS` method: `(self, args, nargs, kwnames)`.
pub(crate) type FastMethod = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// Replaces `ty.<name>` with a method descriptor calling `meth`, with the
/// signature and docstring of the attribute it replaces, and keeps the
/// replaced attribute (pyo3's generated method) in `generic`.
///
/// Once per process: the module's body runs again when `rtpy._rtpy` is
/// imported anew (taken out of `sys.modules`), but its types are the same
/// objects, already holding the fast method; `generic` being set says so
/// (and keeps the generated method, never the fast one, in it).
pub(crate) fn install(
    ty: &Bound<'_, PyType>,
    name: &'static CStr,
    meth: FastMethod,
    generic: &'static PyOnceLock<Py<PyAny>>,
) -> PyResult<()> {
    let py = ty.py();
    if generic.get(py).is_some() {
        return Ok(());
    }
    let name_str = name
        .to_str()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let old = ty.getattr(name_str)?;
    let signature: Option<String> = old.getattr("__text_signature__")?.extract()?;
    let doc = old
        .getattr("__doc__")?
        .extract::<Option<String>>()?
        .unwrap_or_default();
    // CPython's layout for a builtin's signature: `name(sig)\n--\n\n` first.
    let text = match signature {
        Some(sig) => format!("{name_str}{sig}\n--\n\n{doc}"),
        None => doc,
    };
    let doc: &'static CStr = Box::leak(std::ffi::CString::new(text)?.into_boxed_c_str());
    // Leaked: a method descriptor keeps a pointer to its definition for as
    // long as it lives (the type's, so the process's); one per method.
    let def: &'static mut ffi::PyMethodDef = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: meth,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: `ty` is a live type object and `def` a definition that
    // outlives it; the result is a new reference (or NULL with an
    // exception set), owned by the `Bound`.
    let descr =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(ty.as_type_ptr(), def)) }?;
    // Kept before the fast method can be called; only this call sets it
    // (the check above, with the GIL held throughout).
    let _ = generic.set(py, old.unbind());
    ty.setattr(name_str, descr)
}

/// Runs the body of a hand-written method for the interpreter: a panic
/// turned into an exception (`what` names the method), and the result
/// handed over as the C API wants it: a new reference, or NULL with the
/// exception set.
///
/// # Safety
/// Called only from a method the interpreter called, so on a thread
/// attached to it.
pub(crate) unsafe fn run(
    what: &str,
    body: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) -> *mut ffi::PyObject {
    let panicked = |payload: Box<dyn std::any::Any + Send>| {
        Err(panic_error(&*payload, &format!("panic in {what}")))
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // Through pyo3's attach: its count of attached scopes is what makes
        // a drop of a Python reference inside the body immediate (not
        // deferred) and a nested attach cheap. A thread outside any pyo3
        // scope pays a PyGILState_Ensure / Release pair for it.
        Python::try_attach(|py| {
            let result = catch_unwind(AssertUnwindSafe(|| body(py))).unwrap_or_else(panicked);
            hand_over(py, result)
        })
    }));
    let refused = match outcome {
        Ok(Some(ptr)) => return ptr,
        // pyo3 refuses to attach once the interpreter is finalizing (a
        // `__del__` late at exit), and the body's own attaches would
        // panic: refused cleanly instead.
        Ok(None) => Err(PyRuntimeError::new_err(format!(
            "{what}: the interpreter is shutting down"
        ))),
        // The attach or the hand-over itself panicked.
        Err(payload) => panicked(payload),
    };
    // SAFETY: the contract: the interpreter called the method, on a thread
    // attached to it; the token only hands the error over.
    let py = unsafe { Python::assume_attached() };
    // NULL without an exception (the interpreter's SystemError) if even
    // that panics: never an unwind into the interpreter.
    catch_unwind(AssertUnwindSafe(|| hand_over(py, refused))).unwrap_or(std::ptr::null_mut())
}

/// A method's result as the C API wants it: a new reference, or NULL with
/// the exception set.
fn hand_over(py: Python<'_>, result: PyResult<Py<PyAny>>) -> *mut ffi::PyObject {
    match result {
        Ok(obj) => obj.into_ptr(),
        Err(e) => {
            e.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// Calls `generic` (an unbound method, e.g. the one [`install`] kept)
/// as `generic(slf, *args, **kwargs)` from a fast method's arguments.
///
/// # Safety
/// `slf` is a live object, `args` holds `nargs` positional arguments
/// followed by one value per name of `kwnames` (NULL or a tuple of
/// strings), all live for the call.
pub(crate) unsafe fn call_generic(
    py: Python<'_>,
    generic: &Bound<'_, PyAny>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Py<PyAny>> {
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: a non-NULL `kwnames` is a tuple (the contract).
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) }
    };
    let total = usize::try_from(nargs + nkw).unwrap_or(0);
    let mut all = Vec::with_capacity(total + 1);
    all.push(slf);
    if total > 0 {
        // SAFETY: `args` holds `nargs + nkw` object pointers (the contract).
        all.extend_from_slice(unsafe { std::slice::from_raw_parts(args, total) });
    }
    // SAFETY: `all` holds `nargs + 1` positional arguments then one value
    // per name of `kwnames`, all borrowed and live for the call; the
    // result is a new reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyObject_Vectorcall(
                generic.as_ptr(),
                all.as_ptr(),
                (nargs + 1) as usize,
                kwnames,
            ),
        )
    }
    .map(Bound::unbind)
}
