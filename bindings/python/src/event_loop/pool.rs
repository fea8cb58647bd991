//! `LoopCore._run_in_pool`: `run_in_executor(None, ...)` on the embedded
//! runtime's blocking pool. The job runs `func(*args)` on a pool thread
//! (taking the GIL there, as every runtime thread does: `gil::attach`),
//! then hands the outcome to the loop's thread through
//! `call_soon_threadsafe`, where the asyncio future gets it (a cancelled
//! future is left alone). Cancelling the future before the job starts
//! aborts the job.

use super::core::{closed_error, LoopCore};
use crate::errors::os_error;
use crate::in_flight::InFlight;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

/// Pool jobs spawned and not yet finished or dropped unrun (each counted
/// by a guard in the job's closure: dropped when the job ends, or when it
/// is dropped unrun).
pub(crate) static JOBS: InFlight = InFlight::new();

/// Waits, with the GIL released, until every pool job of every loop has
/// ended (`_shutdown_all`, before the interpreter finalizes).
pub(crate) fn wait_jobs_at_exit(py: Python<'_>) {
    JOBS.wait_idle(py, None);
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
    let count = JOBS.enter();
    let job = move || {
        let _count = count;
        let _ = crate::gil::attach(|py| {
            let (ok, value) = match job_func.bind(py).call1(job_args.bind(py)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
            };
            drop((job_func, job_args));
            let the_loop = job_loop.bind(py);
            // A cancelled future takes no result, and a closed loop no call
            // (asyncio's `_call_set_state` returns early the same way).
            let cancelled = job_fut
                .bind(py)
                .call_method0("cancelled")
                .and_then(|c| c.is_truthy())
                .unwrap_or(false);
            if cancelled || the_loop.get().is_closed() {
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
