//! `_rtpy.SocketTransportCore`: the native half of `rtpy.SocketTransport`
//! (`rtpy/_transports.py`), a thin translation of
//! `rt_core::transport::SocketTransport` into Python. The core does the
//! socket I/O and the state machine; it calls the Python protocol with the
//! GIL held and watches its socket through the loop's Python-level hooks
//! (`loop._add_reader(fd, core._read_ready)`...), so it runs on any loop.
//!
//! Re-entrant: every method takes `&self`, and the state machine holds no
//! borrow while Python runs. Serialized by the GIL: see [`GilBound`].

mod error;
pub(crate) mod fast_write;
mod protocol;
mod reactor;
mod ready;

pub(crate) use ready::ReadyCall;

use error::TransportErr;
use protocol::PyProtocol;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
use reactor::{Hooks, PyReactor};
use rt_core::transport::SocketTransport;
use std::cell::RefCell;
use std::ops::Deref;

type Core = SocketTransport<PyProtocol, PyReactor>;

/// Single-threaded state (`Cell`, `RefCell`, `Rc`) shared by the threads
/// that hold the GIL, one at a time.
///
/// An asyncio transport belongs to its loop's thread, but Python lets any
/// thread call it (or drop it: the GC runs wherever it runs), and
/// `#[pyclass(unsendable)]` would turn such a call into a panic and such a
/// drop into a leak. The value is only ever used by this module's methods,
/// which all run attached to the interpreter and never detach: another
/// thread can only run while one of them is inside a call into Python,
/// where it holds no `RefCell` borrow and no `Rc` of its own other than
/// clones it will drop, exactly as for a re-entrant call on the same thread.
/// Thread switches happen only at GIL hand-offs, which order every access.
/// The module declares that it uses the GIL (`gil_used`, see `lib.rs`): a
/// free-threaded CPython enables the GIL when loading it, and the import is
/// refused if `PYTHON_GIL=0` keeps it off, so the GIL is always there.
struct GilBound<T>(T);

// SAFETY: see the type's doc: every access, and the drop, happens with the
// GIL held, so accesses from different threads are serialized (and ordered)
// by the GIL's hand-offs, never concurrent; `Rc` clones never outlive the
// method call that made them, so moving the whole value (a drop on another
// thread) moves every owner at once.
unsafe impl<T> Send for GilBound<T> {}
// SAFETY: as for Send: shared references are only used under the GIL.
unsafe impl<T> Sync for GilBound<T> {}

/// Runs `f` with the token of the interpreter this thread is attached to:
/// `Python::attach` without its bookkeeping (two thread-local accesses and
/// a count), for the protocol's and reactor's methods, which the state
/// machine only calls from within the methods and drop of
/// `SocketTransportCore` and `ReadyCall` (see [`GilBound`]), all attached
/// already.
fn attached<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    // SAFETY: every caller runs within a method (or the drop) of
    // `SocketTransportCore` or `ReadyCall`, called by the interpreter or by
    // rtpy's loop (`context::run_in`, within `_run_forever`) on an attached
    // thread that stays attached through the call (the transport never
    // detaches); the token does not outlive `f`.
    f(unsafe { Python::assume_attached() })
}

impl<T> Deref for GilBound<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The state machine of one stream-socket transport. Frozen: every method
/// takes `&self` (the state has its own cells), so a call checks no borrow
/// flag.
#[pyclass(module = "rtpy._rtpy", frozen)]
pub(crate) struct SocketTransportCore {
    t: GilBound<Core>,
    /// The Python socket (buffered protocols read through its `recv_into`).
    sock: GilBound<RefCell<Option<Py<PyAny>>>>,
}

fn err(e: TransportErr) -> PyErr {
    e.0
}

