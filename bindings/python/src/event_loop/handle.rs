//! `_rtpy.Handle` and `_rtpy.TimerHandle`: asyncio's `events.Handle` and
//! `events.TimerHandle` (same attributes, `repr`, `cancel`, ordering), and
//! [`Item`], the engine's reference to one.
//!
//! A handle stores its callback and its argument tuple (the one the call
//! made: no copy), run inside its context (see `run.rs`). The classes are
//! frozen: the fields that change (the call, the `repr` kept by a cancel in
//! debug mode, a timer's key) are [`GilCell`]s, and `cancelled` is an atomic
//! the engine reads without the GIL.

use super::gil_cell::{Call, GilCell};
use super::{untracked, EXTRACT_STACK, GETFRAME};
use pyo3::basic::CompareOp;
use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use pyo3::PyTraverseError;
use rt_core::event_loop::{LoopHandle, TimerKey};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The engine's handle: a reference to a `Handle` (or `TimerHandle`).
///
/// Its drop tracks the handle for the garbage collector if something else
/// still holds it (see `untracked.rs`).
pub(crate) struct Item(pub(crate) Py<Handle>);

impl Item {
    /// The reference, without the drop's check (the runner makes it after
    /// the run: [`untracked::track_if_shared`]).
    pub(crate) fn into_inner(self) -> Py<Handle> {
        let item = std::mem::ManuallyDrop::new(self);
        // SAFETY: `item` is never used or dropped again: the reference is
        // moved out exactly once.
        unsafe { std::ptr::read(&item.0) }
    }

    /// Visits what the handle holds for the loop's `__traverse__`: a
    /// tracked handle as an object; an untracked one through its fields if
    /// the engine's reference is its only one, else not at all (see
    /// `untracked.rs` for why this is sound).
    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        let p = self.0.as_ptr();
        // SAFETY: `p` is live (the engine's reference); a traversal runs
        // with the GIL held and reads a flag and a count, no Python code.
        let (tracked, refs) = unsafe { (ffi::PyObject_GC_IsTracked(p) != 0, ffi::Py_REFCNT(p)) };
        if tracked {
            visit.call(&self.0)
        } else if refs == 1 {
            self.0.get().visit_fields(visit)
        } else {
            Ok(())
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        // The engine lets its reference go (a cancelled handle skipped, a
        // removed reader, a closed loop) with the GIL held (as `clone`).
        Python::attach(|py| untracked::track_if_shared(self.0.bind(py)));
    }
}

impl Clone for Item {
    fn clone(&self) -> Item {
        // SAFETY: the engine clones a reader's or writer's handle only
        // while it holds its state, and rtpy's engine state is guarded by
        // the GIL (`EventLoop::with_outside_lock`, `LoopCore::new`): the
        // thread is attached for the whole call, and the token does not
        // outlive it.
        let py = unsafe { Python::assume_attached() };
        Item(self.0.clone_ref(py))
    }
}

impl LoopHandle for Item {
    fn is_cancelled(&self) -> bool {
        self.0.get().cancelled.load(Relaxed)
    }

    /// The object's cache lines, from the collector's header before it to
    /// the end of a `TimerHandle`: a timer's handle is cold when it fires.
    #[inline]
    fn prefetch(&self) {
        let start = self.0.as_ptr().cast::<u8>().wrapping_sub(GC_HEADER);
        for line in 0..OBJECT_LINES {
            prefetch_line(start.wrapping_add(line * 64));
        }
    }

    /// Its context (a copy made for this handle, as cold as the handle),
    /// callback and arguments (often made for it too: a bound method and
    /// its future, say).
    #[inline]
    fn prefetch_targets(&self) {
        // SAFETY: the engine prefetches only in a batch's run, which rtpy
        // makes from `LoopCore.iteration` with the GIL held (only the wait
        // before it lets the GIL go): the thread is attached for the whole
        // call, and the token does not outlive it. This only reads.
        let py = unsafe { Python::assume_attached() };
        let handle = self.0.get();
        prefetch_line(handle.context.as_ptr(py).cast::<u8>());
        if let Some((callback, args)) = handle.call.call_ptrs(py) {
            prefetch_line(callback.cast::<u8>());
            prefetch_line(args.cast::<u8>());
        }
    }
}

