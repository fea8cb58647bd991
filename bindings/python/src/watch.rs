//! `Runtime.watch` / `add_reader` / `add_writer` and `rtpy.Watch`: a Python
//! call as a level-triggered fd watch of the callback layer.

use crate::call::{CallSlot, Int, PyCall, Reporter};
use crate::errors::to_py;
use crate::runtime::{Runtime, RuntimeInner};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rt_core::callback::{Error, Status, WatchCallback, WatchId};
use std::os::fd::RawFd;
use std::sync::atomic::{
    AtomicBool, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::Arc;

/// A watch's callback.
pub(crate) struct PyWatch(Arc<WatchShared>);

pub(crate) struct WatchShared {
    call: CallSlot,
    reporter: Arc<Reporter>,
    /// `fn(events, *args)` (`watch`) or `fn(*args)` (`add_reader` /
    /// `add_writer`).
    pass_events: bool,
    /// True until closed or given its final call by shutdown.
    active: AtomicBool,
}

impl WatchCallback for PyWatch {
    fn call(&self, _fd: RawFd, events: u32, status: Status) {
        let shared = &*self.0;
        if status == Status::Cancelled {
            shared.active.store(false, Release);
        }
        // None: the final call, or the shutdown began (no call).
        let running = shared.reporter.enter_if_ok(status);
        let _ = crate::gil::attach(|py| {
            if status == Status::Cancelled {
                return shared.call.clear(py);
            }
            let (Some(_), Some(call)) = (&running, shared.call.get(py)) else {
                return;
            };
            let outcome = if shared.pass_events {
                call.call_with(py, events)
            } else {
                call.call(py)
            };
            if let Err(e) = outcome {
                shared
                    .reporter
                    .report(py, e, "Exception in a watch callback", call.func(py));
            }
        });
    }
}

/// The fd of an int or of an object with `fileno()`.
fn fd_of(obj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let fd: i64 = if obj.is_instance_of::<pyo3::types::PyInt>() {
        obj.extract::<Int>()?.0
    } else if obj.hasattr("fileno")? {
        obj.call_method0("fileno")?.extract::<Int>()?.0
    } else {
        return Err(PyTypeError::new_err(format!(
            "an int or an object with fileno() is required, not {}",
            obj.get_type().name()?
        )));
    };
    if fd < 0 {
        return Err(PyValueError::new_err(format!(
            "file descriptor cannot be negative: {fd}"
        )));
    }
    RawFd::try_from(fd).map_err(|_| PyValueError::new_err(format!("not a file descriptor: {fd}")))
}

/// Interest bits: READABLE and/or WRITABLE, nothing else.
fn interest(events: i64) -> PyResult<u32> {
    let all = i64::from(rt_core::callback::READABLE | rt_core::callback::WRITABLE);
    if events <= 0 || events & !all != 0 {
        return Err(PyValueError::new_err(format!(
            "events must be READABLE, WRITABLE or READABLE | WRITABLE, not {events}"
        )));
    }
    Ok(events as u32)
}

pub(crate) fn watch(
    rt: &Runtime,
    fd: &Bound<'_, PyAny>,
    events: Int,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    pass_events: bool,
) -> PyResult<Watch> {
    let call = PyCall::new(func, args)?;
    rt.check_live()?;
    let fd = fd_of(fd)?;
    let events = interest(events.0)?;
    let shared = Arc::new(WatchShared {
        call: CallSlot::new(call),
        reporter: rt.reporter().clone(),
        pass_events,
        active: AtomicBool::new(true),
    });
    let id = rt
        .core()
        .watch(fd, events, PyWatch(shared.clone()))
        .map_err(|e| to_py(e, "watch"))?;
    Ok(Watch {
        rt: rt.inner.clone(),
        id,
        fd,
        events: AtomicU32::new(events),
        shared,
    })
}

/// A level-triggered watch of a file descriptor (`Runtime.watch`,
/// `add_reader`, `add_writer`): its callback runs on a runtime thread for as
/// long as the fd is ready for its events. The caller keeps owning the fd:
/// close the watch before closing the fd.
#[pyclass(module = "rtpy", name = "Watch", frozen)]
pub struct Watch {
    rt: Arc<RuntimeInner>,
    id: WatchId,
    fd: RawFd,
    events: AtomicU32,
    shared: Arc<WatchShared>,
}

#[pymethods]
impl Watch {
    /// The watched file descriptor.
    #[getter]
    fn fd(&self) -> RawFd {
        self.fd
    }

    /// The events watched (READABLE and/or WRITABLE).
    #[getter]
    fn events(&self) -> u32 {
        self.events.load(Relaxed)
    }

    /// True until closed or the runtime shut down.
    #[getter]
    fn active(&self) -> bool {
        self.shared.active.load(Acquire)
    }

    /// Watches `events` instead (READABLE, WRITABLE or both). `ValueError`
    /// for bad events or a closed watch; `ShutdownError`.
    fn modify(&self, events: Int) -> PyResult<()> {
        let events = interest(events.0)?;
        self.rt.check_live()?;
        match self.rt.core().watch_modify(self.id, events) {
            Ok(()) => {
                self.events.store(events, Relaxed);
                Ok(())
            }
            Err(Error::NotFound) => Err(PyValueError::new_err("the watch is closed")),
            Err(e) => Err(to_py(e, "Watch.modify")),
        }
    }

    /// Stops the watch. When it returns, the callback is not running on any
    /// other thread and will not be called again (it waits for a running
    /// call, with the GIL released), except when called from inside another
    /// runtime callback while this watch's call runs on another thread (it
    /// does not wait there); the runtime no longer uses the fd, which may be
    /// closed now. From inside its own callback it returns at once.
    /// Idempotent; a no-op after shutdown.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.rt.forked() {
            // The watch is the parent's: its registration lives in an epoll
            // set the child shares with the parent, where a removal would
            // end the parent's watch. Nothing to stop in the child.
            self.shared.active.store(false, Release);
            return Ok(());
        }
        match py.detach(|| self.rt.core().watch_close(self.id)) {
            Ok(_) | Err(Error::NotFound) | Err(Error::Shutdown) => {
                self.shared.active.store(false, Release);
                // Not called again (after a shutdown: its final call came or
                // is coming; a call still finishing holds its own reference).
                if !self.rt.core().is_shutdown() {
                    self.shared.call.clear(py);
                }
                Ok(())
            }
            Err(e) => Err(to_py(e, "Watch.close")),
        }
    }

    /// Returns itself (`with` closes it at the end of the block).
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes it (`close()`); exceptions go on.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<rtpy.Watch fd={} events={} active={}>",
            self.fd,
            self.events(),
            if self.active() { "True" } else { "False" }
        )
    }
}