impl SocketTransportCore {
    /// `transport.write(data)`: bytes, bytearray or memoryview. asyncio's
    /// order: the type, then the transport's state, then the data.
    fn write_impl(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if !(data.is_instance_of::<PyBytes>()
            || data.is_instance_of::<PyByteArray>()
            || data.is_instance_of::<PyMemoryView>())
        {
            return Err(PyTypeError::new_err(format!(
                "data argument must be a bytes-like object, not '{}'",
                data.get_type().name()?
            )));
        }
        if self.t.eof_written() {
            return Err(PyRuntimeError::new_err(
                "Cannot call write() after write_eof()",
            ));
        }
        if self.t.reactor().empty_waiter.borrow().is_some() {
            return Err(PyRuntimeError::new_err(
                "unable to write; sendfile is in progress",
            ));
        }
        if let Ok(b) = data.cast::<PyBytes>() {
            return self.t.write(b.as_bytes()).map_err(err);
        }
        if let Ok(b) = data.cast::<PyByteArray>() {
            // SAFETY: the slice is used only until the core first runs
            // Python code (it copies what it keeps into its buffer before
            // calling the loop or the protocol), so nothing can resize or
            // free the bytearray while it is read.
            return self.t.write(unsafe { b.as_bytes() }).map_err(err);
        }
        let bytes = data.call_method0("tobytes")?;
        self.t
            .write(bytes.cast::<PyBytes>()?.as_bytes())
            .map_err(err)
    }
}

#[pymethods]
impl SocketTransportCore {
    /// A core for `transport` (the Python `SocketTransport`) on `loop`, over
    /// `sock` (connected, non-blocking), feeding `protocol` (`buffered`: an
    /// `asyncio.BufferedProtocol`). Nothing happens until `_start()`.
    #[new]
    fn new(
        loop_: &Bound<'_, PyAny>,
        transport: &Bound<'_, PyAny>,
        sock: &Bound<'_, PyAny>,
        protocol: &Bound<'_, PyAny>,
        buffered: bool,
    ) -> PyResult<Self> {
        let fd: i32 = sock.call_method0("fileno")?.extract()?;
        let proto = PyProtocol::new(protocol, buffered, sock)?;
        let reactor = PyReactor::new(fd);
        let hooks = Hooks {
            add_reader: loop_.getattr("_add_reader")?.unbind(),
            remove_reader: loop_.getattr("_remove_reader")?.unbind(),
            add_writer: loop_.getattr("_add_writer")?.unbind(),
            remove_writer: loop_.getattr("_remove_writer")?.unbind(),
            call_soon: loop_.getattr("call_soon")?.unbind(),
            transport: transport.clone().unbind(),
            // Bound in `_start`, once the core exists as a Python object.
            read_ready: loop_.py().None(),
            write_ready: loop_.py().None(),
            start_reading: loop_.py().None(),
            connection_made: protocol.getattr("connection_made")?.unbind(),
            connection_lost: transport.getattr("_call_connection_lost")?.unbind(),
        };
        *reactor.hooks.borrow_mut() = Some(hooks);
        Ok(SocketTransportCore {
            t: GilBound(SocketTransport::new(fd, proto, reactor)),
            sock: GilBound(RefCell::new(Some(sock.clone().unbind()))),
        })
    }

    /// Schedules `protocol.connection_made(transport)`, then the start of
    /// reading (asyncio's transport constructor).
    fn _start(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let read_ready = Py::new(py, ReadyCall::new(slf.clone().unbind(), false))?.into_any();
        let write_ready = Py::new(py, ReadyCall::new(slf.clone().unbind(), true))?.into_any();
        let start_reading = slf.getattr("_start_reading")?.unbind();
        let me = slf.get();
        if let Some(h) = me.t.reactor().hooks.borrow_mut().as_mut() {
            h.read_ready = read_ready;
            h.write_ready = write_ready;
            h.start_reading = start_reading;
        }
        me.t.start().map_err(err)
    }

    /// The fd's read readiness (the loop's reader callback).
    fn _read_ready(&self) -> PyResult<()> {
        self.t.read_ready().map_err(err)
    }

    /// The fd's write readiness (the loop's writer callback).
    fn _write_ready(&self) -> PyResult<()> {
        self.t.write_ready().map_err(err)
    }

    /// The scheduled start of reading.
    fn _start_reading(&self) -> PyResult<()> {
        self.t.start_reading().map_err(err)
    }

