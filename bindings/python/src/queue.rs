//! `rtpy.Queue` (`Runtime.queue()`): the completion queue. Any thread posts
//! `fn(*args)`; the host's thread runs them with `drain()`; `fileno()` is
//! readable while entries are queued.

use crate::call::{Int, PyCall, Reporter};
use crate::errors::os_error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rt_core::callback::{CompletionQueue, OnceCallback, Status};
use std::os::fd::RawFd;
use std::sync::{Arc, RwLock};

/// A queued call. `Cancelled` (queue closed with it still queued): it is
/// released uncalled.
pub(crate) struct Posted {
    call: PyCall,
    reporter: Arc<Reporter>,
}

impl OnceCallback for Posted {
    fn call(self, status: Status) {
        // The references go inside, with the GIL (also uncalled, when the
        // queue is closed).
        let _ = crate::gil::attach(move |py| {
            if status == Status::Ok {
                if let Err(e) = self.call.call(py) {
                    let func = self.call.func(py);
                    self.reporter
                        .report(py, e, "Exception in a queued callback", func);
                }
            }
            drop(self);
        });
    }
}

/// A completion queue: `post(fn, *args)` from any thread (or callback),
/// `drain()` on the thread that owns it (a game loop's), which runs the
/// queued calls in order (per producer: in the order it posted them).
/// `fileno()` is readable while it is not empty, for `select`/`poll`.
/// `close()` releases the calls still queued uncalled.
#[pyclass(module = "rtpy", name = "Queue", frozen)]
pub struct Queue {
    queue: RwLock<Option<Arc<CompletionQueue<Posted>>>>,
    reporter: Arc<Reporter>,
}

impl Queue {
    pub(crate) fn new(reporter: Arc<Reporter>) -> PyResult<Queue> {
        let queue = CompletionQueue::new().map_err(|e| os_error(&e))?;
        Ok(Queue {
            queue: RwLock::new(Some(Arc::new(queue))),
            reporter,
        })
    }

    /// The queue, or `ValueError` once closed.
    fn get(&self) -> PyResult<Arc<CompletionQueue<Posted>>> {
        self.queue
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| PyValueError::new_err("the queue is closed"))
    }
}

#[pymethods]
impl Queue {
    /// Queues `fn(*args)`, to run in a later `drain()`. Any thread.
    #[pyo3(signature = (func, /, *args))]
    fn post(&self, func: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let call = PyCall::new(func, args)?;
        self.get()?.post(Posted {
            call,
            reporter: self.reporter.clone(),
        });
        Ok(())
    }

    /// Runs queued calls on this thread, oldest first: at most `max`, or
    /// (None) those queued when it started. Never blocks. Exceptions go to
    /// the runtime's exception handler, except `KeyboardInterrupt` and
    /// `SystemExit`: they end the drain and are raised out of it (the calls
    /// after stay queued). Returns how many ran.
    #[pyo3(signature = (max = None))]
    fn drain(&self, max: Option<Int>) -> PyResult<usize> {
        let max = match max.map(|n| n.0) {
            None => 0,
            Some(n) if n < 0 => {
                return Err(PyValueError::new_err(format!("max must be >= 0, not {n}")))
            }
            Some(0) => return Ok(0),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let queue = self.get()?;
        let limit = if max == 0 { queue.len() } else { max };
        // One at a time: a KeyboardInterrupt / SystemExit ends the drain
        // right after the call that raised it (escape.rs).
        crate::escape::hosted(None, || {
            let mut ran = 0;
            while ran < limit && !crate::escape::escaping() && queue.drain(1) == 1 {
                ran += 1;
            }
            ran
        })
    }

    /// A file descriptor readable while calls are queued (owned by the
    /// queue: do not read or close it).
    fn fileno(&self) -> PyResult<RawFd> {
        Ok(self.get()?.fd())
    }

    /// Closes the queue: calls still queued are released uncalled; `post`,
    /// `drain` and `fileno` then raise `ValueError`. Idempotent.
    fn close(&self) {
        let queue = self.queue.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(queue);
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        self.queue
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Calls queued now (0 once closed).
    fn __len__(&self) -> usize {
        self.get().map(|q| q.len()).unwrap_or(0)
    }

    /// Returns itself (`with` closes it at the end of the block).
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes it (`close()`); exceptions go on.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }
}
