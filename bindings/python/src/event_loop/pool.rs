//! `LoopCore._run_in_pool`: `run_in_executor(None, ...)` on the embedded
//! runtime's blocking pool. The job runs `func(*args)` on a pool thread
//! (taking the GIL there, as every runtime thread does: `gil::attach`),
//! then hands the outcome to the loop's thread through
//! `call_soon_threadsafe`, where the asyncio future gets it (a cancelled
//! future is left alone). A future cancelled before its job starts: the
//! job is aborted, and never runs `func` if it starts all the same.
//!
//! Each job is counted from its spawn to its end (or its drop unrun):
//! process-wide ([`JOBS`], which interpreter exit waits for) and per loop
//! (`_pool_idle(loop)`, which `shutdown_default_executor` awaits).

use super::core::{closed_error, LoopCore};
use crate::errors::os_error;
use crate::in_flight::{Entered, InFlight};
use pyo3::exceptions::PyRuntimeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3::{intern, PyTraverseError};
use std::sync::{Arc, Mutex};

/// Pool jobs spawned and not yet finished or dropped unrun (each counted
/// by a guard in the job's closure: dropped when the job ends, or when it
/// is dropped unrun).
pub(crate) static JOBS: InFlight = InFlight::new();

/// Waits, with the GIL released, until every pool job of every loop has
/// ended (`_shutdown_all`, before the interpreter finalizes).
pub(crate) fn wait_jobs_at_exit(py: Python<'_>) {
    crate::in_flight::wait_idle(py, &JOBS, None);
}

/// The pool jobs of one loop that have not ended, and the futures waiting
/// for none to be left.
#[derive(Default)]
struct Jobs {
    count: usize,
    idle: Vec<Py<PyAny>>,
}

/// A loop's [`Jobs`], kept in its `__dict__` (`_pool_jobs`, made by the
/// first job).
#[pyclass(module = "rtpy._rtpy", name = "_PoolJobs", frozen)]
pub struct PoolJobs(Arc<Mutex<Jobs>>);

#[pymethods]
impl PoolJobs {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Waited for, never skipped: a pool thread takes the lock without
        // the GIL (`JobCount`'s drop), so a lock busy in one pass of a
        // collection and free in the next would make the passes disagree
        // (a future counted as referenced, then not visited: cleared while
        // still in use). No holder waits for the GIL, nor runs Python code.
        for fut in &lock(&self.0).idle {
            visit.call(fut)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        // Released after the lock: a future's finalizer may run Python.
        let idle = std::mem::take(&mut lock(&self.0).idle);
        drop(idle);
    }
}

/// `the_loop`'s [`Jobs`] (made on the first use).
fn loop_jobs(the_loop: &Bound<'_, LoopCore>) -> PyResult<Arc<Mutex<Jobs>>> {
    let py = the_loop.py();
    let name = intern!(py, "_pool_jobs");
    if let Some(jobs) = the_loop.getattr_opt(name)? {
        if let Ok(jobs) = jobs.cast::<PoolJobs>() {
            return Ok(jobs.get().0.clone());
        }
    }
    let jobs = Arc::new(Mutex::new(Jobs::default()));
    the_loop.setattr(name, PoolJobs(jobs.clone()))?;
    Ok(jobs)
}

/// Locks `jobs` (a job that panicked holding it cannot have left it
/// inconsistent: every change under the lock is a single step).
fn lock(jobs: &Mutex<Jobs>) -> std::sync::MutexGuard<'_, Jobs> {
    jobs.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts one job of a loop, and process-wide, from its spawn until it is
/// dropped (it lives in the job's closure: dropped when the job ends, or
/// when it is dropped unrun). The last one wakes the loop's waiters.
struct JobCount {
    jobs: Arc<Mutex<Jobs>>,
    _all: Entered<'static>,
}

impl JobCount {
    fn new(jobs: Arc<Mutex<Jobs>>) -> JobCount {
        lock(&jobs).count += 1;
        JobCount {
            jobs,
            _all: JOBS.track(),
        }
    }
}

impl Drop for JobCount {
    fn drop(&mut self) {
        let idle = {
            let mut jobs = lock(&self.jobs);
            jobs.count = jobs.count.saturating_sub(1);
            if jobs.count != 0 || jobs.idle.is_empty() {
                return;
            }
            std::mem::take(&mut jobs.idle)
        };
        // Any thread (a pool thread when the job ends there): each waiter
        // completed on its loop's thread.
        let _ = crate::gil::attach(|py| {
            for fut in idle {
                let fut = fut.bind(py);
                let sent = pool_set_fn(py).and_then(|set| {
                    fut.call_method0(intern!(py, "get_loop"))?.call_method1(
                        intern!(py, "call_soon_threadsafe"),
                        (set, fut, true, py.None()),
                    )
                });
                // A loop closed meanwhile: nobody waits any more.
                if let Err(e) = sent {
                    if !e.is_instance_of::<PyRuntimeError>(py) {
                        e.write_unraisable(py, Some(fut));
                    }
                }
            }
        });
    }
}

