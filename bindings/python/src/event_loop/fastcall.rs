//! The scheduling methods of `LoopCore` (`call_soon`,
//! `call_soon_threadsafe`, `call_later`, `call_at`) through the vectorcall
//! protocol.
//!
//! The module is built for the limited API of Python 3.9 (abi3), where pyo3
//! declares methods with the tuple-and-dict convention: each call builds an
//! argument tuple, a dict for `context=` (what C Tasks and Futures pass on
//! every step and callback), and a slice of the tuple for `*args`. These
//! methods, the loop's hottest, are installed instead with `METH_FASTCALL |
//! METH_KEYWORDS`, which every CPython since 3.7 supports (the flag became
//! part of the limited API in 3.10, with the same value): the arguments come
//! as an array and the keyword names as a tuple; [`parse`] reads
//! `(<fixed>..., *args, context=None)` as Python would, then the
//! `LoopCore::*_impl` function does the work.

use super::core::LoopCore;
use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};
use std::cell::UnsafeCell;
use std::os::raw::{c_char, c_int};
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

impl MethodDef {
    /// A `METH_FASTCALL | METH_KEYWORDS` method `name` (`doc` starts with
    /// its text signature, for `inspect.signature`).
    const fn new(name: *const c_char, f: FastWithKeywords, doc: *const c_char) -> MethodDef {
        MethodDef(UnsafeCell::new(ffi::PyMethodDef {
            ml_name: name,
            ml_meth: ffi::PyMethodDefPointer {
                // SAFETY: a function pointer cast, as C extensions write
                // `(PyCFunction)(void(*)(void))f`: CPython calls it with the
                // signature its flags (`METH_FASTCALL | METH_KEYWORDS`) name,
                // which is `f`'s.
                PyCFunction: unsafe {
                    std::mem::transmute::<FastWithKeywords, ffi::PyCFunction>(f)
                },
            },
            ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc,
        }))
    }
}

/// The work of one method: the loop, its fixed parameters, `*args`,
/// `context`.
type Work = for<'py> fn(
    &Bound<'py, LoopCore>,
    &[Bound<'py, PyAny>],
    &Bound<'py, PyTuple>,
    Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>>;

static CALL_SOON: MethodDef = MethodDef::new(
    c"call_soon".as_ptr(),
    call_soon,
    c"call_soon($self, callback, *args, context=None)\n--\n\n\
Schedules callback(*args) for the next iteration (FIFO); returns its Handle."
        .as_ptr(),
);
static CALL_SOON_THREADSAFE: MethodDef = MethodDef::new(
    c"call_soon_threadsafe".as_ptr(),
    call_soon_threadsafe,
    c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\n\
call_soon from any thread: wakes the loop; returns the Handle."
        .as_ptr(),
);
static CALL_LATER: MethodDef = MethodDef::new(
    c"call_later".as_ptr(),
    call_later,
    c"call_later($self, delay, callback, *args, context=None)\n--\n\n\
Schedules callback(*args) delay seconds from now (never earlier); returns its TimerHandle."
        .as_ptr(),
);
static CALL_AT: MethodDef = MethodDef::new(
    c"call_at".as_ptr(),
    call_at,
    c"call_at($self, when, callback, *args, context=None)\n--\n\n\
Schedules callback(*args) at loop time when (never earlier); returns its TimerHandle."
        .as_ptr(),
);

/// Installs the four methods on `LoopCore` (module init).
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    let py = ty.py();
    for (name, def) in [
        ("call_soon", &CALL_SOON),
        ("call_soon_threadsafe", &CALL_SOON_THREADSAFE),
        ("call_later", &CALL_LATER),
        ("call_at", &CALL_AT),
    ] {
        // SAFETY: the GIL is held; `ty` is a live type object and the
        // definition is static (CPython keeps the pointer). A new reference
        // or NULL with an exception set.
        let descr = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyDescr_NewMethod(ty.as_ptr().cast(), def.0.get()),
            )?
        };
        ty.setattr(name, descr)?;
    }
    Ok(())
}

unsafe extern "C" fn call_soon(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython as a method of `LoopCore` (see `call`).
    unsafe {
        call(
            slf,
            args,
            nargs,
            kwnames,
            "call_soon",
            &["callback"],
            |slf, f, rest, ctx| {
                LoopCore::call_soon_impl(slf, &f[0], rest, ctx).map(Bound::into_any)
            },
        )
    }
}

unsafe extern "C" fn call_soon_threadsafe(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython as a method of `LoopCore` (see `call`).
    unsafe {
        call(
            slf,
            args,
            nargs,
            kwnames,
            "call_soon_threadsafe",
            &["callback"],
            |slf, f, rest, ctx| {
                LoopCore::call_soon_threadsafe_impl(slf, &f[0], rest, ctx).map(Bound::into_any)
            },
        )
    }
}

