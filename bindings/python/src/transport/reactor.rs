//! `PyReactor`: the loop side of a `SocketTransport`, through the loop's
//! Python-level hooks (`_add_reader`, `_remove_reader`, `_add_writer`,
//! `_remove_writer`, `call_soon`), so that the transport runs on any loop
//! core that has them.

use super::error::TransportErr;
use crate::event_loop::LOGGER;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use rt_core::transport::{Reactor, Scheduled};
use std::cell::RefCell;
use std::os::fd::RawFd;

/// The Python objects the reactor calls. Dropped once the connection is
/// lost (or by the GC's clear).
pub(crate) struct Hooks {
    pub(crate) add_reader: Py<PyAny>,
    pub(crate) remove_reader: Py<PyAny>,
    pub(crate) add_writer: Py<PyAny>,
    pub(crate) remove_writer: Py<PyAny>,
    pub(crate) call_soon: Py<PyAny>,
    /// The Python `SocketTransport`.
    pub(crate) transport: Py<PyAny>,
    /// The core's `_read_ready` / `_write_ready` / `_start_reading`.
    pub(crate) read_ready: Py<PyAny>,
    pub(crate) write_ready: Py<PyAny>,
    pub(crate) start_reading: Py<PyAny>,
    /// The protocol's `connection_made` at the start.
    pub(crate) connection_made: Py<PyAny>,
    /// The transport's `_call_connection_lost`.
    pub(crate) connection_lost: Py<PyAny>,
}

impl Hooks {
    fn all(&self) -> [&Py<PyAny>; 11] {
        [
            &self.add_reader,
            &self.remove_reader,
            &self.add_writer,
            &self.remove_writer,
            &self.call_soon,
            &self.transport,
            &self.read_ready,
            &self.write_ready,
            &self.start_reading,
            &self.connection_made,
            &self.connection_lost,
        ]
    }
}

/// The reactor of one transport.
pub(crate) struct PyReactor {
    pub(crate) fd: RawFd,
    pub(crate) hooks: RefCell<Option<Hooks>>,
    /// The loop's sendfile waits on it for the write buffer to drain.
    pub(crate) empty_waiter: RefCell<Option<Py<PyAny>>>,
}

impl PyReactor {
    pub(crate) fn new(fd: RawFd) -> Self {
        PyReactor {
            fd,
            hooks: RefCell::new(None),
            empty_waiter: RefCell::new(None),
        }
    }

    /// Visits the Python objects held (the GC's traverse).
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(hooks) = self.hooks.try_borrow() {
            if let Some(h) = hooks.as_ref() {
                for o in h.all() {
                    visit.call(o)?;
                }
            }
        }
        if let Ok(w) = self.empty_waiter.try_borrow() {
            visit.call(w.as_ref())?;
        }
        Ok(())
    }

    /// Calls `pick(hooks)(*args)`; nothing once the hooks are gone.
    fn call<'py, A>(
        &self,
        py: Python<'py>,
        pick: impl FnOnce(&Hooks) -> &Py<PyAny>,
        args: A,
    ) -> PyResult<()>
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        let f = match self.hooks.borrow().as_ref() {
            Some(h) => pick(h).clone_ref(py),
            None => return Ok(()),
        };
        f.bind(py).call1(args)?;
        Ok(())
    }

    fn transport(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.hooks
            .borrow()
            .as_ref()
            .map(|h| h.transport.clone_ref(py))
    }

    /// `transport.<method>(exc, message)`; its own failure is unraisable.
    fn report(&self, method: &str, err: &TransportErr, message: &str) {
        super::attached(|py| {
            let Some(t) = self.transport(py) else { return };
            if let Err(e) = t.bind(py).call_method1(method, (err.value(py), message)) {
                e.write_unraisable(py, Some(t.bind(py)));
            }
        })
    }
}

impl Reactor<TransportErr> for PyReactor {
    fn want_read(&self, on: bool) -> Result<(), TransportErr> {
        super::attached(|py| {
            if on {
                let cb = match self.hooks.borrow().as_ref() {
                    Some(h) => h.read_ready.clone_ref(py),
                    None => return Ok(()),
                };
                self.call(py, |h| &h.add_reader, (self.fd, cb))?;
            } else {
                self.call(py, |h| &h.remove_reader, (self.fd,))?;
            }
            Ok(())
        })
    }

    fn want_write(&self, on: bool) -> Result<(), TransportErr> {
        super::attached(|py| {
            if on {
                let cb = match self.hooks.borrow().as_ref() {
                    Some(h) => h.write_ready.clone_ref(py),
                    None => return Ok(()),
                };
                self.call(py, |h| &h.add_writer, (self.fd, cb))?;
            } else {
                self.call(py, |h| &h.remove_writer, (self.fd,))?;
            }
            Ok(())
        })
    }

    fn call_soon(&self, what: Scheduled<TransportErr>) -> Result<(), TransportErr> {
        super::attached(|py| {
            let (f, arg) = {
                let hooks = self.hooks.borrow();
                let Some(h) = hooks.as_ref() else {
                    return Ok(());
                };
                match what {
                    Scheduled::ConnectionMade => (
                        h.connection_made.clone_ref(py),
                        Some(h.transport.clone_ref(py).into_bound(py)),
                    ),
                    Scheduled::StartReading => (h.start_reading.clone_ref(py), None),
                    Scheduled::ConnectionLost(exc) => (
                        h.connection_lost.clone_ref(py),
                        Some(match exc {
                            Some(e) => e.value(py),
                            None => py.None().into_bound(py),
                        }),
                    ),
                }
            };
            let call_soon = match self.hooks.borrow().as_ref() {
                Some(h) => h.call_soon.clone_ref(py),
                None => return Ok(()),
            };
            match arg {
                Some(a) => call_soon.bind(py).call1((f, a))?,
                None => call_soon.bind(py).call1((f,))?,
            };
            Ok(())
        })
    }

    fn fatal_error(&self, err: &TransportErr, message: &str) {
        self.report("_report_fatal", err, message);
    }

    fn callback_error(&self, err: &TransportErr, message: &str) {
        self.report("_report_error", err, message);
    }

    fn released(&self) {
        super::attached(|py| {
            let Some(t) = self.transport(py) else { return };
            if let Err(e) = t.bind(py).call_method0("_release") {
                e.write_unraisable(py, Some(t.bind(py)));
            }
        })
    }

    fn write_drained(&self, err: Option<&TransportErr>) {
        super::attached(|py| {
            let Some(w) = self.empty_waiter.borrow().as_ref().map(|w| w.clone_ref(py)) else {
                return;
            };
            let outcome = match err {
                Some(e) => w.bind(py).call_method1("set_exception", (e.value(py),)),
                None => w.bind(py).call_method1("set_result", (py.None(),)),
            };
            if let Err(e) = outcome {
                e.write_unraisable(py, Some(w.bind(py)));
            }
        })
    }

    fn lost_write_warning(&self) {
        super::attached(|py| {
            let logged = LOGGER
                .get(py)
                .and_then(|l| l.call_method1("warning", ("socket.send() raised exception.",)));
            if let Err(e) = logged {
                e.write_unraisable(py, None);
            }
        })
    }
}
