//! The native fast paths of `rtpy.Loop.sock_recv`, `sock_recv_into` and
//! `sock_sendall` (asyncio 3.11's `selector_events` semantics): the
//! syscall is tried at once (in Rust, on the socket's fd); if it would
//! block, a future is made, a [`SockWaiter`] is registered as the fd's
//! reader / writer with the engine and the future returned for the Python
//! wrapper (`rtpy/_unix.py`) to await. The waiter retries on readiness,
//! completes the future and removes its registration itself; a future
//! cancelled (or completed by someone else) meanwhile removes the
//! registration from its done callback (the waiter again), unless the fd
//! was taken over (the waiter's handle was cancelled).
//!
//! The functions return `NotImplemented` when the fast path does not apply
//! (not exactly a `socket.socket`, a socket with a timeout, an argument of
//! another type, a receive size over 256 KiB): the wrapper then runs the Python implementation, which
//! gives asyncio's exact checks and errors for those cases.

use super::core::{closed_error, LoopCore};
use super::gil_cell::GilCell;
use super::handle::Handle;
use super::Cached;
use crate::errors::{is_exit, os_error};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyInt, PyTuple};
use pyo3::PyTraverseError;
use pyo3::{ffi, intern};
use rt_core::transport::sys;
use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;

/// `socket.socket`: only exact instances take the fast path (a subclass
/// may override `recv` / `send`).
static SOCKET_TYPE: Cached = Cached::new("socket", "socket");

/// The largest `sock_recv` size of the fast path; larger sizes take the
/// Python path, whose allocation fails with `MemoryError` as asyncio's
/// would.
const KEEP: usize = 256 * 1024;

/// The first receive of `sock_recv` takes at most this many bytes (into the
/// thread's buffer; a larger message continues straight into its `bytes`).
const HEAD: usize = 16 * 1024;