/// CPython's collector header, just before a tracked object.
const GC_HEADER: usize = 2 * std::mem::size_of::<usize>();

/// The 64-byte lines from the collector's header to the end of a
/// `TimerHandle` (about 180 bytes).
const OBJECT_LINES: usize = 3;

/// Asks the CPU to start loading the line holding `p`.
#[inline]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address,
    // and reads nothing the program sees; SSE is part of x86_64's baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// asyncio's `Handle`: a callback with its arguments and context, scheduled
/// on a loop.
#[pyclass(module = "rtpy._rtpy", name = "Handle", subclass, weakref, frozen)]
pub struct Handle {
    /// The callback and its arguments; None once cancelled.
    call: GilCell<Option<Call>>,
    /// The context (None while its loop keeps it for reuse: `spare.rs`).
    context: GilCell<Py<PyAny>>,
    /// Its loop (None while the loop keeps it for reuse: `spare.rs`).
    the_loop: GilCell<Py<PyAny>>,
    cancelled: AtomicBool,
    /// True while the context is untracked by the collector
    /// (`untracked::untrack` untracked it; `retrack_context` ends it).
    context_untracked: AtomicBool,
    /// The `repr` a cancel in debug mode keeps.
    repr: GilCell<Option<Py<PyString>>>,
    /// Debug mode: where it was made (`format_helpers.extract_stack`).
    source_traceback: Option<Py<PyAny>>,
    /// Its index in `untracked.rs`'s list of untracked handles handed to
    /// Python (`untracked::NOT_LISTED`: not in it).
    slot: GilCell<usize>,
    /// True once the contents are written: a Python subclass's instance is
    /// tracked by the collector while `object.__new__` makes its dict
    /// (an allocation, which may start a collection), before pyo3 writes
    /// these fields; its traversal then reads only this flag (false).
    built: AtomicBool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // A context must be tracked when it is freed (CPython's
        // `context_tp_dealloc` unlinks it from the collector's list
        // unchecked): one `untracked::untrack` untracked is tracked again
        // before the handle lets it go.
        if *self.context_untracked.get_mut() {
            // SAFETY: only `untracked::untrack` sets the flag, on a handle
            // that is a Python object; one is dropped by its deallocation,
            // which CPython runs with the GIL held.
            self.retrack_context(unsafe { Python::assume_attached() });
        }
        let slot = *self.slot.get_mut();
        if slot != untracked::NOT_LISTED {
            // SAFETY: a listed handle is a Python object, dropped by its
            // deallocation, which CPython runs with the GIL held; `slot` is
            // its index in the list (kept by `untracked`).
            unsafe { untracked::unlist(Python::assume_attached(), slot) };
        }
    }
}

impl Handle {
    /// A handle for `callback(*args)` in `context` (None: a copy of the
    /// current one), on `the_loop`; in debug mode with its source traceback
    /// (the stack of the Python code that called into the binding).
    pub(crate) fn make(
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        the_loop: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        debug: bool,
    ) -> PyResult<Handle> {
        let context = match context {
            Some(c) if !c.is_none() => c.clone(),
            _ => super::context::copy_current(py)?,
        };
        let source_traceback = if debug { source_traceback(py)? } else { None };
        Ok(Handle {
            call: GilCell::new(Some(Call {
                callback: callback.clone().unbind(),
                args: args.clone().unbind(),
            })),
            context: GilCell::new(context.unbind()),
            the_loop: GilCell::new(the_loop.clone().unbind()),
            cancelled: AtomicBool::new(false),
            context_untracked: AtomicBool::new(false),
            repr: GilCell::new(None),
            source_traceback,
            slot: GilCell::new(untracked::NOT_LISTED),
            built: AtomicBool::new(true),
        })
    }

