//! Handles kept for reuse by their loop.
//!
//! Most handles are made by `call_soon` on the loop's thread, run once and
//! freed: an allocation and a deallocation through pyo3's object machinery
//! (about 600 instructions, a quarter of a chained `call_soon` iteration).
//! A handle the loop just ran that nothing else can reach is reset instead
//! (callback, arguments and context released) and kept, up to [`KEEP`] per
//! loop, for the loop's next `call_soon`.
//!
//! Nothing can tell a kept handle from a new one: one is kept only when the
//! runner's reference is its only one, strong or weak (so no Python code can
//! hold or reach it), it is an exact `Handle` (no subclass state), made for
//! this loop outside debug mode (no source traceback), while the loop is
//! open. A kept handle refers to nothing (None for its callback, context and
//! loop) and is untracked by the collector: there is nothing to collect
//! through it, and the loop gains no reference to itself. Closing or
//! clearing the loop drops every kept handle.

use super::gil_cell::GilCell;
use super::handle::Handle;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The handles a loop keeps, at most: enough for a burst of a thousand
/// `call_soon`s per iteration (a busy loop's batch, asyncio tasks woken
/// together) to reuse them all, about 120 KiB per loop at most, released
/// when the loop closes. A larger burst allocates as usual.
pub(crate) const KEEP: usize = 1024;

/// The handles one loop keeps for reuse.
pub(crate) struct Spare(GilCell<Vec<Py<Handle>>>);

impl Spare {
    pub(crate) fn new() -> Spare {
        Spare(GilCell::new(Vec::new()))
    }

    /// Keeps `handle`, just run by `the_loop`, if nothing else can reach it
    /// (see the module's rules); else lets it go as usual.
    pub(crate) fn keep(&self, handle: Bound<'_, Handle>, the_loop: &Bound<'_, PyAny>) {
        let py = handle.py();
        let p = handle.as_ptr();
        // SAFETY: the GIL is held (`Bound`) and `p` is live; reading the
        // type, the reference count and the weak list runs no Python code.
        let alone = unsafe {
            ffi::Py_TYPE(p) == <Handle as pyo3::PyTypeInfo>::type_object_raw(py)
                && ffi::Py_REFCNT(p) == 1
                && !super::untracked::has_weakrefs(p)
        };
        if !alone || !handle.get().reusable_for(the_loop) {
            return;
        }
        if self.0.len(py) >= KEEP {
            return;
        }
        let released = handle.get().reset(py);
        // SAFETY: `p` is live; untracking is allowed outside a traversal
        // (this is the runner, between two handles). A kept handle refers
        // to nothing: the collector has nothing to find through it.
        unsafe { ffi::PyObject_GC_UnTrack(p.cast()) };
        self.0.push(py, handle.unbind());
        // The callback, arguments, context and loop go last: their release
        // may run Python code, which may take the handle kept just now.
        drop(released);
    }

    /// A kept handle set up for `callback(*args)` in `context` (a copy of
    /// the current one if None) on `the_loop` (the loop keeping it), or None
    /// if the loop keeps none.
    pub(crate) fn take<'py>(
        &self,
        the_loop: &Bound<'py, PyAny>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, Handle>>> {
        let py = the_loop.py();
        if self.0.len(py) == 0 {
            return Ok(None);
        }
        let context = match context {
            Some(c) if !c.is_none() => c.clone(),
            _ => super::context::copy_current(py)?,
        };
        // Taken after the copy, which may run Python code (a collection).
        let Some(handle) = self.0.pop(py) else {
            return Ok(None);
        };
        let handle = handle.into_bound(py);
        handle.get().set_up(py, callback, args, context, the_loop);
        Ok(Some(handle))
    }

    /// Drops every kept handle (closing or clearing the loop).
    pub(crate) fn clear(&self, py: Python<'_>) {
        let kept = self.0.replace(py, Vec::new());
        drop(kept);
    }
}
