//! Running handles: asyncio's `Handle._run` and the part of
//! `BaseEventLoop._run_once` around it (debug mode's `_current_handle` and
//! slow-callback warning), and [`PyRunner`], the engine's
//! [`Runner`]: it runs handles with the GIL held and lets the GIL go only
//! around the wait.

use super::handle::{Handle, Item};
use super::spare::Spare;
use super::{Engine, FORMAT_HANDLE, LOGGER};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rt_core::event_loop::Runner;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// asyncio's `Handle._run`: `context.run(callback, *args)` (for a
/// `contextvars.Context`: enter, call, exit, with no bound method or
/// argument tuple made); an exception
/// goes to `loop.call_exception_handler` (the error comes back only for
/// `KeyboardInterrupt` / `SystemExit`, or if the handler raised). A
/// cancelled handle does nothing.
pub(crate) fn run_handle(handle: &Bound<'_, Handle>) -> PyResult<()> {
    let py = handle.py();
    let h = handle.get();
    let Some((callback, args)) = h.call(py) else {
        return Ok(());
    };
    let outcome = super::context::run_in(&h.context(py), &callback, &args);
    // The call may have kept the context (it was the current one).
    h.context_after_run(py);
    let err = match outcome {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    if crate::errors::is_exit(py, &err) {
        return Err(err);
    }
    let the_loop = h.the_loop(py);
    let source = super::format_callback_source(py, &callback, args.as_any(), &the_loop)?;
    let context = PyDict::new(py);
    context.set_item(
        "message",
        format!("Exception in callback {}", source.str()?),
    )?;
    context.set_item("exception", err.into_value(py))?;
    context.set_item("handle", handle)?;
    if let Some(tb) = h.source_traceback(py) {
        context.set_item("source_traceback", tb)?;
    }
    the_loop.call_method1("call_exception_handler", (context,))?;
    Ok(())
}

/// `run_handle` in debug mode, as `_run_once` does it: `_current_handle`
/// set around the call, and a warning on the `asyncio` logger when it took
/// `slow_callback_duration` seconds or more.
fn run_handle_debug(the_loop: &Bound<'_, PyAny>, handle: &Bound<'_, Handle>) -> PyResult<()> {
    the_loop.setattr("_current_handle", handle)?;
    let t0 = Engine::now_ns();
    let outcome = run_handle(handle).and_then(|()| {
        let dt = Engine::now_ns().saturating_sub(t0) as f64 / 1e9;
        let slow: f64 = the_loop.getattr("slow_callback_duration")?.extract()?;
        if dt >= slow {
            let py = the_loop.py();
            let what = FORMAT_HANDLE.get(py)?.call1((handle,))?;
            LOGGER
                .get(py)?
                .call_method1("warning", ("Executing %s took %.3f seconds", what, dt))?;
        }
        Ok(())
    });
    let reset = the_loop.setattr("_current_handle", the_loop.py().None());
    outcome.and(reset)
}

/// The engine's runner for one `_run_once`: runs handles on the loop's
/// thread with the GIL held; the GIL is let go only around the waits
/// ([`Runner::park`], [`Runner::poll`]).
pub(crate) struct PyRunner<'a, 'py> {
    pub(crate) the_loop: &'a Bound<'py, PyAny>,
    /// The loop's handles kept for reuse.
    pub(crate) spare: &'a Spare,
    /// The loop's closed flag: a closed loop keeps no handle (a handle
    /// closing it lets the rest of the batch run).
    pub(crate) closed: &'a AtomicBool,
    pub(crate) debug: bool,
    /// The exception a signal handler raised after the wait (raised out of
    /// `_run_once` once the iteration ends).
    pub(crate) signal: Option<PyErr>,
    /// True once the iteration waited (signals were checked after it).
    pub(crate) parked: bool,
}

/// A closure made sendable: `Python::detach` runs it on this same thread,
/// so it never crosses one.
struct OnThisThread<'a>(&'a mut dyn FnMut());

// SAFETY: `without_gil` hands it to `Python::detach`, which calls it on the
// calling thread before returning (the bound only serves closures that
// could be moved elsewhere); it holds no Python object (the engine's wait).
unsafe impl Send for OnThisThread<'_> {}

/// Runs `wait` (an engine wait, which holds no Python object) with the GIL
/// released, on this thread.
fn without_gil(py: Python<'_>, wait: &mut dyn FnMut()) {
    let wait = OnThisThread(wait);
    py.detach(move || {
        let wait = wait;
        (wait.0)()
    });
}

impl Runner<Item> for PyRunner<'_, '_> {
    type Error = PyErr;

    fn run(&mut self, h: Item) -> PyResult<()> {
        // A `Bound`: its release after the run is a plain decref, after
        // tracking the handle for the collector if the run let something
        // else keep it (see `untracked.rs`).
        let handle = h.into_inner().into_bound(self.the_loop.py());
        let outcome = if self.debug {
            run_handle_debug(self.the_loop, &handle)
        } else {
            run_handle(&handle)
        };
        super::untracked::track_if_shared(&handle);
        if !self.debug && !self.closed.load(Relaxed) {
            self.spare.keep(handle, self.the_loop);
        }
        outcome
    }

    fn poll(&mut self, poll: &mut dyn FnMut()) {
        // Other Python threads (executor jobs, a thread feeding the loop)
        // get the GIL here in every polling iteration, as with asyncio's
        // `select()`, rather than at the interpreter's 5 ms switch
        // interval while the loop stays busy.
        without_gil(self.the_loop.py(), poll);
    }

    fn park(&mut self, wait: &mut dyn FnMut()) {
        self.parked = true;
        let py = self.the_loop.py();
        without_gil(py, wait);
        // A signal that interrupted the wait (EINTR): its Python handler
        // runs now; what it raises (KeyboardInterrupt) ends `_run_once`.
        if let Err(e) = py.check_signals() {
            if self.signal.is_none() {
                self.signal = Some(e);
            }
        }
    }
}