    /// The callback and its arguments, None once cancelled.
    pub(crate) fn call<'py>(
        &self,
        py: Python<'py>,
    ) -> Option<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        self.call.get_call(py)
    }

    /// The context the callback runs in.
    pub(crate) fn context<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.context.bound(py)
    }

    /// The loop it was made for (`_loop`).
    pub(crate) fn the_loop<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.the_loop.bound(py)
    }

    /// Its source traceback if it has a non-empty one.
    pub(crate) fn source_traceback<'py>(&self, py: Python<'py>) -> Option<&Bound<'py, PyAny>> {
        self.source_traceback
            .as_ref()
            .map(|t| t.bind(py))
            .filter(|t| t.is_truthy().unwrap_or(false))
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }

    /// Whether the loop `the_loop` may keep it for reuse once nothing else
    /// holds it (see `spare.rs`): made for that loop, outside debug mode.
    pub(crate) fn reusable_for(&self, the_loop: &Bound<'_, PyAny>) -> bool {
        self.the_loop.as_ptr(the_loop.py()) == the_loop.as_ptr() && self.source_traceback.is_none()
    }

    /// Resets a handle its loop keeps for reuse (`spare.rs`): off the
    /// untracked list, context tracked again, not cancelled, refers to
    /// nothing (None for its loop and context); returns the callback,
    /// arguments, context, loop and kept `repr` for the caller to release
    /// once the handle is stored (as `Bound`s: their drop is a plain
    /// decref, where a `Py`'s first asks pyo3's thread-local state whether
    /// the thread is attached).
    pub(crate) fn reset<'py>(&self, py: Python<'py>) -> impl Sized + 'py {
        let slot = self.slot.get_copy(py);
        if slot != untracked::NOT_LISTED {
            // SAFETY: the GIL is held and `slot` is the handle's index in
            // the list (kept by `untracked`).
            unsafe { untracked::unlist(py, slot) };
            self.slot.replace(py, untracked::NOT_LISTED);
        }
        self.retrack_context(py);
        self.cancelled.store(false, Relaxed);
        (
            self.call
                .replace(py, None)
                .map(|c| (c.callback.into_bound(py), c.args.into_bound(py))),
            self.context.replace(py, py.None()).into_bound(py),
            self.the_loop.replace(py, py.None()).into_bound(py),
            self.repr.replace(py, None).map(|r| r.into_bound(py)),
        )
    }

    /// Sets up a kept handle (see [`Handle::reset`]) for `callback(*args)`
    /// in `context`, on `the_loop`.
    pub(crate) fn set_up(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Bound<'_, PyAny>,
        the_loop: &Bound<'_, PyAny>,
    ) {
        let call = Call {
            callback: callback.clone().unbind(),
            args: args.clone().unbind(),
        };
        // The old values are None: their release runs no Python code (and,
        // through `drop_ref`, reads no thread-local state).
        let old = self.call.replace(py, Some(call));
        debug_assert!(old.is_none());
        self.context.replace(py, context.unbind()).drop_ref(py);
        self.the_loop
            .replace(py, the_loop.clone().unbind())
            .drop_ref(py);
    }

    /// Sets its index in `untracked.rs`'s list.
    pub(crate) fn set_slot(&self, py: Python<'_>, slot: usize) {
        self.slot.replace(py, slot);
    }

    /// Visits the objects it refers to (its `__traverse__`, and the loop's
    /// for an untracked handle only the engine holds).
    pub(crate) fn visit_fields(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: called from a traversal (see `GilCell::peek`).
        if let Some(call) = unsafe { self.call.peek() } {
            visit.call(&call.callback)?;
            visit.call(&call.args)?;
        }
        let untracked = self.context_untracked.load(Relaxed);
        // SAFETY: called from a traversal (see `GilCell::peek`).
        super::context::visit_owned(unsafe { self.context.peek() }, untracked, visit)?;
        // SAFETY: called from a traversal (see `GilCell::peek`).
        visit.call(unsafe { self.the_loop.peek() })?;
        visit.call(&self.source_traceback)?;
        Ok(())
    }

    /// The context, made visible to Python: tracked by the collector again
    /// if it was untracked (see `untracked.rs`).
    fn context_out(&self, py: Python<'_>) -> Py<PyAny> {
        self.retrack_context(py);
        self.context.bound(py).unbind()
    }

    /// Untracks the context if it is a `contextvars.Context` the collector
    /// tracks and this handle alone holds (see `untracked.rs`, point 4).
    pub(crate) fn untrack_context(&self, py: Python<'_>) {
        let p = self.context.as_ptr(py);
        // SAFETY: `p` is live (this handle's reference); the GIL is held
        // (called by `untracked::untrack`, outside any traversal). An exact
        // `Context` is a GC container that CPython keeps tracked for its
        // whole life (its deallocation unlinks it unchecked); one only this
        // handle holds can have been untracked by this handle only, once:
        // `untrack` runs once per handle.
        unsafe {
            if ffi::PyContext_CheckExact(p) != 0 && ffi::Py_REFCNT(p) == 1 {
                ffi::PyObject_GC_UnTrack(p.cast());
                self.context_untracked.store(true, Relaxed);
            }
        }
    }

    /// Tracks the context again if `untrack_context` untracked it.
    fn retrack_context(&self, py: Python<'_>) {
        // A load and a store rather than a swap (a locked instruction on
        // every handle's drop): the flag changes only with the GIL held.
        if self.context_untracked.load(Relaxed) {
            self.context_untracked.store(false, Relaxed);
            // SAFETY: the context is live (this handle's reference) and
            // untracked (the flag); the GIL is held (handles are used and
            // dropped with it), outside any traversal.
            unsafe { ffi::PyObject_GC_Track(self.context.as_ptr(py).cast()) };
        }
    }

    /// After a run in the context: tracks it again if the run left another
    /// reference to it (see `untracked.rs`, point 4).
    pub(crate) fn context_after_run(&self, py: Python<'_>) {
        // SAFETY: the context is live (this handle's reference); a count.
        if self.context_untracked.load(Relaxed)
            && unsafe { ffi::Py_REFCNT(self.context.as_ptr(py)) } > 1
        {
            self.retrack_context(py);
        }
    }

    /// asyncio's `Handle.cancel` (the part every handle shares): marks it
    /// cancelled, keeps its `repr` in debug mode, releases the call.
    pub(crate) fn cancel_base(slf: &Bound<'_, Handle>) -> PyResult<()> {
        let py = slf.py();
        let h = slf.get();
        if h.cancelled.load(Relaxed) {
            return Ok(());
        }
        h.cancelled.store(true, Relaxed);
        if loop_debug(&h.the_loop(py))? {
            let repr = slf.repr()?;
            drop(h.repr.replace(py, Some(repr.unbind())));
        }
        let call = h.call.replace(py, None);
        drop(call);
        Ok(())
    }
}

