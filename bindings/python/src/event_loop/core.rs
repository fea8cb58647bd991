//! `_rtpy.LoopCore`: the engine's scheduling as the methods asyncio's loop
//! has (`call_soon`, `call_later`, `call_at`, `call_soon_threadsafe`,
//! `time`), the selector loop's private fd hooks (`_add_reader`...), and one
//! iteration (`_run_once`). `rtpy.Loop(LoopCore, asyncio.BaseEventLoop)`
//! inherits them, shadowing BaseEventLoop's versions.

use super::handle::{Handle, Item, TimerHandle};
use super::run::PyRunner;
use super::spare::Spare;
use super::{Engine, FUTURE, ISCOROUTINE, ISCOROUTINEFUNCTION};
use crate::errors::os_error;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyTraverseError;
use pyo3::{ffi, intern};
use rt_core::event_loop::{BusyPoll, Limits, MONOTONIC_ZERO_NS};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// The native base of `rtpy.Loop`: the engine (ready queue, timers, epoll,
/// embedded runtime) and the flags it reads on every call (closed, debug).
#[pyclass(
    module = "rtpy._rtpy",
    name = "LoopCore",
    subclass,
    dict,
    weakref,
    frozen
)]
pub struct LoopCore {
    engine: Arc<Engine>,
    debug: AtomicBool,
    closed: AtomicBool,
    /// BaseEventLoop's `_stopping` (`stop()` sets it; read every
    /// iteration), as a native attribute.
    stopping: AtomicBool,
    /// Handles kept for reuse (see `spare.rs`).
    spare: Spare,
    /// True once the contents are written. `rtpy.Loop` is a Python
    /// subclass with an instance dict, which `object.__new__` makes after
    /// the object is tracked by the collector and before pyo3 writes these
    /// fields: a collection that allocation starts traverses zeroed
    /// contents, where only this flag (false) is valid to read.
    built: AtomicBool,
}

/// `("loop",)`: the keyword names of `create_future`'s call.
static LOOP_KWNAME: pyo3::sync::PyOnceLock<Py<PyTuple>> = pyo3::sync::PyOnceLock::new();

/// `RuntimeError('Event loop is closed')`, asyncio's.
pub(crate) fn closed_error() -> PyErr {
    PyRuntimeError::new_err("Event loop is closed")
}

/// Seconds of loop time (`time.monotonic()`'s, possibly negative) as
/// engine nanoseconds (`MONOTONIC_ZERO_NS` at the clock's zero), rounded up
/// so that a deadline is never early (NaN and more than 146 years before the
/// clock's zero: 0; beyond the range: never).
pub(crate) fn to_ns(t: f64) -> u64 {
    const ZERO: f64 = MONOTONIC_ZERO_NS as f64;
    let x = (t * 1e9).ceil();
    if x.is_nan() || x <= -ZERO {
        return 0;
    }
    if x >= i64::MAX as f64 {
        return u64::MAX; // 292 years away
    }
    // -2^62 < x < 2^63: exact as an i64 (an f64 this large is an integer),
    // and so is ZERO + x as a u64.
    let mut n = x as i64;
    // The product may have rounded down by an ulp.
    for _ in 0..4 {
        if n as f64 / 1e9 >= t {
            break;
        }
        n += 1;
    }
    MONOTONIC_ZERO_NS.saturating_add_signed(n)
}

/// The loop's time in seconds for engine nanoseconds.
pub(crate) fn to_seconds(ns: u64) -> f64 {
    (ns as i128 - MONOTONIC_ZERO_NS as i128) as f64 / 1e9
}

/// selectors' `_fileobj_to_fd`: an int, or `int(obj.fileno())`; ValueError
/// for a negative fd or an object without a usable `fileno()`.
pub(crate) fn fileobj_to_fd(obj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let py = obj.py();
    let fd: i64 = if obj.is_instance_of::<pyo3::types::PyInt>() {
        obj.extract()?
    } else {
        let got = obj
            .call_method0(intern!(py, "fileno"))
            .and_then(|f| py.get_type::<pyo3::types::PyInt>().call1((f,)))
            .and_then(|n| n.extract::<i64>());
        match got {
            Ok(fd) => fd,
            Err(e)
                if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py)
                    || e.is_instance_of::<PyTypeError>(py)
                    || e.is_instance_of::<PyValueError>(py) =>
            {
                return Err(PyValueError::new_err(format!(
                    "Invalid file object: {}",
                    obj.repr()?
                )));
            }
            Err(e) => return Err(e),
        }
    };
    if fd < 0 {
        return Err(PyValueError::new_err(format!(
            "Invalid file descriptor: {fd}"
        )));
    }
    RawFd::try_from(fd).map_err(|_| PyValueError::new_err(format!("Invalid file descriptor: {fd}")))
}

