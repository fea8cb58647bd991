//! `rtpy._rtpy`: the native half of the `rtpy` package, a thin translation
//! of `rt_core::callback` (the services the C API offers, callback-driven)
//! into Python: types, errors, ownership and the GIL.
//!
//! The GIL rules: every call that may wait (a shutdown, a join, a host run,
//! a timer or watch stop) releases the GIL while it waits; a callback takes
//! it (`Python::attach`) only to call Python, and skips the call if the
//! interpreter is finalizing. Python objects held by callbacks may be
//! released on any thread (pyo3 defers a release made without the GIL).
//! An exception a callback raises goes to its future or to the runtime's
//! exception handler: it never unwinds into a runtime thread.

mod call;
mod errors;
mod escape;
mod event_loop;
mod fast_method;
mod gil;
mod host;
mod in_flight;
mod interrupt;
mod queue;
mod runtime;
mod tasks;
mod timers;
mod transport;
mod watch;

use pyo3::prelude::*;

/// The native module `rtpy._rtpy` (see `rtpy/_rtpy.pyi`).
///
/// Its GIL-only cells (`GilCell`, `GilBound`) need the GIL: the module says
/// it uses it (`gil_used`), so a free-threaded CPython enables the GIL when
/// loading it, and the import is refused if `PYTHON_GIL=0` kept it off.
#[pymodule(gil_used = true)]
fn _rtpy(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    if let Some(enabled) = py.import("sys")?.getattr_opt("_is_gil_enabled")? {
        if !enabled.call0()?.is_truthy()? {
            return Err(pyo3::exceptions::PyImportError::new_err(
                "rtpy needs the GIL: run a free-threaded Python without PYTHON_GIL=0",
            ));
        }
    }
    in_flight::init();
    runtime::init();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("READABLE", rt_core::callback::READABLE)?;
    m.add("WRITABLE", rt_core::callback::WRITABLE)?;
    m.add("HUP", rt_core::callback::HUP)?;
    m.add("ERROR", rt_core::callback::ERROR)?;
    m.add("ShutdownError", py.get_type::<errors::ShutdownError>())?;
    m.add("DeadlockError", py.get_type::<errors::DeadlockError>())?;
    m.add_class::<runtime::Runtime>()?;
    m.add_class::<tasks::Task>()?;
    m.add_class::<queue::Queue>()?;
    m.add_class::<timers::Timer>()?;
    m.add_class::<watch::Watch>()?;
    m.add_class::<transport::SocketTransportCore>()?;
    transport::fast_write::install(&py.get_type::<transport::SocketTransportCore>())?;
    m.add_class::<transport::ReadyCall>()?;
    m.add_class::<event_loop::core::LoopCore>()?;
    event_loop::fastcall::install(&py.get_type::<event_loop::core::LoopCore>())?;
    m.add_class::<event_loop::handle::Handle>()?;
    m.add_class::<event_loop::handle::TimerHandle>()?;
    event_loop::sock::register(m)?;
    event_loop::pool::register(m)?;
    m.add_function(wrap_pyfunction!(runtime::_shutdown_all, m)?)?;
    Ok(())
}