thread_local! {
    /// The first receive's buffer of `sock_recv` ([`HEAD`] bytes; copied
    /// into a `bytes` of the exact size).
    static RECV_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What a waiter does when its fd is ready.
enum Op {
    /// `sock.recv(n)`.
    Recv(usize),
    /// `sock.recv_into(buf)`.
    RecvInto(Py<PyByteArray>),
    /// `sock.send(data[pos:])` until all of it is sent.
    SendAll(Py<PyBytes>, usize),
}

/// A waiting operation's state (taken out while it runs).
struct Pending {
    the_loop: Py<LoopCore>,
    fut: Py<PyAny>,
    sock: Py<PyAny>,
    /// The engine's registration (None until made).
    handle: Option<Py<Handle>>,
    op: Op,
}

/// A `sock_*` operation waiting for its fd: the reader / writer callback
/// (called with no argument) and the future's done callback (called with
/// the future).
#[pyclass(module = "rtpy._rtpy", name = "_SockWaiter", frozen)]
pub struct SockWaiter {
    fd: RawFd,
    write: bool,
    /// None once finished (or cleared by the garbage collector).
    pending: GilCell<Option<Pending>>,
}

/// The outcome of one attempt: `Ok(None)` would block (wait), `Ok(Some)`
/// the result, `Err` the exception (`EINTR` is retried once the signal
/// handlers ran, as Python's socket methods do).
type Attempt<'py> = PyResult<Option<Bound<'py, PyAny>>>;

/// `sock.fileno()`.
fn fileno(sock: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    sock.call_method0(intern!(sock.py(), "fileno"))?.extract()
}

/// Runs a syscall, retrying `EINTR` after the signal handlers (what they
/// raise is the outcome); `EAGAIN` is `Ok(None)`.
fn retry<T>(py: Python<'_>, mut call: impl FnMut() -> io::Result<T>) -> PyResult<Option<T>> {
    loop {
        match call() {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => py.check_signals()?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(os_error(&e)),
        }
    }
}

/// `recv(fd, n)` as a `bytes` of the received size: `Ok(None)` would
/// block. A receive first takes up to [`HEAD`] bytes into the thread's
/// buffer (copied into the result: one syscall for a small message); when
/// that fills, the rest the kernel holds (`FIONREAD`, up to `n`) is
/// received straight into the result, so a large message is copied once.
fn recv_bytes(py: Python<'_>, fd: RawFd, n: usize) -> PyResult<Option<Bound<'_, PyBytes>>> {
    RECV_BUF.with(|b| match b.try_borrow_mut() {
        Ok(mut v) => recv_with(py, fd, n, &mut v),
        // In use further up this thread's stack (a signal handler run by
        // an EINTR retry received too): a buffer of its own.
        Err(_) => recv_with(py, fd, n, &mut Vec::new()),
    })
}

/// [`recv_bytes`] with `v` as the first receive's buffer.
fn recv_with<'py>(
    py: Python<'py>,
    fd: RawFd,
    n: usize,
    v: &mut Vec<u8>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    v.clear();
    v.reserve(HEAD);
    let first = n.min(HEAD);
    let spare = &mut v.spare_capacity_mut()[..first];
    let Some(k) = retry(py, || sys::recv_uninit(fd, spare))? else {
        return Ok(None);
    };
    // SAFETY: recv initialized the first `k` bytes of `spare` (k <=
    // first); `MaybeUninit<u8>` has `u8`'s layout.
    let head = unsafe { std::slice::from_raw_parts(spare.as_ptr().cast::<u8>(), k) };
    let more = if k == first && n > first {
        sys::readable(fd).unwrap_or(0).min(n - k)
    } else {
        0
    };
    if more == 0 {
        // Allocating a `bytes` runs no Python code (not a GC object).
        return Ok(Some(PyBytes::new(py, head)));
    }
    recv_rest(py, fd, head, more).map(Some)
}

/// A `bytes` of `head` followed by up to `more` bytes received from `fd`
/// into it (an error or a short receive: what arrived; the next receive
/// reports the error again).
fn recv_rest<'py>(
    py: Python<'py>,
    fd: RawFd,
    head: &[u8],
    more: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let total = head.len() + more;
    let len = ffi::Py_ssize_t::try_from(total)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("receive size"))?;
    // SAFETY: the GIL is held; a NULL source makes a `bytes` of `len`
    // uninitialized bytes (a new reference, or NULL with MemoryError set),
    // filled below before anyone else sees it.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(std::ptr::null(), len))?
    };
    // SAFETY: `obj` is a new `bytes` of `total` bytes that only this
    // function references: its buffer is ours to write until returned.
    let buf = unsafe {
        let ptr = ffi::PyBytes_AsString(obj.as_ptr()).cast::<u8>();
        std::slice::from_raw_parts_mut(ptr, total)
    };
    buf[..head.len()].copy_from_slice(head);
    let got = sys::recv(fd, &mut buf[head.len()..]).unwrap_or(0);
    if got == more {
        // SAFETY: `obj` was made by PyBytes_FromStringAndSize.
        return Ok(unsafe { obj.cast_into_unchecked::<PyBytes>() });
    }
    // Short (another reader took bytes meanwhile): the exact size, copied.
    Ok(PyBytes::new(py, &buf[..head.len() + got]))
}

/// One attempt of `op` on the socket's `fd`.
fn attempt<'py>(py: Python<'py>, fd: RawFd, op: &mut Op) -> Attempt<'py> {
    match op {
        Op::Recv(0) => Ok(Some(PyBytes::new(py, b"").into_any())),
        Op::Recv(n) => Ok(recv_bytes(py, fd, *n)?.map(Bound::into_any)),
        Op::RecvInto(buf) => {
            let buf = buf.bind(py);
            let got = retry(py, || {
                // SAFETY: the GIL is held and no Python code runs while the
                // slice lives (one syscall), so the bytearray is neither
                // resized nor read meanwhile.
                sys::recv(fd, unsafe { buf.as_bytes_mut() })
            })?;
            Ok(got.map(|k| PyInt::new(py, k).into_any()))
        }
        Op::SendAll(data, pos) => {
            let bytes = data.bind(py).as_bytes();
            let rest = &bytes[(*pos).min(bytes.len())..];
            let Some(k) = retry(py, || sys::send(fd, rest))? else {
                return Ok(None);
            };
            *pos += k;
            if *pos >= bytes.len() {
                Ok(Some(py.None().into_bound(py)))
            } else {
                Ok(None)
            }
        }
    }
}