/// asyncio's `BaseEventLoop._check_callback`, with a fast path for builtin
/// functions and methods (what C Tasks and Futures schedule: never
/// coroutine functions).
fn check_callback(callback: &Bound<'_, PyAny>, method: &str) -> PyResult<()> {
    // SAFETY: a type check of a live object (the GIL is held: `Bound`).
    if unsafe { ffi::PyCFunction_Check(callback.as_ptr()) } != 0 {
        return Ok(());
    }
    let py = callback.py();
    if ISCOROUTINE.get(py)?.call1((callback,))?.is_truthy()?
        || ISCOROUTINEFUNCTION
            .get(py)?
            .call1((callback,))?
            .is_truthy()?
    {
        return Err(PyTypeError::new_err(format!(
            "coroutines cannot be used with {method}()"
        )));
    }
    if !callback.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "a callable object was expected by {method}(), got {}",
            callback.repr()?
        )));
    }
    Ok(())
}

impl LoopCore {
    /// The debug flag (the native `_debug` attribute `set_debug` writes).
    pub(crate) fn debug(&self) -> bool {
        self.debug.load(Relaxed)
    }

    fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(Relaxed) {
            return Err(closed_error());
        }
        Ok(())
    }

    /// The checks of asyncio's `call_soon` / `call_at` (debug mode: the
    /// thread, the callback). Returns the debug flag.
    fn check_schedule(
        slf: &Bound<'_, Self>,
        callback: &Bound<'_, PyAny>,
        method: &str,
    ) -> PyResult<bool> {
        let core = slf.get();
        core.check_closed()?;
        let debug = core.debug();
        if debug {
            slf.call_method0(intern!(slf.py(), "_check_thread"))?;
            check_callback(callback, method)?;
        }
        Ok(debug)
    }

    /// `call_at` after its checks.
    fn schedule_at<'py>(
        slf: &Bound<'py, Self>,
        when_obj: Bound<'py, PyAny>,
        when: f64,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
        debug: bool,
    ) -> PyResult<Bound<'py, TimerHandle>> {
        let py = slf.py();
        let base = Handle::make(py, callback, args, slf.as_any(), context, debug)?;
        let timer = Bound::new(py, TimerHandle::make(when_obj.unbind(), when, base))?;
        let engine = &slf.get().engine;
        let item = Item(timer.clone().into_super().unbind());
        let key = engine
            .call_at(to_ns(when), item)
            .map_err(|_| closed_error())?;
        timer.get().scheduled(py, key);
        super::untracked::untrack(timer.as_super());
        Ok(timer)
    }

    /// Registers `handle` as the reader (`write` false) or writer of `fd`
    /// with the engine; cancels the one it replaces.
    pub(crate) fn set_io(
        &self,
        fd: RawFd,
        handle: &Bound<'_, Handle>,
        write: bool,
    ) -> PyResult<()> {
        let item = Item(handle.clone().unbind());
        let old = if write {
            self.engine.add_writer(fd, item)
        } else {
            self.engine.add_reader(fd, item)
        }
        .map_err(|e| os_error(&e))?;
        if let Some(old) = old {
            Handle::cancel_base(old.0.bind(handle.py()))?;
        }
        Ok(())
    }

    /// Removes the reader (`write` false) or writer of `fd`, cancelling it:
    /// true if it had one (false once the loop is closed).
    pub(crate) fn clear_io(&self, py: Python<'_>, fd: RawFd, write: bool) -> PyResult<bool> {
        if self.is_closed() {
            return Ok(false);
        }
        let old = if write {
            self.engine.remove_writer(fd)
        } else {
            self.engine.remove_reader(fd)
        };
        match old {
            Some(old) => {
                Handle::cancel_base(old.0.bind(py))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Sets a reader (`write` false) or writer of `fd`; cancels the one it
    /// replaces.
    fn add_io<'py>(
        slf: &Bound<'py, Self>,
        fd: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        write: bool,
    ) -> PyResult<Bound<'py, Handle>> {
        let py = slf.py();
        let core = slf.get();
        core.check_closed()?;
        let fd = fileobj_to_fd(fd)?;
        let handle = Bound::new(
            py,
            Handle::make(py, callback, args, slf.as_any(), None, core.debug())?,
        )?;
        core.set_io(fd, &handle, write)?;
        Ok(handle)
    }

    /// Removes the reader (`write` false) or writer of `fd`, cancelling it.
    fn remove_io(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>, write: bool) -> PyResult<bool> {
        let core = slf.get();
        if core.is_closed() {
            return Ok(false);
        }
        core.clear_io(slf.py(), fileobj_to_fd(fd)?, write)
    }

    /// `call_soon(callback, *args, context=None)`: schedules the call for
    /// the next iteration (FIFO).
    pub(crate) fn call_soon_impl<'py>(
        slf: &Bound<'py, Self>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Handle>> {
        let py = slf.py();
        let debug = LoopCore::check_schedule(slf, callback, "call_soon")?;
        let kept = if debug {
            None
        } else {
            slf.get()
                .spare
                .take(slf.as_any(), callback, args, context)?
        };
        let handle = match kept {
            Some(h) => h,
            None => Bound::new(
                py,
                Handle::make(py, callback, args, slf.as_any(), context, debug)?,
            )?,
        };
        slf.get()
            .engine
            .call_soon(Item(handle.clone().unbind()))
            .map_err(|_| closed_error())?;
        super::untracked::untrack(&handle);
        Ok(handle)
    }

    /// `call_soon_threadsafe(callback, *args, context=None)`: `call_soon`
    /// from any thread; wakes the loop.
    pub(crate) fn call_soon_threadsafe_impl<'py>(
        slf: &Bound<'py, Self>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Handle>> {
        let py = slf.py();
        let core = slf.get();
        core.check_closed()?;
        let debug = core.debug();
        if debug {
            check_callback(callback, "call_soon_threadsafe")?;
        }
        let handle = Bound::new(
            py,
            Handle::make(py, callback, args, slf.as_any(), context, debug)?,
        )?;
        core.engine
            .call_soon_threadsafe(Item(handle.clone().unbind()))
            .map_err(|_| closed_error())?;
        Ok(handle)
    }

    /// `call_later(delay, callback, *args, context=None)`: schedules the
    /// call `delay` seconds from now (never earlier).
    pub(crate) fn call_later_impl<'py>(
        slf: &Bound<'py, Self>,
        delay: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, TimerHandle>> {
        if delay.is_none() {
            return Err(PyTypeError::new_err("delay must not be None"));
        }
        let delay: f64 = delay.extract()?;
        let when = to_seconds(Engine::now_ns()) + delay;
        let debug = LoopCore::check_schedule(slf, callback, "call_at")?;
        let when_obj = pyo3::types::PyFloat::new(slf.py(), when).into_any();
        LoopCore::schedule_at(slf, when_obj, when, callback, args, context, debug)
    }

    /// `call_at(when, callback, *args, context=None)`: schedules the call at
    /// loop time `when` (never earlier).
    pub(crate) fn call_at_impl<'py>(
        slf: &Bound<'py, Self>,
        when: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, TimerHandle>> {
        if when.is_none() {
            return Err(PyTypeError::new_err("when cannot be None"));
        }
        let seconds: f64 = when.extract()?;
        let debug = LoopCore::check_schedule(slf, callback, "call_at")?;
        LoopCore::schedule_at(slf, when.clone(), seconds, callback, args, context, debug)
    }

    /// BaseEventLoop's `_stopping`.
    fn stopping(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(slf.get().stopping.load(Relaxed))
    }

    /// One iteration within `limits` (`_run_once`'s work): the number of
    /// handles run, and whether it waited (then pending signals were
    /// handled after the wait).
    fn iteration(slf: &Bound<'_, Self>, limits: Limits) -> PyResult<(usize, bool)> {
        let core = slf.get();
        core.check_closed()?;
        let stopping = LoopCore::stopping(slf)?;
        let mut runner = PyRunner {
            the_loop: slf.as_any(),
            spare: &core.spare,
            closed: &core.closed,
            debug: core.debug(),
            signal: None,
            parked: false,
        };
        // `slf` keeps the core, hence its engine, alive through the
        // callbacks (closing the loop closes the engine, never drops it).
        let ran = core.engine.run_once(&mut runner, stopping, limits)?;
        match runner.signal.take() {
            Some(e) => Err(e),
            None => Ok((ran, runner.parked)),
        }
    }

    /// True once `_close_core` ran.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// The engine (the pool's jobs reach the runtime through it).
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

