//! `LoopCore.call_soon` through the vectorcall protocol.
//!
//! The module is built for the limited API of Python 3.9 (abi3), where pyo3
//! declares methods with the tuple-and-dict convention: each call builds an
//! argument tuple, a dict for `context=` (what C Tasks and Futures pass on
//! every step and callback), and a slice of the tuple for `*args`. The
//! hottest method of the loop is installed instead with `METH_FASTCALL |
//! METH_KEYWORDS`, which every CPython since 3.7 supports (the flag became
//! part of the limited API in 3.10, with the same value): the arguments come
//! as an array and the keyword names as a tuple. The method is the same
//! [`LoopCore::call_soon_impl`] the rest of the module uses.

use super::core::LoopCore;
use super::handle::Handle;
use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};
use std::cell::UnsafeCell;
use std::os::raw::c_int;
use std::panic::AssertUnwindSafe;

/// CPython's `METH_FASTCALL` (0x0080 since 3.7).
const METH_FASTCALL: c_int = 0x0080;

/// The C signature of a `METH_FASTCALL | METH_KEYWORDS` method.
type FastWithKeywords = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// A method definition CPython keeps a pointer to for the process's life.
struct MethodDef(UnsafeCell<ffi::PyMethodDef>);

// SAFETY: never written after its constant initialization; CPython only
// reads it (from the thread holding the GIL).
unsafe impl Sync for MethodDef {}

static CALL_SOON: MethodDef = MethodDef(UnsafeCell::new(ffi::PyMethodDef {
    ml_name: c"call_soon".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        // SAFETY: a function pointer cast, as C extensions write
        // `(PyCFunction)(void(*)(void))f`: CPython calls it with the
        // signature its flags (`METH_FASTCALL | METH_KEYWORDS`) name, which
        // is `call_soon_fast`'s.
        PyCFunction: unsafe {
            std::mem::transmute::<FastWithKeywords, ffi::PyCFunction>(call_soon_fast)
        },
    },
    ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"call_soon($self, callback, *args, context=None)\n--\n\n\
Schedules callback(*args) for the next iteration (FIFO); returns its Handle."
        .as_ptr(),
}));

/// Installs the vectorcall `call_soon` on `LoopCore` (module init).
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    let py = ty.py();
    // SAFETY: the GIL is held; `ty` is a live type object and the
    // definition is static (CPython keeps the pointer). A new reference or
    // NULL with an exception set.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyDescr_NewMethod(ty.as_ptr().cast(), CALL_SOON.0.get()),
        )?
    };
    ty.setattr("call_soon", descr)
}

/// The C entry point: arguments as an array, keyword names as a tuple.
///
/// # Safety
/// Called by CPython only, as a method of `LoopCore` (the descriptor checks
/// that `slf` is one): with the GIL held, `args` pointing to `nargs`
/// borrowed references followed by one per name of `kwnames` (a tuple of
/// strings, or NULL).
unsafe extern "C" fn call_soon_fast(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // `attach` on a thread that holds the GIL only counts it (pyo3's
    // bookkeeping), so Python objects dropped inside are released at once.
    Python::attach(|py| {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller's contract (see above).
            unsafe { call_soon_args(py, slf, args, nargs, kwnames) }
        }));
        let result = match outcome {
            Ok(result) => result,
            Err(_) => Err(PySystemError::new_err("call_soon panicked (a bug of rtpy)")),
        };
        match result {
            Ok(handle) => handle.into_any().into_ptr(),
            Err(e) => {
                e.restore(py);
                std::ptr::null_mut()
            }
        }
    })
}

/// Parses `(callback, *args, context=None)` and calls `call_soon_impl`.
///
/// # Safety
/// As [`call_soon_fast`].
unsafe fn call_soon_args<'py>(
    py: Python<'py>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Bound<'py, Handle>> {
    // SAFETY: `slf` is a live `LoopCore` (the method descriptor checked its
    // type), borrowed for the call.
    let slf = unsafe { Bound::from_borrowed_ptr(py, slf) };
    let slf = slf.cast_into::<LoopCore>()?;
    let nargs = usize::try_from(nargs).unwrap_or(0);
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: a tuple of keyword names (the caller's contract).
        unsafe { ffi::PyTuple_Size(kwnames) }.max(0) as usize
    };
    let all: &[*mut ffi::PyObject] = if args.is_null() {
        &[]
    } else {
        // SAFETY: `nargs + nkw` borrowed references (the caller's contract),
        // alive for the call.
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    let mut context = None;
    // SAFETY: a borrowed reference of the array, alive for the call.
    let mut callback = all
        .first()
        .filter(|_| nargs > 0)
        .map(|&p| unsafe { Bound::from_borrowed_ptr(py, p) });
    if nkw > 0 {
        // SAFETY: `kwnames` is a live tuple (checked non-null above).
        let names = unsafe { Bound::from_borrowed_ptr(py, kwnames) };
        let names = names.cast_into::<PyTuple>()?;
        for (i, name) in names.iter().enumerate() {
            let name = name.cast_into::<PyString>()?;
            // SAFETY: a borrowed reference of the array, alive for the call.
            let value = unsafe { Bound::from_borrowed_ptr(py, all[nargs + i]) };
            match &*name.to_cow()? {
                "context" => context = Some(value),
                "callback" if nargs == 0 => callback = Some(value),
                "callback" => {
                    return Err(PyTypeError::new_err(
                        "call_soon() got multiple values for argument 'callback'",
                    ))
                }
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "call_soon() got an unexpected keyword argument '{name}'"
                    )))
                }
            }
        }
    }
    let Some(callback) = callback else {
        return Err(PyTypeError::new_err(
            "call_soon() missing 1 required positional argument: 'callback'",
        ));
    };
    let rest = all[nargs.min(1)..nargs]
        .iter()
        // SAFETY: as above.
        .map(|&p| unsafe { Bound::from_borrowed_ptr(py, p) });
    let rest = PyTuple::new(py, rest)?;
    LoopCore::call_soon_impl(&slf, &callback, &rest, context.as_ref())
}
