//! Host-driven mode of a current-thread runtime (a game's frame loop):
//! `Runtime.run`, `run_budget`, `stop`, `wake`, `backend_fd`,
//! `backend_timeout`.

use crate::call::{calls_made, Int};
use crate::errors::to_py;
use crate::escape::hosted;
use crate::interrupt::Chain;
use crate::runtime::{duration, Runtime};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rt_core::runtime::{RunMode, RuntimeFlavor};

/// `ValueError` unless the runtime is a current-thread one;
/// `ShutdownError` in a child forked after it was created (its reactor's
/// epoll set and eventfd are shared with the parent: a run there would
/// take the parent's events).
fn check_flavor(rt: &Runtime, what: &str) -> PyResult<()> {
    if rt.inner.forked() {
        return Err(crate::errors::shutdown_error());
    }
    if rt.core().flavor() != RuntimeFlavor::CurrentThread {
        return Err(PyValueError::new_err(format!(
            "{what} needs a current_thread runtime (a multi_thread runtime's workers run everything)"
        )));
    }
    Ok(())
}

/// Python callbacks this thread called since `before`.
fn calls_since(before: u64) -> usize {
    usize::try_from(calls_made().wrapping_sub(before)).unwrap_or(usize::MAX)
}

pub(crate) fn run(rt: &Runtime, py: Python<'_>, mode: &str) -> PyResult<usize> {
    let mode = match mode {
        "default" => RunMode::Default,
        "once" => RunMode::Once,
        "nowait" => RunMode::NoWait,
        other => {
            return Err(PyValueError::new_err(format!(
                "mode must be \"default\", \"once\" or \"nowait\", not {other:?}"
            )))
        }
    };
    check_flavor(rt, "run()")?;
    let core = rt.core();
    // Python callbacks called, not the layer's count (which includes final
    // calls that call no Python, such as a cancelled task's).
    let before = calls_made();
    let handle = core.handle().map_err(|e| to_py(e, "run"))?;
    if mode == RunMode::NoWait {
        hosted(Some(handle), || py.detach(|| core.run(mode)))?.map_err(|e| to_py(e, "run"))?;
        return Ok(calls_since(before));
    }
    // A blocking run: Ctrl-C must end it (see interrupt.rs).
    let chain = Chain::install(handle);
    loop {
        hosted(Some(handle), || py.detach(|| core.run(mode)))?.map_err(|e| to_py(e, "run"))?;
        if !chain.take_interrupted() {
            return Ok(calls_since(before));
        }
        // Runs the Python signal handlers: raises KeyboardInterrupt (or what
        // the handler raises).
        py.check_signals()?;
        if mode == RunMode::Once {
            return Ok(calls_since(before));
        }
        // The handlers did not raise: the default run goes on.
    }
}

pub(crate) fn run_budget(
    rt: &Runtime,
    py: Python<'_>,
    seconds: f64,
    max_callbacks: Option<Int>,
) -> PyResult<usize> {
    let budget = duration(seconds, "seconds")?;
    let max = match max_callbacks.map(|n| n.0) {
        None => usize::MAX,
        Some(n) if n < 0 => {
            return Err(PyValueError::new_err(format!(
                "max_callbacks must be >= 0, not {n}"
            )))
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    check_flavor(rt, "run_budget()")?;
    let before = calls_made();
    let core = rt.core();
    let handle = core.handle().map_err(|e| to_py(e, "run_budget"))?;
    hosted(Some(handle), || py.detach(|| core.run_budget(budget, max)))?
        .map_err(|e| to_py(e, "run_budget"))?;
    Ok(calls_since(before))
}

pub(crate) fn stop(rt: &Runtime) -> PyResult<()> {
    check_flavor(rt, "stop()")?;
    rt.core().stop().map_err(|e| to_py(e, "stop"))
}

pub(crate) fn wake(rt: &Runtime) -> PyResult<()> {
    check_flavor(rt, "wake()")?;
    rt.core().wake().map_err(|e| to_py(e, "wake"))
}

pub(crate) fn backend_fd(rt: &Runtime) -> PyResult<i32> {
    check_flavor(rt, "backend_fd()")?;
    rt.core().backend_fd().map_err(|e| to_py(e, "backend_fd"))
}

pub(crate) fn backend_timeout(rt: &Runtime) -> PyResult<Option<f64>> {
    check_flavor(rt, "backend_timeout()")?;
    rt.core()
        .backend_timeout()
        .map(|t| t.map(|d| d.as_secs_f64()))
        .map_err(|e| to_py(e, "backend_timeout"))
}