unsafe extern "C" fn call_later(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython as a method of `LoopCore` (see `call`).
    unsafe {
        call(
            slf,
            args,
            nargs,
            kwnames,
            "call_later",
            &["delay", "callback"],
            |slf, f, rest, ctx| {
                LoopCore::call_later_impl(slf, &f[0], &f[1], rest, ctx).map(Bound::into_any)
            },
        )
    }
}

unsafe extern "C" fn call_at(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython as a method of `LoopCore` (see `call`).
    unsafe {
        call(
            slf,
            args,
            nargs,
            kwnames,
            "call_at",
            &["when", "callback"],
            |slf, f, rest, ctx| {
                LoopCore::call_at_impl(slf, &f[0], &f[1], rest, ctx).map(Bound::into_any)
            },
        )
    }
}

/// Runs one method call: attaches (pyo3's bookkeeping: on a thread that
/// holds the GIL it only counts), parses the arguments, runs `work`; a
/// result comes back as a new reference, an error as NULL with the
/// exception set, a panic (a bug) as `SystemError`, never unwinding into C.
///
/// # Safety
/// Called by CPython only, as a method of `LoopCore` (the method
/// descriptor checks that `slf` is one): with the GIL held, `args` pointing
/// to `nargs` borrowed references followed by one per name of `kwnames` (a
/// tuple of strings, or NULL).
unsafe fn call(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    name: &str,
    fixed: &[&str],
    work: Work,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller's contract.
            let slf = unsafe { Bound::from_borrowed_ptr(py, slf) };
            let slf = slf.cast_into::<LoopCore>()?;
            // SAFETY: the caller's contract.
            let (f, rest, context) = unsafe { parse(py, args, nargs, kwnames, name, fixed)? };
            work(&slf, &f, &rest, context.as_ref())
        }));
        let result = match outcome {
            Ok(result) => result,
            Err(_) => Err(PySystemError::new_err(format!(
                "{name} panicked (a bug of rtpy)"
            ))),
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

/// Parses `name(<fixed>..., *args, context=None)` as Python does: the
/// fixed parameters by position or by keyword, the other positional
/// arguments as `*args`, `context` by keyword only.
///
/// # Safety
/// As [`call`] (the arguments array and keyword names).
#[allow(clippy::type_complexity)]
unsafe fn parse<'py>(
    py: Python<'py>,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    name: &str,
    fixed: &[&str],
) -> PyResult<(
    Vec<Bound<'py, PyAny>>,
    Bound<'py, PyTuple>,
    Option<Bound<'py, PyAny>>,
)> {
    let nargs = usize::try_from(nargs).unwrap_or(0);
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: a tuple of keyword names (the caller's contract).
        usize::try_from(unsafe { ffi::PyTuple_Size(kwnames) }).unwrap_or(0)
    };
    let all: &[*mut ffi::PyObject] = if args.is_null() {
        &[]
    } else {
        // SAFETY: `nargs + nkw` borrowed references (the caller's
        // contract), alive for the call.
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    // SAFETY (the `from_borrowed_ptr` calls below): borrowed references of
    // the array, alive for the call.
    let mut slots: Vec<Option<Bound<'py, PyAny>>> = (0..fixed.len())
        .map(|i| (i < nargs).then(|| unsafe { Bound::from_borrowed_ptr(py, all[i]) }))
        .collect();
    let mut context = None;
    if nkw > 0 {
        // SAFETY: `kwnames` is a live tuple (checked non-null above).
        let names = unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?;
        for (i, kw) in names.iter().enumerate() {
            let kw = kw.cast_into::<PyString>()?;
            let kw = kw.to_cow()?;
            let value = unsafe { Bound::from_borrowed_ptr(py, all[nargs + i]) };
            if kw == "context" {
                context = Some(value);
            } else if let Some(at) = fixed.iter().position(|f| *f == kw) {
                if slots[at].is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "{name}() got multiple values for argument '{kw}'"
                    )));
                }
                slots[at] = Some(value);
            } else {
                return Err(PyTypeError::new_err(format!(
                    "{name}() got an unexpected keyword argument '{kw}'"
                )));
            }
        }
    }
    let missing: Vec<String> = fixed
        .iter()
        .zip(&slots)
        .filter(|(_, s)| s.is_none())
        .map(|(f, _)| format!("'{f}'"))
        .collect();
    if !missing.is_empty() {
        return Err(PyTypeError::new_err(format!(
            "{name}() missing {} required positional argument{}: {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(" and ")
        )));
    }
    let rest = all[fixed.len().min(nargs)..nargs]
        .iter()
        .map(|&p| unsafe { Bound::from_borrowed_ptr(py, p) });
    let rest = PyTuple::new(py, rest)?;
    Ok((slots.into_iter().flatten().collect(), rest, context))
}
