//! `PyProtocol`: a Python `asyncio.Protocol` / `BufferedProtocol` as the
//! protocol of `rt_core::transport::SocketTransport`. Its methods are looked
//! up once, when the protocol is set (as uvloop does).

use super::error::TransportErr;
use pyo3::exceptions::{PyBlockingIOError, PyInterruptedError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::PyBytes;
use rt_core::transport::{sys, OwnedRead, Protocol, TransportError, MAX_READ};
use std::os::fd::RawFd;

/// Reads at least this long (the previous one's length as the hint) go
/// straight into a new `bytes` object, shrunk to fit (asyncio's
/// `sock.recv(max_size)`): above it, copying the data costs more than the
/// allocation and the shrink; below it, the transport's scratch buffer and
/// a copy are cheaper.
const OWNED_READ_MIN: usize = 4 * 1024;

/// The size of an owned read's buffer after a read of `last` bytes: room
/// for four times as much (a stream speeding up reaches [`MAX_READ`] in a
/// few reads), at least 16 KiB. The allocation comes from the heap and the
/// shrink is done in place: the transport's first read raised glibc's mmap
/// threshold above [`MAX_READ`] (see rt-core's
/// `transport/malloc_thresholds.rs`; a mapped buffer per read cost 13 to 25
/// page faults and 3 system calls per 100 KiB read).
fn owned_read_size(last: usize) -> usize {
    last.saturating_mul(4).clamp(16 * 1024, MAX_READ)
}

extern "C" {
    // `bytes` resizing (what `sock.recv` does to its buffer): exported by
    // every CPython 3 (outside the limited API; pyo3-ffi keeps its
    // declaration private); `*bytes` must be a new, unshared bytes object;
    // NULL with an exception set on failure.
    fn _PyBytes_Resize(
        bytes: *mut *mut ffi::PyObject,
        newsize: ffi::Py_ssize_t,
    ) -> std::os::raw::c_int;
}

/// `f(arg)` through the vectorcall protocol: no argument tuple, and a bound
/// method (a protocol's `data_received`) prepends its `self` in place.
fn call_one<'py>(f: &Bound<'py, PyAny>, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mut args = [std::ptr::null_mut(), arg.as_ptr()];
    // SAFETY: `f` and `arg` are live objects borrowed for the whole call, the
    // GIL is held (a `Bound` proves it). `args[1..]` holds the one argument;
    // with PY_VECTORCALL_ARGUMENTS_OFFSET the callee may overwrite `args[0]` temporarily
    // (it is ours and writable) and restores it. No keywords (NULL). The
    // result is a new reference (or NULL with an exception set), which
    // `from_owned_ptr_or_err` takes over.
    unsafe {
        let r = ffi::PyObject_Vectorcall(
            f.as_ptr(),
            args.as_mut_ptr().add(1).cast_const(),
            1 | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(f.py(), r)
    }
}

/// A Python protocol and its bound methods.
pub(crate) struct PyProtocol {
    pub(crate) obj: Py<PyAny>,
    /// `data_received`, or `buffer_updated` for a buffered protocol (None:
    /// the protocol has no such attribute yet; looked up at each call then,
    /// so that a missing one fails as asyncio's does, on data).
    on_data: Option<Py<PyAny>>,
    /// `get_buffer` for a buffered protocol.
    get_buffer: Option<Py<PyAny>>,
    /// The socket's `recv_into` (buffered protocols read through it).
    recv_into: Option<Py<PyAny>>,
}

impl PyProtocol {
    /// Binds `obj`'s methods; `buffered` (an `asyncio.BufferedProtocol`)
    /// reads through `get_buffer` / `sock.recv_into` / `buffer_updated`.
    pub(crate) fn new(
        obj: &Bound<'_, PyAny>,
        buffered: bool,
        sock: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(if buffered {
            PyProtocol {
                obj: obj.clone().unbind(),
                on_data: obj.getattr("buffer_updated").ok().map(Bound::unbind),
                get_buffer: Some(obj.getattr("get_buffer")?.unbind()),
                recv_into: Some(sock.getattr("recv_into")?.unbind()),
            }
        } else {
            PyProtocol {
                obj: obj.clone().unbind(),
                on_data: obj.getattr("data_received").ok().map(Bound::unbind),
                get_buffer: None,
                recv_into: None,
            }
        })
    }

    /// Visits the Python objects held (the GC's traverse).
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.obj)?;
        visit.call(&self.on_data)?;
        visit.call(&self.get_buffer)?;
        visit.call(&self.recv_into)
    }

    fn call0(&self, name: &str) -> Result<Py<PyAny>, TransportErr> {
        super::attached(|py| Ok(self.obj.bind(py).call_method0(name)?.unbind()))
    }
}

impl Protocol for PyProtocol {
    type Error = TransportErr;
    type Buffer = Py<PyAny>;

    fn is_buffered(&self) -> bool {
        self.get_buffer.is_some()
    }