/// `loop._ensure_fd_no_transports(fd)`, skipped when the loop's
/// `_transports` (a `WeakValueDictionary`) has no entry for `fd`.
fn ensure_no_transport(the_loop: &Bound<'_, LoopCore>, fd: RawFd) -> PyResult<()> {
    let py = the_loop.py();
    if let Some(t) = the_loop.getattr_opt(intern!(py, "_transports"))? {
        if let Some(data) = t.getattr_opt(intern!(py, "data"))? {
            if let Ok(data) = data.cast::<PyDict>() {
                if data.get_item(fd)?.is_none() {
                    return Ok(());
                }
            }
        }
    }
    the_loop
        .call_method1(intern!(py, "_ensure_fd_no_transports"), (fd,))
        .map(drop)
}

/// The waiting half: a future, the waiter registered for `fd`, the future
/// returned (asyncio's order: future, transport check, registration).
fn wait<'py>(
    the_loop: &Bound<'py, LoopCore>,
    sock: &Bound<'py, PyAny>,
    fd: RawFd,
    write: bool,
    op: Op,
) -> PyResult<Bound<'py, PyAny>> {
    let py = the_loop.py();
    // LoopCore's native create_future, or a subclass's override.
    let fut = the_loop.call_method0(intern!(py, "create_future"))?;
    ensure_no_transport(the_loop, fd)?;
    let core = the_loop.get();
    if core.is_closed() {
        return Err(closed_error());
    }
    let waiter = Bound::new(
        py,
        SockWaiter {
            fd,
            write,
            pending: GilCell::new(None),
        },
    )?;
    let handle = Bound::new(
        py,
        Handle::make(
            py,
            waiter.as_any(),
            &PyTuple::empty(py),
            the_loop.as_any(),
            None,
            core.debug(),
        )?,
    )?;
    core.set_io(fd, &handle, write)?;
    let pending = Pending {
        the_loop: the_loop.clone().unbind(),
        fut: fut.clone().unbind(),
        sock: sock.clone().unbind(),
        handle: Some(handle.unbind()),
        op,
    };
    drop(waiter.get().pending.replace(py, Some(pending)));
    fut.call_method1(intern!(py, "add_done_callback"), (&waiter,))?;
    Ok(fut)
}

/// The fast path applies: `sock` is exactly a `socket.socket` without a
/// timeout (non-blocking: asyncio's debug-mode check passes, and it is not
/// an SSL socket).
fn fast(sock: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = sock.py();
    if !sock.get_type().is(SOCKET_TYPE.get(py)?) {
        return Ok(false);
    }
    let timeout = sock.getattr(intern!(py, "timeout"))?;
    Ok(!timeout.is_none() && timeout.extract::<f64>()? == 0.0)
}

/// `loop.sock_recv(sock, nbytes)`'s native half: the bytes, a future to
/// await, or `NotImplemented` (take the Python path).
#[pyfunction]
pub fn _sock_recv<'py>(
    the_loop: &Bound<'py, LoopCore>,
    sock: &Bound<'py, PyAny>,
    nbytes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // Exact ints only: an `__index__` would run Python code here.
    let op = match nbytes.is_exact_instance_of::<PyInt>() {
        true => nbytes
            .extract::<usize>()
            .ok()
            .filter(|&n| n <= KEEP)
            .map(Op::Recv),
        false => None,
    };
    start(the_loop, sock, op)
}

/// `loop.sock_recv_into(sock, buf)`'s native half (a `bytearray` buffer):
/// the count, a future to await, or `NotImplemented`.
#[pyfunction]
pub fn _sock_recv_into<'py>(
    the_loop: &Bound<'py, LoopCore>,
    sock: &Bound<'py, PyAny>,
    buf: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = buf
        .cast_exact::<PyByteArray>()
        .ok()
        .map(|b| Op::RecvInto(b.clone().unbind()));
    start(the_loop, sock, op)
}

/// `loop.sock_sendall(sock, data)`'s native half (a `bytes` payload): None
/// when all was sent at once, a future to await, or `NotImplemented`.
#[pyfunction]
pub fn _sock_sendall<'py>(
    the_loop: &Bound<'py, LoopCore>,
    sock: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = data
        .cast_exact::<PyBytes>()
        .ok()
        .map(|d| Op::SendAll(d.clone().unbind(), 0));
    start(the_loop, sock, op)
}

