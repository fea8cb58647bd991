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
//! open. A kept handle is untracked by the collector and refers only to its
//! loop (one more reference to it per kept handle: the loop's traversal
//! visits them, see `LoopCore.__traverse__`); closing or clearing the loop
//! drops every kept handle.

use super::gil_cell::GilCell;
use super::handle::Handle;
use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::PyTraverseError;

/// The handles a loop keeps, at most (a burst of `call_soon`s beyond it
/// allocates as usual).
pub(crate) const KEEP: usize = 64;

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
        // (this is the runner, between two handles): a kept handle is
        // visited by its loop instead (see the module's doc).
        unsafe { ffi::PyObject_GC_UnTrack(p.cast()) };
        self.0.push(py, handle.unbind());
        // The callback, arguments and context go last: their release may
        // run Python code, which may take the handle kept just now.
        drop(released);
    }

    /// A kept handle set up for `callback(*args)` in `context` (a copy of
    /// the current one if None), or None if the loop keeps none.
    pub(crate) fn take<'py>(
        &self,
        py: Python<'py>,
        callback: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, Handle>>> {
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
        handle.get().set_up(py, callback, args, context);
        Ok(Some(handle))
    }

    /// Visits what the kept handles hold for the loop's traversal: the
    /// loop itself, once per handle (a kept handle's call and context are
    /// None), as if the loop held these references itself: it does in
    /// effect, as nothing else reaches a kept handle (one reference, the
    /// loop's; untracked, so the collector never visits it).
    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: called from a traversal (see `GilCell::peek`).
        for h in unsafe { self.0.peek() } {
            // SAFETY: `h` is live (the list's reference); a traversal
            // reads counts and flags only.
            debug_assert!(unsafe {
                ffi::Py_REFCNT(h.as_ptr()) == 1 && ffi::PyObject_GC_IsTracked(h.as_ptr()) == 0
            });
            h.get().visit_loop(visit)?;
        }
        Ok(())
    }

    /// Drops every kept handle (closing or clearing the loop).
    pub(crate) fn clear(&self, py: Python<'_>) {
        let kept = self.0.replace(py, Vec::new());
        drop(kept);
    }
}
