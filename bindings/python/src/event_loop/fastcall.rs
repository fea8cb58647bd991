//! `LoopCore.call_soon` as a hand-written `METH_FASTCALL | METH_KEYWORDS`
//! method (see [`fast_method`]), installed over the `#[pymethods]` one
//! when the module loads.
//!
//! asyncio's C `Future` schedules every callback it runs with
//! `loop.call_soon(callback, future, context=context)`: once per awaited
//! future, the hottest call a loop gets. pyo3's generated method cost about
//! 280 of the 24,000 instructions of a small `streams` echo request. Here
//! the keyword names are compared by pointer first (the interpreter interns
//! them), and the call goes straight to [`LoopCore::call_soon_impl`]: the
//! same checks, errors and result as the generated method's.

use super::core::LoopCore;
use crate::fast_method;
use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple, PyType};
use pyo3::{intern, Borrowed};

/// Replaces `LoopCore.call_soon` (the type's attribute) with the method
/// below, keeping its signature and docstring.
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    fast_method::install(ty, c"call_soon", call_soon, &GENERIC)
}

/// The generated method (kept by [`fast_method::install`]; every call
/// shape is parsed here, so nothing calls it).
static GENERIC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The method's name in its errors (pyo3's wording).
const NAME: &str = "LoopCore.call_soon()";

/// The first keyword names `context` and `callback` seen that are not the
/// interned ones (see [`is_name`]).
static CONTEXT_SEEN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CALLBACK_SEEN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The method: `self.call_soon(callback, *args, context=None)`.
///
/// # Safety
/// Called by the interpreter through the method descriptor made in
/// [`install`]: on an attached thread, `slf` an instance of `LoopCore` (the
/// descriptor checks it before the call), `args` holding `nargs`
/// positional arguments followed by one value per name of `kwnames` (NULL
/// or a tuple of strings), all borrowed for the call.
unsafe extern "C" fn call_soon(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>| -> PyResult<Py<PyAny>> {
        // SAFETY: the contract above: `slf` is a live `LoopCore` (checked
        // by the descriptor), `args` and `kwnames` are the vectorcall
        // arguments, borrowed for this call.
        let (slf, call) = unsafe {
            let slf = Borrowed::from_ptr(py, slf).cast_unchecked::<LoopCore>();
            (slf, Call::parse(py, args, nargs, kwnames)?)
        };
        let args = match call.rest {
            [] => PyTuple::empty(py),
            rest => PyTuple::new(py, rest)?,
        };
        let handle = LoopCore::call_soon_impl(&slf, call.callback, &args, call.context)?;
        Ok(handle.into_any().unbind())
    };
    // SAFETY: the interpreter called this method (the contract above).
    unsafe { fast_method::run(NAME, body) }
}

/// The arguments of one `call_soon(callback, *args, context=None)` call.
struct Call<'a, 'py> {
    callback: &'a Bound<'py, PyAny>,
    /// The positional arguments after the callback (`*args`).
    rest: &'a [Bound<'py, PyAny>],
    /// None for `context=None` too.
    context: Option<&'a Bound<'py, PyAny>>,
}

impl<'a, 'py> Call<'a, 'py> {
    /// Parses the vectorcall arguments as Python binds the signature
    /// `(callback, *args, context=None)`, with the generated method's errors.
    ///
    /// # Safety
    /// `args` holds `nargs` positional arguments followed by one value per
    /// name of `kwnames` (NULL or a tuple of strings), all live for `'a`.
    unsafe fn parse(
        py: Python<'py>,
        args: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> PyResult<Call<'a, 'py>> {
        let nargs = usize::try_from(nargs).map_err(|_| PySystemError::new_err("negative nargs"))?;
        let nkw = if kwnames.is_null() {
            0
        } else {
            // SAFETY: a non-NULL `kwnames` is a tuple (the contract).
            usize::try_from(unsafe { ffi::PyTuple_GET_SIZE(kwnames) }).unwrap_or(0)
        };
        let all: &'a [Bound<'py, PyAny>] = if nargs + nkw == 0 {
            &[]
        } else {
            // SAFETY: `args` holds `nargs + nkw` live object pointers for
            // `'a` (the contract); `Bound<PyAny>` is a transparent non-null
            // object pointer, and borrowing them as such never decrefs
            // (the slice is only read, never dropped).
            unsafe { std::slice::from_raw_parts(args.cast::<Bound<'py, PyAny>>(), nargs + nkw) }
        };
        let (positional, values) = all.split_at(nargs);
        let mut callback = positional.first();
        let mut context = None;
        for (i, value) in values.iter().enumerate() {
            // SAFETY: `kwnames` is a tuple of `nkw` strings, `i < nkw`; the
            // item is borrowed from the tuple, which outlives the call.
            let name = unsafe { Borrowed::from_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, i as _)) };
            if is_name(&name, intern!(py, "context"), &CONTEXT_SEEN)? {
                context = Some(value);
            } else if is_name(&name, intern!(py, "callback"), &CALLBACK_SEEN)? {
                if callback.is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "{NAME} got multiple values for argument 'callback'"
                    )));
                }
                callback = Some(value);
            } else {
                return Err(PyTypeError::new_err(format!(
                    "{NAME} got an unexpected keyword argument '{}'",
                    &*name
                )));
            }
        }
        let Some(callback) = callback else {
            return Err(PyTypeError::new_err(format!(
                "{NAME} missing 1 required positional argument: 'callback'"
            )));
        };
        Ok(Call {
            callback,
            rest: positional.get(1..).unwrap_or(&[]),
            context: context.filter(|c| !c.is_none()),
        })
    }
}

/// Whether the keyword `name` is `expected`: by pointer (interned names;
/// also the last equal name seen, kept alive in `seen` so that its address
/// cannot be reused), else by value.
fn is_name(
    name: &Borrowed<'_, '_, PyAny>,
    expected: &Bound<'_, PyString>,
    seen: &PyOnceLock<Py<PyAny>>,
) -> PyResult<bool> {
    let py = name.py();
    if name.as_ptr() == expected.as_ptr()
        || seen.get(py).is_some_and(|s| s.as_ptr() == name.as_ptr())
    {
        return Ok(true);
    }
    let equal = name.eq(expected)?;
    if equal {
        // Python 3.11's own identifiers (`_Py_ID(context)`, which the C
        // `Future` passes) are not the interned strings `intern!` finds.
        let _ = seen.set(py, (**name).clone().unbind());
    }
    Ok(equal)
}
