//! `ReadyCall`: a transport's reader or writer callback, as the loop holds
//! it (`loop._add_reader(fd, ReadyCall)`).
//!
//! Callable from Python like the bound method it stands for
//! (`core._read_ready`), and recognised by rtpy's loop, which calls it
//! natively ([`ReadyCall::run`] from `context::run_in`): no bound method,
//! vectorcall, or method trampoline per I/O event (about 170 of the 3,900
//! instructions of a small echo request in `Protocol` mode).

use super::{err, SocketTransportCore};
use crate::errors::panic_error;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};

/// The transport's read or write readiness, as one callable.
#[pyclass(module = "rtpy._rtpy", frozen)]
pub(crate) struct ReadyCall {
    core: Py<SocketTransportCore>,
    write: bool,
}

impl ReadyCall {
    /// The callback of `core`'s read (`write` false) or write readiness.
    pub(super) fn new(core: Py<SocketTransportCore>, write: bool) -> ReadyCall {
        ReadyCall { core, write }
    }

    /// `core._read_ready()` (or `_write_ready()`), as the loop calls it: a
    /// panic comes back as a `PanicException`, as from a method call.
    pub(crate) fn run(&self, py: Python<'_>) -> PyResult<()> {
        let t = &self.core.bind(py).get().t;
        let write = self.write;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if write {
                t.write_ready()
            } else {
                t.read_ready()
            }
        }));
        match outcome {
            Ok(r) => r.map_err(err),
            Err(payload) => Err(panic_error(&*payload, "panic in a transport")),
        }
    }
}

#[pymethods]
impl ReadyCall {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py)
    }

    /// What asyncio's handle reprs show (`_format_callback`).
    #[getter]
    fn __qualname__(&self) -> &'static str {
        if self.write {
            "SocketTransportCore._write_ready"
        } else {
            "SocketTransportCore._read_ready"
        }
    }

    /// The transport core, as a bound method's `__self__`.
    #[getter]
    fn __self__(&self, py: Python<'_>) -> Py<SocketTransportCore> {
        self.core.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<bound method {} of {}>",
            self.__qualname__(),
            self.core.bind(py).repr()?
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The core's own clear (dropping its hooks, which hold this) breaks
        // the cycle they form.
        visit.call(&self.core)
    }
}