/// How a busy `_run_forever` (callbacks ready in every iteration) skips
/// polls: asyncio polls in every iteration, which costs a system call and a
/// GIL hand-off (about 0.5 µs here) per callback in a chain of
/// `call_soon`s. Here a poll that found nothing lets at most 31 following
/// iterations skip theirs, within 10 µs of it; a poll that found events
/// lets the next one skip its own (within 10 µs: the task step that
/// answers a request read by the iteration before makes no poll of its
/// own), then the one after polls. I/O that becomes ready while a chain of
/// callbacks runs is seen within about 10 µs (plus the callback running
/// then), about one iteration of a task step: a chain of fast callbacks
/// (~0.2 µs each) polls once per 32, a task spinning on `sleep(0)` every
/// few iterations, slow callbacks in every one. More skips would make a
/// fast chain cheaper (127: about 5% per callback) but hand the GIL to
/// other threads less often: a thread waiting for it gets it only if it
/// wakes within a poll (or at the interpreter's switch interval). (rloop
/// skips every poll for 250 µs while callbacks are ready, events or not;
/// Tokio polls its driver every 61 scheduler ticks.)
const BUSY_POLL: BusyPoll = BusyPoll {
    max_skips: 31,
    max_skips_after_events: 1,
    interval_ns: 10_000,
};

