//! `Runtime.spawn` / `Runtime.run_blocking`: a Python call as a callback
//! task or blocking work, its outcome in an `rtpy.Future`; `rtpy._rtpy.Task`,
//! the handle a future's `cancel()` aborts.

use crate::call::{PyCall, Reporter, Seconds};
use crate::errors::to_py;
use crate::runtime::Runtime;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use rt_core::callback::Entered;
use rt_core::callback::{Error, OnceCallback, Status, TaskHandle};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A new `rtpy.Future` (a `concurrent.futures.Future` whose `cancel()`
/// aborts the task first).
fn new_future<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    static FUTURE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    FUTURE.import(py, "rtpy._types", "Future")?.call0()
}

/// A future's outcome: `fut.set_result(v)` / `fut.set_exception(e)` after
/// `fut.set_running_or_notify_cancel()` said it may run.
struct Outcome {
    fut: Py<PyAny>,
    reporter: Arc<Reporter>,
}

impl Outcome {
    /// Claims the future, runs `call` and stores what it returned or
    /// raised. A failure of the future itself (set by someone else) goes
    /// to the reporter. `running`: the call was entered before the shutdown
    /// began (`Reporter::enter`); None: the future is cancelled instead.
    fn run(&self, py: Python<'_>, call: &PyCall, running: Option<Entered<'_>>) {
        if running.is_none() {
            return self.cancel(py);
        }
        let fut = self.fut.bind(py);
        let stored = (|| -> PyResult<()> {
            if !fut
                .call_method0(intern!(py, "set_running_or_notify_cancel"))?
                .is_truthy()?
            {
                return Ok(());
            }
            match call.call(py) {
                Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,))?,
                Err(e) => {
                    let stored = fut.call_method1(intern!(py, "set_exception"), (e.value(py),));
                    // KeyboardInterrupt / SystemExit also end the host's
                    // run this call is part of (and come out of it).
                    crate::escape::escape(py, &e);
                    stored?
                }
            };
            Ok(())
        })();
        if let Err(e) = stored {
            self.reporter.report(
                py,
                e,
                "Exception while completing an rtpy.Future",
                call.func(py),
            );
        }
    }

    /// The task never ran: the future is cancelled (and its waiters told).
    fn cancel(&self, py: Python<'_>) {
        let fut = self.fut.bind(py);
        if let Err(e) = fut.call_method0(intern!(py, "_rt_set_cancelled")) {
            self.reporter
                .report(py, e, "Exception while cancelling an rtpy.Future", fut);
        }
    }
}

/// What a task runs, shared by its callback and its `Task`: taken out by
/// whichever comes first (the call, its final `Cancelled` call, or a
/// successful abort), so the Python references are released promptly and
/// with the GIL, and the future is completed exactly once.
type Job = Arc<Mutex<Option<(PyCall, Outcome)>>>;

fn take_job(job: &Job) -> Option<(PyCall, Outcome)> {
    job.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The callback of `spawn`: the call on a runtime thread, or the future's
/// cancellation.
struct SpawnCall(Job, Arc<Reporter>);

impl OnceCallback for SpawnCall {
    fn call(self, status: Status) {
        let running = self.1.enter_if_ok(status);
        // No GIL while the interpreter exits: nothing to call then.
        let _ = crate::gil::attach(|py| {
            if let Some((call, outcome)) = take_job(&self.0) {
                match status {
                    Status::Ok => outcome.run(py, &call, running),
                    Status::Cancelled => outcome.cancel(py),
                }
            }
        });
    }
}

/// `done` of `run_blocking`: the work stored the outcome itself; a work
/// that never ran has its future cancelled.
struct BlockingDone(Job);

impl OnceCallback for BlockingDone {
    fn call(self, status: Status) {
        if status == Status::Cancelled {
            let _ = crate::gil::attach(|py| {
                if let Some((_call, outcome)) = take_job(&self.0) {
                    outcome.cancel(py);
                }
            });
        }
    }
}

/// Attaches the task handle to the future (`_rt_task`, what `cancel()`
/// aborts).
fn attach_task(
    py: Python<'_>,
    fut: &Bound<'_, PyAny>,
    handle: TaskHandle,
    job: Job,
    runs_on: usize,
) -> PyResult<()> {
    let task = Py::new(
        py,
        Task {
            handle,
            job,
            runs_on,
        },
    )?;
    fut.setattr(intern!(py, "_rt_task"), task)
}

/// A new job for `func(*args)` and its future.
fn new_job<'py>(
    rt: &Runtime,
    py: Python<'py>,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<(Job, Bound<'py, PyAny>)> {
    let call = PyCall::new(func, args)?;
    rt.check_live()?;
    let fut = new_future(py)?;
    let outcome = Outcome {
        fut: fut.clone().unbind(),
        reporter: rt.reporter().clone(),
    };
    Ok((Arc::new(Mutex::new(Some((call, outcome)))), fut))
}

