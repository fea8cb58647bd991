//! `SocketTransportCore.write` as a hand-written method (see
//! [`fast_method`]), installed over the `#[pymethods]` one when the module
//! loads.
//!
//! Every echo request writes once: `transport.write(data)` with one
//! positional argument. That shape goes straight to
//! [`SocketTransportCore::write_impl`]; any other (a `data=` keyword, a
//! wrong count) goes to the generated method, for its parsing and errors.

use super::SocketTransportCore;
use crate::fast_method;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::Borrowed;

/// The generated method, for the calls the fast one does not parse.
static GENERIC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Replaces `SocketTransportCore.write` (the type's attribute) with the
/// method below, keeping its signature and docstring.
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    fast_method::install(ty, c"write", write, &GENERIC)
}

/// The method: `self.write(data)`.
///
/// # Safety
/// Called by the interpreter through the method descriptor made in
/// [`install`]: on an attached thread, `slf` an instance of
/// `SocketTransportCore` (the descriptor checks it before the call), `args`
/// holding `nargs` positional arguments followed by one value per name of
/// `kwnames` (NULL or a tuple of strings), all borrowed for the call.
unsafe extern "C" fn write(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>| -> PyResult<Py<PyAny>> {
        if nargs == 1 && kwnames.is_null() {
            // SAFETY: the contract above: `slf` is a live
            // `SocketTransportCore` and `args[0]` a live object, both
            // borrowed for this call.
            let (slf, data) = unsafe {
                (
                    Borrowed::from_ptr(py, slf).cast_unchecked::<SocketTransportCore>(),
                    Borrowed::from_ptr(py, *args),
                )
            };
            slf.get().write_impl(&data)?;
            return Ok(py.None());
        }
        let generic = GENERIC
            .get(py)
            .ok_or_else(|| pyo3::exceptions::PySystemError::new_err("write: not installed"))?;
        // SAFETY: the contract above is `call_generic`'s.
        unsafe { fast_method::call_generic(py, generic.bind(py), slf, args, nargs, kwnames) }
    };
    // SAFETY: the interpreter called this method (the contract above).
    unsafe { fast_method::run("SocketTransportCore.write()", body) }
}
