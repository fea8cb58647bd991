//! `_rtpy.LoopCore`, `_rtpy.Handle`, `_rtpy.TimerHandle`: the native half of
//! `rtpy.Loop`, a thin translation of `rt_core::event_loop::EventLoop` into
//! asyncio's terms (the stdlib's `base_events.py`, `events.py` and
//! `selector_events.py` of Python 3.9-3.13 are the spec).
//!
//! - [`handle`]: the handles (`Handle`, `TimerHandle`) and [`Item`], the
//!   engine's handle type (a reference to a `Handle`);
//! - [`gil_cell`]: the GIL-only cells of the frozen handle classes;
//! - [`context`]: `contextvars` at C speed (copy, run in);
//! - [`run`]: running a handle (`Context.run`, the exception handler, debug
//!   mode's bookkeeping) and the engine's [`Runner`](rt_core::event_loop::Runner)
//!   (the GIL is released only around the wait);
//! - [`core`]: `LoopCore`, the scheduling methods `rtpy.Loop` inherits;
//! - [`fastcall`]: `LoopCore.call_soon` as a hand-written vectorcall method;
//! - [`pool`]: `_run_in_pool`, the embedded runtime's blocking pool;
//! - [`untracked`]: scheduled handles the garbage collector does not track
//!   while only their loop holds them;
//! - [`spare`]: run handles nothing else holds, kept by their loop for its
//!   next `call_soon`;
//! - [`sock`]: the native fast paths of `sock_recv` / `sock_recv_into` /
//!   `sock_sendall`.
//!
//! The GIL is held by the loop's thread for a whole iteration: handles are
//! created, run and dropped with it; only the wait in epoll lets it go.

pub(crate) mod context;
pub(crate) mod core;
pub(crate) mod fastcall;
pub(crate) mod gil_cell;
pub(crate) mod handle;
pub(crate) mod pool;
pub(crate) mod run;
pub(crate) mod sock;
pub(crate) mod spare;
pub(crate) mod untracked;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The engine, over our handles.
pub(crate) type Engine = rt_core::event_loop::EventLoop<handle::Item>;

/// A Python object this module uses on every call, looked up once.
pub(crate) struct Cached(PyOnceLock<Py<PyAny>>, &'static str, &'static str);

impl Cached {
    /// `module.attr` (dotted attributes allowed: `"Context.run"`).
    pub(crate) const fn new(module: &'static str, attr: &'static str) -> Cached {
        Cached(PyOnceLock::new(), module, attr)
    }

    /// The object (imported on the first use).
    pub(crate) fn get<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyAny>> {
        self.0
            .get_or_try_init(py, || {
                let mut obj = py.import(self.1)?.into_any();
                for part in self.2.split('.') {
                    obj = obj.getattr(part)?;
                }
                Ok(obj.unbind())
            })
            .map(|o| o.bind(py))
    }
}

/// `asyncio.format_helpers._format_callback_source`.
pub(crate) static FORMAT_CALLBACK_SOURCE: Cached =
    Cached::new("asyncio.format_helpers", "_format_callback_source");
/// `asyncio.format_helpers.extract_stack`.
pub(crate) static EXTRACT_STACK: Cached = Cached::new("asyncio.format_helpers", "extract_stack");
/// `sys._getframe`.
pub(crate) static GETFRAME: Cached = Cached::new("sys", "_getframe");
/// `asyncio.coroutines.iscoroutine`.
pub(crate) static ISCOROUTINE: Cached = Cached::new("asyncio.coroutines", "iscoroutine");
/// `asyncio.coroutines.iscoroutinefunction`.
pub(crate) static ISCOROUTINEFUNCTION: Cached =
    Cached::new("asyncio.coroutines", "iscoroutinefunction");
/// `asyncio.base_events._format_handle`.
pub(crate) static FORMAT_HANDLE: Cached = Cached::new("asyncio.base_events", "_format_handle");
/// `asyncio.futures._convert_future_exc`.
pub(crate) static CONVERT_FUTURE_EXC: Cached =
    Cached::new("asyncio.futures", "_convert_future_exc");
/// `asyncio.futures.Future` (the C `_asyncio.Future` when it exists).
pub(crate) static FUTURE: Cached = Cached::new("asyncio.futures", "Future");
/// `asyncio.log.logger` (the `asyncio` logger).
pub(crate) static LOGGER: Cached = Cached::new("asyncio.log", "logger");

/// True on Python 3.13+ (`_format_callback_source` takes `debug=`).
pub(crate) fn py313(py: Python<'_>) -> bool {
    py.version_info() >= (3, 13)
}

/// `_format_callback_source(callback, args)` as the running Python's
/// `Handle` calls it (3.13+: with `debug=loop.get_debug()`).
pub(crate) fn format_callback_source<'py>(
    py: Python<'py>,
    callback: &Bound<'py, PyAny>,
    args: &Bound<'py, PyAny>,
    the_loop: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let format = FORMAT_CALLBACK_SOURCE.get(py)?;
    if py313(py) {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("debug", the_loop.call_method0("get_debug")?)?;
        format.call((callback, args), Some(&kwargs))
    } else {
        format.call1((callback, args))
    }
}