pub(crate) fn spawn<'py>(
    rt: &Runtime,
    py: Python<'py>,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let (job, fut) = new_job(rt, py, func, args)?;
    let core = rt.core();
    // The GIL stays held: a worker cannot start the call (it needs the
    // GIL) before the handle is attached to the future.
    let handle = core
        .spawn(SpawnCall(job.clone(), rt.reporter().clone()), true)
        .map_err(|e| to_py(e, "spawn"))?;
    if let Some(handle) = handle {
        // The runtime's handle, by address: waiting for the call on the
        // thread that runs that runtime would wait for itself.
        let runs_on = core
            .handle()
            .map_or(0, |h| h as *const rt_core::runtime::Handle as usize);
        attach_task(py, &fut, handle, job, runs_on)?;
    }
    Ok(fut)
}

pub(crate) fn run_blocking<'py>(
    rt: &Runtime,
    py: Python<'py>,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let (job, fut) = new_job(rt, py, func, args)?;
    let work = job.clone();
    let reporter = rt.reporter().clone();
    let handle = rt
        .core()
        .spawn_blocking(
            move || {
                let running = reporter.calls.enter();
                let _ = crate::gil::attach(|py| {
                    if let Some((call, outcome)) = take_job(&work) {
                        outcome.run(py, &call, running);
                    }
                });
            },
            BlockingDone(job.clone()),
        )
        .map_err(|e| to_py(e, "run_blocking"))?;
    // On the blocking pool: any thread may wait for it.
    attach_task(py, &fut, handle, job, 0)?;
    Ok(fut)
}

/// The task behind an `rtpy.Future` (its `_rt_task`).
#[pyclass(module = "rtpy._rtpy", name = "Task", frozen)]
pub struct Task {
    handle: TaskHandle,
    job: Job,
    /// The address of the handle of the runtime whose threads run the call
    /// (a spawned call), 0 for blocking work.
    runs_on: usize,
}

#[pymethods]
impl Task {
    /// Aborts the task if it has not started: True if that took effect (the
    /// call never runs; its future is cancelled and its references
    /// released now), False if it already started or finished.
    fn abort(&self, py: Python<'_>) -> PyResult<bool> {
        match self.handle.abort() {
            Ok(()) => {
                if let Some((call, outcome)) = take_job(&self.job) {
                    outcome.cancel(py);
                    drop((call, outcome));
                }
                Ok(true)
            }
            Err(Error::Already) => Ok(false),
            Err(e) => Err(to_py(e, "abort")),
        }
    }

    /// True if waiting for the task here could never end: it is a call
    /// spawned on the current-thread runtime that this thread is running
    /// right now (inside `run` / `run_budget`: a callback waits), and it has
    /// not finished. `rtpy.Future.result()` refuses then (`DeadlockError`).
    fn _waits_for_itself(&self) -> bool {
        self.runs_on != 0 && crate::escape::runs_here(self.runs_on) && !self.handle.is_finished()
    }

    /// True once the task's final call returned.
    fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits (GIL released) until the task finished, at most `timeout`
    /// seconds (None: no limit). `TimeoutError`; `DeadlockError` on a
    /// runtime thread or inside a callback. Python's signal handlers run
    /// while it waits (Ctrl-C raises `KeyboardInterrupt`).
    #[pyo3(signature = (timeout = None))]
    fn join(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<()> {
        let timeout = timeout
            .map(|t| crate::runtime::duration(t.0, "timeout"))
            .transpose()?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // In slices, so pending signals are handled between them.
        const SLICE: Duration = Duration::from_millis(50);
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            match py.detach(|| self.handle.join(Some(slice))) {
                Err(Error::TimedOut) if deadline.is_none_or(|d| Instant::now() < d) => {
                    py.check_signals()?
                }
                outcome => return outcome.map_err(|e| to_py(e, "join")),
            }
        }
    }
}