/// The busy iterations of `_run_forever` between two checks for pending
/// signal handlers, at most (a few microseconds each).
const SIGNAL_CHECK_EVERY: u32 = 32;

#[pymethods]
impl LoopCore {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        py: Python<'_>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LoopCore> {
        // SAFETY: every call into the engine holds the GIL: the engine is
        // reached only through this core (its methods, traversal and clear
        // run attached to the interpreter, as do `TimerHandle.cancel` and
        // the executor's submit, which reach it through `engine()`; the
        // executor's jobs call back through `call_soon_threadsafe`, exempt),
        // the module declares `gil_used` (a free-threaded CPython enables
        // the GIL for it), and `run_once` lets the GIL go only within
        // `PyRunner::park` / `poll`, around the engine's wait.
        let engine = unsafe { Engine::with_outside_lock() }.map_err(|e| os_error(&e))?;
        // The collector hook of untracked handles, before any handle (if it
        // cannot be added, handles stay tracked: see `untracked::untrack`).
        let _ = super::untracked::hook(py);
        Ok(LoopCore {
            engine: Arc::new(engine),
            debug: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            spare: Spare::new(),
            built: AtomicBool::new(true),
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.built.load(Relaxed) {
            // Being made (see `built`): it holds nothing yet.
            return Ok(());
        }
        // The handles the engine holds refer back to the loop (`_loop`):
        // visited, an unclosed loop with pending handles is collected (its
        // BaseEventLoop.__del__ warns and closes it), as asyncio's.
        let mut out = Ok(());
        self.engine.visit_handles(&mut |h: &Item| {
            if out.is_ok() {
                out = h.visit(&visit);
            }
        });
        out
    }

    fn __clear__(&self) {
        // Cyclic garbage: release the handles, as `_close_core` does.
        self.closed.store(true, Relaxed);
        let handles = self.engine.close();
        drop(handles);
        // The collector runs with the GIL held.
        Python::attach(|py| self.spare.clear(py));
    }

    /// Schedules `callback(*args)` for the next iteration (FIFO); returns
    /// its Handle.
    // Replaced when the module loads by `fastcall::call_soon`, which takes
    // this method's signature and docstring and makes the same call.
    #[pyo3(signature = (callback, *args, context=None))]
    fn call_soon<'py>(
        slf: &Bound<'py, Self>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Handle>> {
        LoopCore::call_soon_impl(slf, callback, args, context)
    }

