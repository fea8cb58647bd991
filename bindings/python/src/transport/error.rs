//! `TransportErr`: a Python exception as the error of
//! `rt_core::transport` (OS errors become `OSError(errno, strerror)`, which
//! Python maps to its subclass: `ConnectionResetError`, `BrokenPipeError`...).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use rt_core::transport::TransportError;
use std::io;

/// A Python exception carried through the transport.
#[derive(Debug)]
pub(crate) struct TransportErr(pub(crate) PyErr);

impl From<std::convert::Infallible> for TransportErr {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

impl From<PyErr> for TransportErr {
    fn from(e: PyErr) -> Self {
        TransportErr(e)
    }
}

impl From<TransportErr> for PyErr {
    fn from(e: TransportErr) -> Self {
        e.0
    }
}

impl TransportError for TransportErr {
    fn from_io(err: io::Error) -> Self {
        TransportErr(crate::errors::os_error(&err))
    }
    fn runtime(message: &str) -> Self {
        TransportErr(PyRuntimeError::new_err(message.to_string()))
    }
    fn duplicate(&self) -> Self {
        Python::attach(|py| TransportErr(self.0.clone_ref(py)))
    }
    fn escapes(&self) -> bool {
        Python::attach(|py| crate::errors::is_exit(py, &self.0))
    }
}

impl TransportErr {
    /// The exception object.
    pub(crate) fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.0.value(py).clone().into_any()
    }
}
