//! Hand-written `METH_FASTCALL | METH_KEYWORDS` methods, installed over
//! pyo3's generated ones when the module loads, for the few calls made
//! once or twice per echo request (`LoopCore.call_soon`,
//! `SocketTransportCore.write`).
//!
//! pyo3's generated method parses every call generically (a description of
//! the parameters, keyword names matched as UTF-8 strings, a slot array):
//! 100 to 280 instructions per call, next to the 2,500 of a whole small
//! `Protocol` echo request. A hand-written method reads the common shape
//! of its call directly; [`install`] keeps the generated method's
//! signature and docstring for `help()` and `inspect`, and returns it, so a
//! method can leave the rare shapes (keywords, wrong counts) to it.

use crate::errors::panic_error;
use pyo3::ffi;
use pyo3::prelude::*;
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
/// signature and docstring of the attribute it replaces; returns the
/// replaced attribute (pyo3's generated method).
pub(crate) fn install<'py>(
    ty: &Bound<'py, PyType>,
    name: &'static CStr,
    meth: FastMethod,
) -> PyResult<Bound<'py, PyAny>> {
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
    // long as it lives (the type's, so the process's); one per method and
    // module load.
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
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(ty.py(), ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))
    }?;
    ty.setattr(name_str, descr)?;
    Ok(old)
}

/// Runs the body of a hand-written method for the interpreter: attached,
/// a panic turned into an exception (`what` names the method), and the
/// result handed over as the C API wants it: a new reference, or NULL with
/// the exception set.
pub(crate) fn run(
    what: &str,
    body: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let result = match catch_unwind(AssertUnwindSafe(|| body(py))) {
            Ok(r) => r,
            Err(payload) => Err(panic_error(&*payload, &format!("panic in {what}"))),
        };
        match result {
            Ok(obj) => obj.into_ptr(),
            Err(e) => {
                e.restore(py);
                std::ptr::null_mut()
            }
        }
    })
}

/// Calls `generic` (an unbound method, e.g. the one [`install`] returned)
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