/// The common start of the native `sock_*` calls: `NotImplemented` (the
/// Python path) unless `op` was built and `sock` takes the fast path; else
/// one attempt at once, then a future completed on readiness.
fn start<'py>(
    the_loop: &Bound<'py, LoopCore>,
    sock: &Bound<'py, PyAny>,
    op: Option<Op>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = the_loop.py();
    let Some(mut op) = op else {
        return Ok(py.NotImplemented().into_bound(py));
    };
    if !fast(sock)? {
        return Ok(py.NotImplemented().into_bound(py));
    }
    let fd = fileno(sock)?;
    if let Some(done) = attempt(py, fd, &mut op)? {
        return Ok(done);
    }
    let write = matches!(op, Op::SendAll(..));
    wait(the_loop, sock, fd, write, op)
}

impl SockWaiter {
    /// The fd is ready: one attempt; done, it unregisters and completes
    /// the future (its done callback taken off first).
    fn ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let w = slf.get();
        let Some(mut p) = w.pending.replace(py, None) else {
            return Ok(());
        };
        let fut = p.fut.bind(py).clone();
        let outcome = if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
            Ok(None) // cancelled: the done callback unregisters
        } else {
            fileno(p.sock.bind(py)).and_then(|fd| attempt(py, fd, &mut p.op))
        };
        let outcome = match outcome {
            Ok(None) => {
                drop(w.pending.replace(py, Some(p)));
                return Ok(());
            }
            Err(e) if is_exit(py, &e) => {
                drop(w.pending.replace(py, Some(p)));
                return Err(e);
            }
            Ok(Some(v)) => Ok(v),
            Err(e) => Err(e),
        };
        p.the_loop.bind(py).get().clear_io(py, w.fd, w.write)?;
        drop(p);
        fut.call_method1(intern!(py, "remove_done_callback"), (slf,))?;
        match outcome {
            Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,))?,
            Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
        };
        Ok(())
    }

    /// The future is done (cancelled, or completed by someone else):
    /// unregisters, unless the fd was taken over or the loop is closed.
    fn released(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let w = slf.get();
        let Some(p) = w.pending.replace(py, None) else {
            return Ok(());
        };
        let taken_over = p
            .handle
            .as_ref()
            .is_none_or(|h| h.bind(py).get().is_cancelled());
        if taken_over {
            return Ok(());
        }
        p.the_loop
            .bind(py)
            .get()
            .clear_io(py, w.fd, w.write)
            .map(drop)
    }
}

#[pymethods]
impl SockWaiter {
    /// No argument: the fd is ready; one (the future): it is done.
    #[pyo3(signature = (*args))]
    fn __call__(slf: &Bound<'_, Self>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        if args.is_empty() {
            SockWaiter::ready(slf)
        } else {
            SockWaiter::released(slf)
        }
    }

    fn __repr__(&self) -> String {
        let what = if self.write { "writer" } else { "reader" };
        format!("<sock_* {what} fd={}>", self.fd)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: called by the collector (see `GilCell::peek`).
        let Some(p) = (unsafe { self.pending.peek() }) else {
            return Ok(());
        };
        visit.call(&p.the_loop)?;
        visit.call(&p.fut)?;
        visit.call(&p.sock)?;
        if let Some(h) = &p.handle {
            visit.call(h)?;
        }
        match &p.op {
            Op::Recv(_) => Ok(()),
            Op::RecvInto(b) => visit.call(b),
            Op::SendAll(d, _) => visit.call(d),
        }
    }

    fn __clear__(&self) {
        // SAFETY: called by the collector (see `GilCell::peek`).
        drop(unsafe { self.pending.take_unchecked() });
    }
}

/// Adds the functions to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SockWaiter>()?;
    m.add_function(wrap_pyfunction!(_sock_recv, m)?)?;
    m.add_function(wrap_pyfunction!(_sock_recv_into, m)?)?;
    m.add_function(wrap_pyfunction!(_sock_sendall, m)?)?;
    Ok(())
}