    /// `call_soon` from any thread: wakes the loop; returns the Handle.
    #[pyo3(signature = (callback, *args, context=None))]
    fn call_soon_threadsafe<'py>(
        slf: &Bound<'py, Self>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Handle>> {
        LoopCore::call_soon_threadsafe_impl(slf, callback, args, context)
    }

    /// Schedules `callback(*args)` `delay` seconds from now (never
    /// earlier); returns its TimerHandle.
    #[pyo3(signature = (delay, callback, *args, context=None))]
    fn call_later<'py>(
        slf: &Bound<'py, Self>,
        delay: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, TimerHandle>> {
        LoopCore::call_later_impl(slf, delay, callback, args, context)
    }

    /// Schedules `callback(*args)` at loop time `when` (never earlier);
    /// returns its TimerHandle.
    #[pyo3(signature = (when, callback, *args, context=None))]
    fn call_at<'py>(
        slf: &Bound<'py, Self>,
        when: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, TimerHandle>> {
        LoopCore::call_at_impl(slf, when, callback, args, context)
    }

    /// BaseEventLoop's `_stopping` flag: `stop()` sets it, `run_forever`
    /// clears it; the iterations read it natively.
    #[getter(_stopping)]
    fn get_stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    #[setter(_stopping)]
    fn set_stopping(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.stopping.store(value.is_truthy()?, Relaxed);
        Ok(())
    }

    /// The loop's clock (`time.monotonic()`'s), in seconds.
    fn time(&self) -> f64 {
        to_seconds(Engine::now_ns())
    }

    /// Calls `callback(*args)` whenever `fd` is readable (level-triggered);
    /// replaces (cancels) its reader.
    #[pyo3(signature = (fd, callback, *args))]
    fn _add_reader<'py>(
        slf: &Bound<'py, Self>,
        fd: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Handle>> {
        LoopCore::add_io(slf, fd, callback, args, false)
    }

    /// Removes (cancels) `fd`'s reader: True if it had one.
    fn _remove_reader(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        LoopCore::remove_io(slf, fd, false)
    }

    /// Calls `callback(*args)` whenever `fd` is writable (level-triggered);
    /// replaces (cancels) its writer.
    #[pyo3(signature = (fd, callback, *args))]
    fn _add_writer<'py>(
        slf: &Bound<'py, Self>,
        fd: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Handle>> {
        LoopCore::add_io(slf, fd, callback, args, true)
    }

    /// Removes (cancels) `fd`'s writer: True if it had one.
    fn _remove_writer(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        LoopCore::remove_io(slf, fd, true)
    }

    /// True if `fd` has a reader.
    fn _has_reader(&self, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.engine.has_reader(fileobj_to_fd(fd)?))
    }

    /// True if `fd` has a writer.
    fn _has_writer(&self, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.engine.has_writer(fileobj_to_fd(fd)?))
    }

    /// One iteration (`BaseEventLoop._run_once`): waits for I/O or the next
    /// timer (not past `deadline`, a loop time; no wait if `_stopping` or
    /// handles are ready), then runs the handles ready when it began (at most
    /// `max_callbacks`). Returns how many ran. KeyboardInterrupt / SystemExit
    /// (from a callback or a signal handler) come out of it; the handles not
    /// run keep their place.
    #[pyo3(signature = (deadline=None, max_callbacks=None))]
    fn _run_once(
        slf: &Bound<'_, Self>,
        deadline: Option<f64>,
        max_callbacks: Option<usize>,
    ) -> PyResult<usize> {
        let limits = Limits {
            deadline: deadline.map(to_ns),
            max_callbacks,
            ..Limits::default()
        };
        LoopCore::iteration(slf, limits).map(|(ran, _)| ran)
    }

    /// `BaseEventLoop.run_forever`'s loop (`rtpy.Loop.run_forever` keeps its
    /// bookkeeping around it): iterations until `_stopping` is true after
    /// one, without a Python call per iteration. Signal handlers run between
    /// iterations; what one raises, and KeyboardInterrupt / SystemExit from
    /// a callback, come out of it.
    fn _run_forever(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut busy = 0u32;
        // The first iteration polls I/O whatever the last wait was (a run
        // sees what became ready before it); the others may skip it while
        // callbacks keep them busy (BUSY_POLL).
        let mut limits = Limits::default();
        loop {
            let (ran, parked) = LoopCore::iteration(slf, limits)?;
            limits.busy_poll = Some(BUSY_POLL);
            if LoopCore::stopping(slf)? {
                return Ok(());
            }
            // A busy loop never waits (after which signals are handled).
            // Python callbacks run pending signal handlers themselves (the
            // interpreter's eval breaker); callbacks written in C do not:
            // a pending handler runs here, in an iteration that ran nothing
            // and at least every SIGNAL_CHECK_EVERY busy iterations.
            if parked {
                busy = 0;
            } else {
                busy += 1;
                if ran == 0 || busy >= SIGNAL_CHECK_EVERY {
                    busy = 0;
                    py.check_signals()?;
                }
            }
        }
    }

    /// Makes a waiting `_run_once` return (any thread).
    fn _wake(&self) {
        self.engine.wake();
    }

    /// BaseEventLoop's `_debug` flag (`set_debug` sets it), as a native
    /// attribute: `get_debug` and the core read the same flag.
    #[getter(_debug)]
    fn get_debug_attr(&self) -> bool {
        self.debug()
    }

    #[setter(_debug)]
    fn set_debug_attr(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.debug.store(value.is_truthy()?, Relaxed);
        Ok(())
    }

    /// The debug flag (BaseEventLoop's `get_debug`, without a Python frame:
    /// asyncio's C `Future.__init__` calls it on every future).
    fn get_debug(&self) -> bool {
        self.debug()
    }

    /// `asyncio.Future(loop=self)` (BaseEventLoop's `create_future`,
    /// without a Python frame).
    fn create_future<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let future = FUTURE.get(py)?;
        let kwnames =
            LOOP_KWNAME.get_or_try_init(py, || PyTuple::new(py, ["loop"]).map(Bound::unbind))?;
        let args = [slf.as_ptr()];
        // SAFETY: `future` and every argument are live objects (bound, the
        // GIL held); `args` holds the one keyword argument named by
        // `kwnames` (a tuple of str) and no positional one; the result is a
        // new reference or NULL with an exception set.
        unsafe {
            let out = ffi::PyObject_Vectorcall(future.as_ptr(), args.as_ptr(), 0, kwnames.as_ptr());
            Bound::from_owned_ptr_or_err(py, out)
        }
    }

    /// Closes the engine: every handle it holds is released now; later
    /// scheduling raises `RuntimeError('Event loop is closed')`. Idempotent.
    fn _close_core(&self, py: Python<'_>) {
        if self.closed.swap(true, Relaxed) {
            return;
        }
        let handles = self.engine.close();
        drop(handles);
        self.spare.clear(py);
    }

    /// Runs `func(*args)` on the embedded runtime's blocking pool; returns
    /// an asyncio future (of this loop) that gets its result on the loop's
    /// thread. Cancelling the future before the job starts skips it.
    #[pyo3(signature = (func, *args))]
    fn _run_in_pool<'py>(
        slf: &Bound<'py, Self>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        super::pool::run_in_pool(slf, func, args)
    }

    /// The engine's counters, as a dict.
    fn _core_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        metrics_dict(py, &self.engine)
    }
}

