//! Python exceptions of rtpy, and the translation of the callback layer's
//! errors (`rt_core::callback::Error`) into them.

use pyo3::exceptions::{
    PyKeyboardInterrupt, PyOSError, PyRuntimeError, PySystemExit, PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use rt_core::callback::Error;

pyo3::create_exception!(
    rtpy,
    ShutdownError,
    PyRuntimeError,
    "The runtime is shut down (or shutting down): it accepts no new work."
);
pyo3::create_exception!(
    rtpy,
    DeadlockError,
    PyRuntimeError,
    "A blocking wait was refused because it could wait for itself: it was asked \
     from inside a runtime callback or on one of the runtime's threads."
);

/// The Python exception for an error of the callback layer. `what` names
/// the operation for the messages that need it ("timer", "watch"...).
pub(crate) fn to_py(err: Error, what: &str) -> PyErr {
    match err {
        Error::InvalidInput => PyValueError::new_err(format!("{what}: invalid argument")),
        Error::Shutdown => shutdown_error(),
        Error::NotFound => PyValueError::new_err(format!("{what}: no longer exists")),
        Error::WouldDeadlock => DeadlockError::new_err(format!(
            "{what}: refused inside a runtime callback or on a runtime thread (it could wait for itself)"
        )),
        Error::TimedOut => PyTimeoutError::new_err(format!("{what}: timed out")),
        Error::Already => PyRuntimeError::new_err(format!("{what}: already started or finished")),
        Error::Os(e) => os_error(&e),
        other => PyRuntimeError::new_err(format!("{what}: {other}")),
    }
}

/// True for `KeyboardInterrupt` and `SystemExit` (subclasses included):
/// the exceptions asyncio lets out of the loop instead of reporting them.
pub(crate) fn is_exit(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

/// `ShutdownError("runtime is shut down")`.
pub(crate) fn shutdown_error() -> PyErr {
    ShutdownError::new_err("the runtime is shut down")
}

/// An `OSError(errno, strerror)` (Python picks the subclass from the errno:
/// `FileExistsError` for `EEXIST`...), or a plain `OSError(message)` for an
/// error without an errno.
pub(crate) fn os_error(e: &std::io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, strerror(errno))),
        None => PyOSError::new_err(e.to_string()),
    }
}

/// The message of an errno, as `os.strerror` gives it.
fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // io::Error's Display appends " (os error N)": keep the C text only.
    match text.rfind(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The `PanicException` a caught panic raises, as from a pyo3 method: the
/// panic's message, or `fallback` for a payload that is not a string.
pub(crate) fn panic_error(payload: &(dyn std::any::Any + Send), fallback: &str) -> PyErr {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| fallback.to_string());
    pyo3::panic::PanicException::new_err(msg)
}