/// `_pool_idle(loop)`: a future of `loop` done once every pool job it has
/// counted so far has ended (done at once when none is under way).
#[pyfunction]
fn _pool_idle<'py>(the_loop: &Bound<'py, LoopCore>) -> PyResult<Bound<'py, PyAny>> {
    let py = the_loop.py();
    let jobs = loop_jobs(the_loop)?;
    let fut = the_loop.call_method0(intern!(py, "create_future"))?;
    let mut state = lock(&jobs);
    if state.count == 0 {
        drop(state);
        fut.call_method1(intern!(py, "set_result"), (py.None(),))?;
    } else {
        state.idle.push(fut.clone().unbind());
    }
    Ok(fut)
}

/// Adds `_pool_idle` and `_PoolJobs` to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PoolJobs>()?;
    m.add_function(wrap_pyfunction!(_pool_idle, m)?)?;
    Ok(())
}

/// Sets the outcome of a pool job on its future, on the loop's thread
/// (asyncio's `_copy_future_state` for a result or an exception, with
/// its `_convert_future_exc`). A
/// cancelled future is left alone; an exception the future refuses
/// (`StopIteration`: `TypeError`) is replaced by that refusal, so the
/// future always completes.
#[pyfunction]
fn pool_set(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("cancelled")?.is_truthy()? {
        return Ok(());
    }
    if ok {
        fut.call_method1("set_result", (value,))?;
        return Ok(());
    }
    // concurrent.futures' CancelledError / TimeoutError / InvalidStateError
    // become asyncio's, as `wrap_future` converts them.
    let value = super::CONVERT_FUTURE_EXC.get(fut.py())?.call1((value,))?;
    if let Err(refused) = fut.call_method1("set_exception", (value,)) {
        fut.call_method1("set_exception", (refused.into_value(fut.py()),))?;
    }
    Ok(())
}

static POOL_SET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The function `pool_set`, made once.
fn pool_set_fn(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    POOL_SET
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(wrap_pyfunction!(pool_set, py)?.into_any().unbind())
        })
        .map(|f| f.bind(py))
}

/// `_run_in_pool(func, *args)`: see the module's doc.
pub(crate) fn run_in_pool<'py>(
    slf: &Bound<'py, LoopCore>,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let core = slf.get();
    if core.is_closed() {
        return Err(closed_error());
    }
    let runtime = core.engine().runtime().map_err(|_| closed_error())?;
    let setter = pool_set_fn(py)?.clone().unbind();
    let fut = slf.call_method0("create_future")?;
    let job_fut = fut.clone().unbind();
    let job_loop = slf.clone().unbind();
    let job_func = func.clone().unbind();
    let job_args = args.clone().unbind();
    let count = JobCount::new(loop_jobs(slf)?);
    let job = move || {
        let _count = count;
        let _ = crate::gil::attach(|py| {
            if is_cancelled(job_fut.bind(py)) {
                // Cancelled before it started (the abort came too late).
                return;
            }
            let (ok, value) = match job_func.bind(py).call1(job_args.bind(py)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
            };
            drop((job_func, job_args));
            let the_loop = job_loop.bind(py);
            // A cancelled future takes no result, and a closed loop no call
            // (asyncio's `_call_set_state` returns early the same way).
            if is_cancelled(job_fut.bind(py)) || the_loop.get().is_closed() {
                return;
            }
            let sent = the_loop.call_method1("call_soon_threadsafe", (setter, job_fut, ok, value));
            if let Err(e) = sent {
                // A loop closed meanwhile takes no result (as asyncio's
                // executor callback finds it).
                if !e.is_instance_of::<PyRuntimeError>(py) {
                    e.write_unraisable(py, Some(the_loop));
                }
            }
        });
    };
    let join = runtime
        .try_spawn_blocking(job)
        .map_err(|(e, _job)| os_error(&e))?;
    let abort = join.abort_handle();
    drop(join);
    // Cancelled before the job starts: the job never runs.
    let on_done = PyCFunction::new_closure(
        py,
        None,
        None,
        move |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            if args.get_item(0)?.call_method0("cancelled")?.is_truthy()? {
                abort.abort();
            }
            Ok(())
        },
    )?;
    fut.call_method1("add_done_callback", (on_done,))?;
    Ok(fut)
}

/// `fut.cancelled()` (false if it fails).
fn is_cancelled(fut: &Bound<'_, PyAny>) -> bool {
    fut.call_method0("cancelled")
        .and_then(|c| c.is_truthy())
        .unwrap_or(false)
}