    fn connection_made(&self) -> Result<(), TransportErr> {
        // The binding schedules `protocol.connection_made(transport)` itself.
        Ok(())
    }

    fn data_received(&self, data: &[u8]) -> Result<(), TransportErr> {
        super::attached(|py| {
            let bytes = PyBytes::new(py, data);
            match &self.on_data {
                Some(f) => call_one(f.bind(py), &bytes)?,
                None => self.obj.bind(py).call_method1("data_received", (bytes,))?,
            };
            Ok(())
        })
    }

    fn read_owned(&self, fd: RawFd, last: usize) -> Option<OwnedRead<TransportErr>> {
        if last < OWNED_READ_MIN || self.get_buffer.is_some() {
            return None;
        }
        Some(super::attached(|py| {
            let size = owned_read_size(last);
            // SAFETY: the GIL is held. A NULL source makes an uninitialized
            // bytes object of `size` bytes (a new reference, or NULL with
            // MemoryError set), owned by `bytes` from here on.
            let bytes = unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    ffi::PyBytes_FromStringAndSize(std::ptr::null(), size as ffi::Py_ssize_t),
                )
            };
            let bytes = match bytes {
                Ok(b) => b,
                Err(e) => return OwnedRead::Failed(e.into()),
            };
            // SAFETY: the object is new and not shared (no Python code ran
            // since it was made): its `size` bytes are ours to fill.
            let buf = unsafe {
                std::slice::from_raw_parts_mut(
                    ffi::PyBytes_AsString(bytes.as_ptr()).cast::<u8>(),
                    size,
                )
            };
            let n = match sys::recv(fd, buf) {
                Ok(0) => return OwnedRead::Eof,
                Ok(n) => n,
                Err(e) if sys::is_not_ready(&e) => return OwnedRead::NotReady,
                Err(e) => return OwnedRead::Failed(TransportErr::from_io(e)),
            };
            let mut raw = bytes.into_ptr();
            // SAFETY: `raw` is our only reference to an unshared bytes
            // object (its ownership moved out of `bytes`); the resize
            // replaces it in place, or frees it and sets NULL with an
            // exception set; `from_owned_ptr_or_err` takes the result.
            let bytes = unsafe {
                _PyBytes_Resize(&mut raw, n as ffi::Py_ssize_t);
                Bound::from_owned_ptr_or_err(py, raw)
            };
            let bytes = match bytes {
                Ok(b) => b,
                Err(e) => return OwnedRead::Failed(e.into()),
            };
            let delivered = match &self.on_data {
                Some(f) => call_one(f.bind(py), &bytes).map(drop),
                None => self
                    .obj
                    .bind(py)
                    .call_method1("data_received", (bytes,))
                    .map(drop),
            };
            OwnedRead::Data(n, delivered.map_err(TransportErr::from))
        }))
    }

    fn eof_received(&self) -> Result<bool, TransportErr> {
        super::attached(|py| {
            let keep = self.obj.bind(py).call_method0("eof_received")?;
            Ok(keep.is_truthy()?)
        })
    }

    fn connection_lost(&self, exc: Option<TransportErr>) -> Result<(), TransportErr> {
        super::attached(|py| {
            let exc = match exc {
                Some(e) => e.value(py),
                None => py.None().into_bound(py),
            };
            self.obj.bind(py).call_method1("connection_lost", (exc,))?;
            Ok(())
        })
    }

    fn pause_writing(&self) -> Result<(), TransportErr> {
        self.call0("pause_writing").map(drop)
    }

    fn resume_writing(&self) -> Result<(), TransportErr> {
        self.call0("resume_writing").map(drop)
    }

    fn get_buffer(&self, sizehint: isize) -> Result<Py<PyAny>, TransportErr> {
        super::attached(|py| {
            let f = self.get_buffer.as_ref().expect("is_buffered");
            Ok(f.bind(py).call1((sizehint,))?.unbind())
        })
    }

    fn buffer_len(&self, buf: &Py<PyAny>) -> Result<usize, TransportErr> {
        super::attached(|py| Ok(buf.bind(py).len()?))
    }

    fn recv_into(&self, _fd: RawFd, buf: &mut Py<PyAny>) -> Result<Option<usize>, TransportErr> {
        super::attached(|py| {
            let f = self.recv_into.as_ref().expect("is_buffered");
            match f.bind(py).call1((buf.bind(py),)) {
                Ok(n) => Ok(Some(n.extract::<usize>()?)),
                Err(e)
                    if e.is_instance_of::<PyBlockingIOError>(py)
                        || e.is_instance_of::<PyInterruptedError>(py) =>
                {
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn buffer_updated(&self, n: usize) -> Result<(), TransportErr> {
        super::attached(|py| {
            match &self.on_data {
                Some(f) => call_one(f.bind(py), n.into_pyobject(py)?.as_any())?,
                None => self.obj.bind(py).call_method1("buffer_updated", (n,))?,
            };
            Ok(())
        })
    }
}