    /// `transport.write(data)`: bytes, bytearray or memoryview.
    // Replaced when the module loads by `fast_write::write`, which takes
    // this method's signature and docstring and makes the same call.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.write_impl(data)
    }

    /// Shuts the write side down once the buffer drained.
    fn write_eof(&self) -> PyResult<()> {
        self.t.write_eof().map_err(err)
    }

    /// Closes once the buffer drained.
    fn close(&self) -> PyResult<()> {
        self.t.close().map_err(err)
    }

    /// Closes at once, dropping the buffer.
    fn abort(&self) -> PyResult<()> {
        self.t.abort().map_err(err)
    }

    /// asyncio's `_force_close(exc)`.
    fn _force_close(&self, exc: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let exc = exc.map(|e| TransportErr(PyErr::from_value(e.clone())));
        self.t.force_close(exc).map_err(err)
    }

    /// asyncio's `_fatal_error(exc, message)`.
    fn _fatal_error(&self, exc: &Bound<'_, PyAny>, message: &str) {
        self.t
            .fatal_error(TransportErr(PyErr::from_value(exc.clone())), message);
    }

    /// Runs `protocol.connection_lost(exc)` once (the transport's
    /// `_call_connection_lost` then releases the socket).
    fn _call_connection_lost(&self, exc: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let exc = exc.map(|e| TransportErr(PyErr::from_value(e.clone())));
        self.t.call_connection_lost(exc).map_err(err)
    }

    /// Drops every Python object held (after the connection is lost).
    fn _clear(&self) {
        self.t.reactor().hooks.borrow_mut().take();
        self.t.reactor().empty_waiter.borrow_mut().take();
        self.t.detach_protocol();
        self.sock.borrow_mut().take();
    }

    fn is_closing(&self) -> bool {
        self.t.is_closing()
    }

    fn is_reading(&self) -> bool {
        self.t.is_reading()
    }

    fn pause_reading(&self) -> PyResult<()> {
        self.t.pause_reading().map_err(err)
    }

    fn resume_reading(&self) -> PyResult<()> {
        self.t.resume_reading().map_err(err)
    }

    fn get_write_buffer_size(&self) -> usize {
        self.t.get_write_buffer_size()
    }

    /// `(low, high)`.
    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.t.get_write_buffer_limits()
    }

    /// Sets checked marks, then pauses the protocol if already above.
    fn _set_write_buffer_limits(&self, high: usize, low: usize) -> PyResult<()> {
        self.t.set_write_buffer_limits(high, low).map_err(err)
    }

    /// Switches protocols (`buffered`: an `asyncio.BufferedProtocol`).
    fn set_protocol(&self, protocol: &Bound<'_, PyAny>, buffered: bool) -> PyResult<()> {
        let sock = self
            .sock
            .borrow()
            .as_ref()
            .map(|s| s.clone_ref(protocol.py()));
        let sock = match sock {
            Some(s) => s.into_bound(protocol.py()),
            None => protocol.py().None().into_bound(protocol.py()),
        };
        let p = PyProtocol::new(protocol, buffered, &sock)?;
        self.t.set_protocol(p);
        Ok(())
    }

    /// The protocol (None once the connection is lost).
    fn get_protocol(&self, py: Python<'_>) -> Py<PyAny> {
        match self.t.protocol() {
            Some(p) => p.obj.clone_ref(py),
            None => py.None(),
        }
    }

    /// Sets the sendfile waiter; True when the buffer is already empty.
    fn _set_empty_waiter(&self, waiter: Option<&Bound<'_, PyAny>>) -> bool {
        *self.t.reactor().empty_waiter.borrow_mut() = waiter.map(|w| w.clone().unbind());
        self.t.get_write_buffer_size() == 0
    }

    #[getter]
    fn _empty_waiter(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.t
            .reactor()
            .empty_waiter
            .borrow()
            .as_ref()
            .map(|w| w.clone_ref(py))
    }

    #[getter]
    fn _conn_lost(&self) -> u32 {
        self.t.conn_lost()
    }

    #[getter]
    fn _eof(&self) -> bool {
        self.t.eof_written()
    }

    #[getter]
    fn _protocol_paused(&self) -> bool {
        self.t.is_protocol_paused()
    }

    #[getter]
    fn _fd(&self) -> i32 {
        self.t.fd()
    }

    /// `(read, write)`: which readiness watches are registered.
    fn _polling(&self) -> (bool, bool) {
        self.t.watching()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.t.reactor().traverse(&visit)?;
        if let Some(p) = self.t.protocol() {
            p.traverse(&visit)?;
        }
        if let Ok(s) = self.sock.try_borrow() {
            visit.call(s.as_ref())?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        self._clear();
    }
}