/// The engine's `LoopMetrics` as a dict (`rtpy.Loop.metrics()` makes its
/// dataclass from it).
fn metrics_dict<'py>(py: Python<'py>, engine: &Engine) -> PyResult<Bound<'py, PyDict>> {
    let m = engine.metrics();
    let d = PyDict::new(py);
    d.set_item("iterations", m.iterations)?;
    d.set_item("callbacks_run", m.callbacks_run)?;
    d.set_item("timers_fired", m.timers_fired)?;
    d.set_item("timers_pending", m.timers_pending)?;
    d.set_item("io_events", m.io_events)?;
    d.set_item("readers", m.readers)?;
    d.set_item("writers", m.writers)?;
    d.set_item("ready_len", m.ready_len)?;
    d.set_item("parked_ns", m.parked_ns)?;
    d.set_item("threadsafe_calls", m.threadsafe_calls)?;
    d.set_item("runtime_runs", m.runtime_runs)?;
    d.set_item("runtime_tasks_polled", m.runtime_tasks_polled)?;
    d.set_item("runtime_alive_tasks", m.runtime_alive_tasks)?;
    d.set_item("runtime_blocking_threads", m.runtime_blocking_threads)?;
    d.set_item(
        "runtime_idle_blocking_threads",
        m.runtime_idle_blocking_threads,
    )?;
    d.set_item(
        "runtime_blocking_queue_depth",
        m.runtime_blocking_queue_depth,
    )?;
    Ok(d)
}
