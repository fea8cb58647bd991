//! What the runtime calls back: a Python callable with its arguments, and
//! where the exceptions it raises go (`Runtime.exception_handler`).

use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyTraverseError;
use rt_core::callback::{Entered, InFlight, Status};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

thread_local! {
    /// Python callbacks this thread has called (`run` / `run_budget` report
    /// the difference: Python calls, not the layer's bookkeeping such as
    /// the final call of a task whose future was cancelled).
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn count_call() {
    let _ = CALLS.try_with(|c| c.set(c.get().wrapping_add(1)));
}

/// How many Python callbacks this thread has called so far.
pub(crate) fn calls_made() -> u64 {
    CALLS.try_with(Cell::get).unwrap_or(0)
}

/// A Python callable and the positional arguments to call it with.
///
/// Its references may be dropped on any thread, with or without the GIL:
/// pyo3 defers a release made without the GIL to the next time a thread
/// attaches.
pub(crate) struct PyCall {
    func: Py<PyAny>,
    args: Py<PyTuple>,
}

impl PyCall {
    /// `func(*args)`; `TypeError` if `func` is not callable.
    pub(crate) fn new(func: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<PyCall> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "a callable is required, not {}",
                func.get_type().name()?
            )));
        }
        Ok(PyCall {
            func: func.clone().unbind(),
            args: args.clone().unbind(),
        })
    }

    /// Calls it.
    pub(crate) fn call<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        count_call();
        self.func.bind(py).call(self.args.bind(py), None)
    }

    /// Calls it with `first` in front of its own arguments (a watch's
    /// events).
    pub(crate) fn call_with<'py>(
        &self,
        py: Python<'py>,
        first: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        count_call();
        let args = self.args.bind(py);
        if args.is_empty() {
            return self.func.bind(py).call1((first,));
        }
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(first.into_pyobject(py)?.into_any());
        all.extend(args.iter());
        self.func.bind(py).call1(PyTuple::new(py, all)?)
    }

    /// The callable.
    pub(crate) fn func<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.func.bind(py)
    }
}

impl PyCall {
    /// Another reference to the same call.
    fn clone_ref(&self, py: Python<'_>) -> PyCall {
        PyCall {
            func: self.func.clone_ref(py),
            args: self.args.clone_ref(py),
        }
    }
}

/// The call of a timer or watch, released (with the GIL) as soon as the
/// timer or watch is done, so a callback that refers to its own `Timer` /
/// `Watch` makes no cycle the garbage collector cannot see.
pub(crate) struct CallSlot(Mutex<Option<PyCall>>);