/// The stack of the Python code that called into the binding
/// (`format_helpers.extract_stack`), None on a thread with no Python frame
/// (a runtime thread calling `call_soon_threadsafe`).
fn source_traceback(py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
    let frame = match GETFRAME.get(py)?.call1((0,)) {
        Ok(frame) => frame,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(EXTRACT_STACK.get(py)?.call1((frame,))?.unbind()))
}

/// `the_loop.get_debug()` (read from the core for a `LoopCore`).
fn loop_debug(the_loop: &Bound<'_, PyAny>) -> PyResult<bool> {
    match the_loop.cast::<super::core::LoopCore>() {
        Ok(core) => Ok(core.get().debug()),
        Err(_) => the_loop.call_method0("get_debug")?.is_truthy(),
    }
}

#[pymethods]
impl Handle {
    #[new]
    #[pyo3(signature = (callback, args, r#loop, context=None))]
    fn py_new(
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyAny>,
        r#loop: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        let args = args_tuple(args)?;
        let debug = loop_debug(r#loop)?;
        Handle::make(py, callback, &args, r#loop, context, debug)
    }

    /// The context the callback runs in.
    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context_out(py)
    }

    #[getter]
    fn _context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context_out(py)
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.the_loop(py).unbind()
    }

    #[getter]
    fn _callback<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.call(py).map(|(callback, _)| callback)
    }

    #[getter]
    fn _args<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyTuple>> {
        self.call(py).map(|(_, args)| args)
    }

    #[getter]
    fn _cancelled(&self) -> bool {
        self.is_cancelled()
    }

    #[getter]
    fn _source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source_traceback.as_ref().map(|t| t.clone_ref(py))
    }

    #[getter]
    fn _repr<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.repr.get(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.built.load(Relaxed) {
            // Being made (see `built`): it holds nothing yet.
            return Ok(());
        }
        self.visit_fields(&visit)
    }

    fn __clear__(&self) {
        // SAFETY: called by the garbage collector (see `GilCell::peek`).
        // The call is what a cycle goes through (a callback that refers to
        // its own handle); the references are released after the take.
        let call = unsafe { self.call.take_unchecked() };
        drop(call);
    }

    /// Cancels the call (it will not run); a no-op once run or cancelled.
    fn cancel(slf: &Bound<'_, Handle>) -> PyResult<()> {
        Handle::cancel_base(slf)
    }

    /// True once cancelled.
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    /// Runs the callback now (as the loop does): its exception goes to the
    /// loop's exception handler (KeyboardInterrupt, SystemExit propagate).
    fn _run(slf: &Bound<'_, Handle>) -> PyResult<()> {
        super::run::run_handle(slf)
    }

    /// The parts of the `repr` (asyncio's `Handle._repr_info`).
    fn _repr_info<'py>(slf: &Bound<'py, Handle>) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let h = slf.get();
        let info = PyList::empty(py);
        info.append(slf.get_type().name()?)?;
        if h.is_cancelled() {
            info.append("cancelled")?;
        }
        if let Some((callback, args)) = h.call(py) {
            info.append(super::format_callback_source(
                py,
                &callback,
                args.as_any(),
                &h.the_loop(py),
            )?)?;
        }
        if let Some(tb) = h.source_traceback(py) {
            let frame = tb.get_item(-1)?;
            let file = frame.get_item(0)?;
            let line = frame.get_item(1)?;
            info.append(format!("created at {}:{}", file.str()?, line.str()?))?;
        }
        Ok(info)
    }

    fn __repr__(slf: &Bound<'_, Handle>) -> PyResult<String> {
        let py = slf.py();
        if let Some(repr) = slf.get().repr.get(py) {
            return Ok(repr.to_string());
        }
        let info = slf.call_method0("_repr_info")?;
        let joined = PyString::new(py, " ").call_method1("join", (info,))?;
        Ok(format!("<{}>", joined.str()?))
    }
}

