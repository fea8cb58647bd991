//! `SocketTransport.write` and `is_closing` as builtin functions bound to
//! one `SocketTransportCore`: the calls an echo makes per request
//! (`transport.write(data)`, `StreamWriter.drain`'s `is_closing()`).
//!
//! The module is built for the limited API of Python 3.9 (abi3), where pyo3
//! declares methods with the tuple-and-dict convention (an argument tuple
//! per call). These functions use `METH_FASTCALL | METH_KEYWORDS` (every
//! CPython since 3.7; in the limited API from 3.10, same value) and
//! `METH_NOARGS`, and are made per core with `PyCFunction_NewEx` (its `self`
//! is the core), so the Python transport stores them in its `write` /
//! `is_closing` slots and a call goes straight to the core.

use super::SocketTransportCore;
use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use std::cell::UnsafeCell;
use std::os::raw::c_int;
use std::panic::AssertUnwindSafe;

/// CPython's `METH_FASTCALL` (0x0080 since 3.7).
const METH_FASTCALL: c_int = 0x0080;

/// The C signature of a `METH_FASTCALL | METH_KEYWORDS` function.
type FastWithKeywords = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// A function definition CPython keeps a pointer to for the process's life.
struct MethodDef(UnsafeCell<ffi::PyMethodDef>);

// SAFETY: never written after its constant initialization; CPython only
// reads it (from the thread holding the GIL).
unsafe impl Sync for MethodDef {}

static WRITE: MethodDef = MethodDef(UnsafeCell::new(ffi::PyMethodDef {
    ml_name: c"write".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        // SAFETY: a function pointer cast, as C extensions write
        // `(PyCFunction)(void(*)(void))f`: CPython calls it with the
        // signature its flags (`METH_FASTCALL | METH_KEYWORDS`) name, which
        // is `write`'s.
        PyCFunction: unsafe { std::mem::transmute::<FastWithKeywords, ffi::PyCFunction>(write) },
    },
    ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"write(data)\n--\n\nSends data (bytes-like): at once when nothing is pending, the rest buffered."
        .as_ptr(),
}));

static IS_CLOSING: MethodDef = MethodDef(UnsafeCell::new(ffi::PyMethodDef {
    ml_name: c"is_closing".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: is_closing,
    },
    ml_flags: ffi::METH_NOARGS,
    ml_doc:
        c"is_closing()\n--\n\nTrue once close() or abort() was called or the connection is lost."
            .as_ptr(),
}));

/// `def`'s function bound to `core`.
fn bind<'py>(
    core: &Bound<'py, SocketTransportCore>,
    def: &MethodDef,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; the definition is static (CPython keeps the
    // pointer) and `core` a live object (the function holds a reference to
    // it). A new reference, or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            core.py(),
            ffi::PyCFunction_NewEx(def.0.get(), core.as_ptr(), std::ptr::null_mut()),
        )
    }
}

/// The core's `write`, bound (`SocketTransport.write`).
pub(crate) fn bound_write<'py>(
    core: &Bound<'py, SocketTransportCore>,
) -> PyResult<Bound<'py, PyAny>> {
    bind(core, &WRITE)
}

/// The core's `is_closing`, bound (`SocketTransport.is_closing`).
pub(crate) fn bound_is_closing<'py>(
    core: &Bound<'py, SocketTransportCore>,
) -> PyResult<Bound<'py, PyAny>> {
    bind(core, &IS_CLOSING)
}

/// Runs `work` with the GIL's token: its error is set as the current
/// exception (NULL returned), a panic becomes a SystemError (none crosses
/// into Python).
fn guarded(work: impl FnOnce(Python<'_>) -> PyResult<*mut ffi::PyObject>) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(py)));
        let result = match outcome {
            Ok(result) => result,
            Err(_) => Err(PySystemError::new_err(
                "SocketTransport method panicked (a bug of rtpy)",
            )),
        };
        match result {
            Ok(obj) => obj,
            Err(e) => {
                e.restore(py);
                std::ptr::null_mut()
            }
        }
    })
}

/// `write(data)`: one positional argument or `data=`.
unsafe extern "C" fn write(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        // SAFETY: CPython passes the function's `self` (the core it was bound
        // to, alive while the function is) and `nargs` positional arguments
        // followed by one value per keyword name in `kwnames` (a tuple of
        // str, or NULL), all borrowed for the call; the GIL is held.
        let (slf, data) = unsafe {
            let slf = Bound::from_borrowed_ptr(py, slf);
            let nkw = if kwnames.is_null() {
                0
            } else {
                ffi::PyTuple_Size(kwnames)
            };
            let data = match (nargs, nkw) {
                (1, 0) => Some(Bound::from_borrowed_ptr(py, *args)),
                (0, 1) => {
                    let name = Bound::from_borrowed_ptr(py, ffi::PyTuple_GetItem(kwnames, 0));
                    if name.eq("data")? {
                        Some(Bound::from_borrowed_ptr(py, *args))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            (slf, data)
        };
        let Some(data) = data else {
            return Err(PyTypeError::new_err(
                "write() takes exactly one argument (data)",
            ));
        };
        let core = slf.cast_into::<SocketTransportCore>()?;
        core.get().write_impl(&data)?;
        Ok(py.None().into_ptr())
    })
}

/// `is_closing()`.
unsafe extern "C" fn is_closing(
    slf: *mut ffi::PyObject,
    _noargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guarded(|py| {
        // SAFETY: the function's `self`, borrowed for the call (as above).
        let slf = unsafe { Bound::from_borrowed_ptr(py, slf) };
        let core = slf.cast_into::<SocketTransportCore>()?;
        let closing = core.get().t.is_closing();
        // SAFETY: the GIL is held; a new reference to True or False.
        Ok(unsafe { ffi::PyBool_FromLong(closing.into()) })
    })
}