impl CallSlot {
    pub(crate) fn new(call: PyCall) -> CallSlot {
        CallSlot(Mutex::new(Some(call)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<PyCall>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call (a new reference: it stays valid if the slot is cleared
    /// meanwhile), or None once released.
    pub(crate) fn get(&self, py: Python<'_>) -> Option<PyCall> {
        self.lock().as_ref().map(|c| c.clone_ref(py))
    }

    /// Takes the call out (its last use).
    pub(crate) fn take(&self) -> Option<PyCall> {
        self.lock().take()
    }

    /// Releases the call (the GIL is held: released here, now).
    pub(crate) fn clear(&self, _py: Python<'_>) {
        let call = self.take();
        drop(call);
    }
}

/// The part of a runtime its callbacks need: where their exceptions go.
/// Callbacks hold it (not the runtime), so a callback never keeps its
/// runtime alive.
pub(crate) struct Reporter {
    /// `Runtime.exception_handler` (None: report like `sys.unraisablehook`).
    handler: Mutex<Option<Py<PyAny>>>,
    /// Exceptions raised by callbacks and not delivered to a future.
    exceptions: AtomicU64,
    /// Python calls the runtime's callbacks are making right now (a
    /// shutdown after a timed-out one waits for them); its gate closes when
    /// the runtime's shutdown begins: no Python call of its callbacks starts
    /// after (the layer's own check before the callback leaves a window, and
    /// a shutdown that finds nothing running reports success).
    pub(crate) calls: InFlight,
}

impl Reporter {
    pub(crate) fn new() -> Reporter {
        Reporter {
            handler: Mutex::new(None),
            exceptions: AtomicU64::new(0),
            calls: InFlight::new(),
        }
    }

    /// `calls.enter()` for a call with status Ok; None for the final
    /// `Cancelled` call (it calls no Python). Called before waiting for the
    /// GIL: a call waiting for it when the shutdown begins is running (it
    /// runs, the shutdown waits for it).
    pub(crate) fn enter_if_ok(&self, status: Status) -> Option<Entered<'_>> {
        match status {
            Status::Ok => self.calls.enter(),
            Status::Cancelled => None,
        }
    }

    /// The handler (None: the default report).
    pub(crate) fn handler(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.lock().as_ref().map(|h| h.clone_ref(py))
    }

    /// Sets the handler; the old one is released after the lock.
    pub(crate) fn set_handler(&self, handler: Option<Py<PyAny>>) {
        let old = std::mem::replace(&mut *self.lock(), handler);
        drop(old);
    }

    /// Visits the handler for the garbage collector (the reporter holds one
    /// reference to it; only its runtime's `__traverse__` may call this).
    /// Skipped if the handler is being replaced right now.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self.handler.try_lock() {
            Ok(handler) => visit.call(handler.as_ref()),
            Err(std::sync::TryLockError::Poisoned(e)) => visit.call(e.into_inner().as_ref()),
            Err(std::sync::TryLockError::WouldBlock) => Ok(()),
        }
    }

    /// How many exceptions callbacks raised (and this reported).
    pub(crate) fn count(&self) -> u64 {
        self.exceptions.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Py<PyAny>>> {
        self.handler.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports `err`, raised by `callback`: `handler(exc, context)` with
    /// `context = {"message": message, "exception": exc, "callback":
    /// callback}`, or, without a handler (or if the handler raises, for its
    /// own exception), `sys.unraisablehook` (which prints the traceback to
    /// stderr by default). Never raises.
    pub(crate) fn report(
        &self,
        py: Python<'_>,
        err: PyErr,
        message: &str,
        callback: &Bound<'_, PyAny>,
    ) {
        // KeyboardInterrupt / SystemExit inside a host's run or drain: out
        // of it, not reported.
        if crate::escape::escape(py, &err) {
            return;
        }
        self.exceptions.fetch_add(1, Relaxed);
        let Some(handler) = self.handler(py) else {
            err.write_unraisable(py, Some(callback));
            return;
        };
        let handler = handler.bind(py);
        let exc = err.into_value(py);
        let outcome = (|| -> PyResult<()> {
            let context = PyDict::new(py);
            context.set_item("message", message)?;
            context.set_item("exception", &exc)?;
            context.set_item("callback", callback)?;
            handler.call1((&exc, context))?;
            Ok(())
        })();
        if let Err(e) = outcome {
            e.write_unraisable(py, Some(handler));
        }
    }
}

/// `obj` as a `T`, or, for an int out of `T`'s range (pyo3's own
/// conversion raises `OverflowError`), `low` or `high` by its sign: so it
/// fails the caller's range check with a `ValueError`, as any other value
/// out of range.
fn extract_saturating<'a, 'py, T>(
    obj: pyo3::Borrowed<'a, 'py, PyAny>,
    low: T,
    high: T,
) -> PyResult<T>
where
    T: FromPyObject<'a, 'py, Error = PyErr>,
{
    match obj.extract::<T>() {
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) => {
            Ok(if obj.lt(0i64)? { low } else { high })
        }
        outcome => outcome,
    }
}

/// A number of seconds (int or float) as an `f64`: an int too large for a
/// float becomes an infinity of its sign, so it fails the range checks of
/// [`duration`](crate::runtime::duration) with a `ValueError` (pyo3's own
/// `f64` gives `OverflowError`), as any other value out of range.
#[derive(Clone, Copy)]
pub(crate) struct Seconds(pub(crate) f64);

impl<'a, 'py> FromPyObject<'a, 'py> for Seconds {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Seconds> {
        extract_saturating(obj, f64::NEG_INFINITY, f64::INFINITY).map(Seconds)
    }
}

/// An integer argument, saturated to the `i64` range: a value too large in
/// either direction fails its range check with a `ValueError` (pyo3's own
/// `i64` gives `OverflowError`), as any other value out of range.
#[derive(Clone, Copy)]
pub(crate) struct Int(pub(crate) i64);

impl<'a, 'py> FromPyObject<'a, 'py> for Int {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Int> {
        extract_saturating(obj, i64::MIN, i64::MAX).map(Int)
    }
}