/// `args` as a tuple (asyncio accepts any sequence, unpacked at the call).
fn args_tuple<'py>(args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    match args.cast::<PyTuple>() {
        Ok(t) => Ok(t.clone()),
        Err(_) => Ok(PyTuple::new(
            args.py(),
            args.try_iter()?.collect::<PyResult<Vec<_>>>()?,
        )?),
    }
}

/// asyncio's `TimerHandle`: a handle due at a loop time.
#[pyclass(module = "rtpy._rtpy", name = "TimerHandle", extends = Handle, subclass, frozen)]
pub struct TimerHandle {
    /// The due time as the caller gave it (`when()`, `repr`).
    when_obj: Py<PyAny>,
    /// ... as a float (ordering, the engine's deadline).
    when: f64,
    /// Its place in the timers of its loop's engine while scheduled there
    /// (cancel removes it at once).
    key: GilCell<Option<TimerKey>>,
}

impl TimerHandle {
    /// A timer handle not yet scheduled (see [`TimerHandle::scheduled`]).
    pub(crate) fn make(
        when_obj: Py<PyAny>,
        when: f64,
        base: Handle,
    ) -> PyClassInitializer<TimerHandle> {
        PyClassInitializer::from(base).add_subclass(TimerHandle {
            when_obj,
            when,
            key: GilCell::new(None),
        })
    }

    /// Records where it is scheduled (in its loop's engine).
    pub(crate) fn scheduled(&self, py: Python<'_>, key: TimerKey) {
        self.key.replace(py, Some(key));
    }
}

#[pymethods]
impl TimerHandle {
    #[new]
    #[pyo3(signature = (when, callback, args, r#loop, context=None))]
    fn py_new(
        py: Python<'_>,
        when: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyAny>,
        r#loop: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<TimerHandle>> {
        let seconds: f64 = when.extract()?;
        let base = Handle::py_new(py, callback, args, r#loop, context)?;
        Ok(TimerHandle::make(when.clone().unbind(), seconds, base))
    }

    /// The loop time it is due at.
    fn when(&self, py: Python<'_>) -> Py<PyAny> {
        self.when_obj.clone_ref(py)
    }

    #[getter]
    fn _when(&self, py: Python<'_>) -> Py<PyAny> {
        self.when_obj.clone_ref(py)
    }

    /// True while it waits in the engine's timers.
    #[getter]
    fn _scheduled(slf: &Bound<'_, TimerHandle>) -> bool {
        let py = slf.py();
        slf.get().key.get_copy(py).is_some() && !slf.as_super().get().is_cancelled()
    }

    /// Cancels it and removes it from the loop's timers at once.
    fn cancel(slf: &Bound<'_, TimerHandle>) -> PyResult<()> {
        let py = slf.py();
        let t = slf.get();
        if !slf.as_super().get().is_cancelled() {
            // Scheduled: in the engine of its loop (a `LoopCore`, which
            // `call_at` passed as `_loop`); one made by Python has no key.
            let key = t.key.replace(py, None);
            let the_loop = slf.as_super().get().the_loop(py);
            if let (Some(key), Ok(core)) = (key, the_loop.cast::<super::core::LoopCore>()) {
                // A fired timer's key is stale, a closed engine has no
                // timers: the engine ignores it.
                let removed = core.get().engine().cancel_timer(key);
                drop(removed);
            }
        }
        Handle::cancel_base(slf.as_super())
    }

    fn _repr_info<'py>(slf: &Bound<'py, TimerHandle>) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let info = Handle::_repr_info(slf.as_super())?;
        let pos = if slf.as_super().get().is_cancelled() {
            2
        } else {
            1
        };
        let when = slf.get().when_obj.bind(py).repr()?;
        info.insert(pos, format!("when={when}"))?;
        Ok(info)
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.when_obj.bind(py).hash()
    }

    fn __richcmp__(
        slf: &Bound<'_, TimerHandle>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<TimerHandle>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (slf.get().when, other.get().when);
        let eq = || -> PyResult<bool> {
            if a != b {
                return Ok(false);
            }
            let (x, y) = (slf.as_super().get(), other.as_super().get());
            if x.is_cancelled() != y.is_cancelled() {
                return Ok(false);
            }
            let (cx, cy) = (x.call(py), y.call(py));
            match (cx, cy) {
                (None, None) => Ok(true),
                (Some((fx, ax)), Some((fy, ay))) => Ok(fx.eq(fy)? && ax.eq(ay)?),
                _ => Ok(false),
            }
        };
        let out = match op {
            CompareOp::Lt => a < b,
            CompareOp::Gt => a > b,
            CompareOp::Le => a < b || eq()?,
            CompareOp::Ge => a > b || eq()?,
            CompareOp::Eq => eq()?,
            CompareOp::Ne => !eq()?,
        };
        Ok(pyo3::types::PyBool::new(py, out)
            .to_owned()
            .into_any()
            .unbind())
    }
}
