//! [`GilCell`]: the mutable fields of the frozen handle classes, read and
//! written only with the GIL held; [`Call`], a handle's callback and
//! arguments.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::cell::UnsafeCell;

/// A value only read or written with the GIL held (a `Python` token), in
/// one short step that runs no Python code (a reference count change at
/// most), so no two accesses overlap.
pub(crate) struct GilCell<T>(UnsafeCell<T>);

// SAFETY: every access takes a `Python<'_>` token, so it runs on a thread
// holding the GIL; the module only loads with the GIL enabled (`lib.rs`:
// `gil_used`, and a free-threaded interpreter with the GIL forced off is
// refused), so two threads never access it at once. An access runs no Python code while
// it borrows the value (`get` clones, `replace` swaps and returns the old
// value for the caller to drop after), so no access nests in another on the
// same thread. `T: Send`: the value may be dropped on another thread.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub(crate) fn new(value: T) -> GilCell<T> {
        GilCell(UnsafeCell::new(value))
    }

    /// The value, through the only reference to the cell (a drop).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    /// Puts `value` in, returns the old one (drop it after: its release
    /// may run Python code).
    pub(crate) fn replace(&self, _py: Python<'_>, value: T) -> T {
        // SAFETY: the GIL is held (the token) and no other access is under
        // way (see the `Sync` impl); the swap runs no Python code.
        unsafe { std::mem::replace(&mut *self.0.get(), value) }
    }
}

impl<T> GilCell<T> {
    /// The value, for the garbage collector's traversal.
    ///
    /// # Safety
    /// Only from `__traverse__` / `__clear__`: the collector runs them with
    /// the GIL held, started by an allocation, which no access of a
    /// `GilCell` makes, so none is under way.
    pub(crate) unsafe fn peek(&self) -> &T {
        // SAFETY: the caller's contract: no access is under way, and none
        // starts while the collector runs (it holds the GIL).
        unsafe { &*self.0.get() }
    }

    /// Takes the value out without a token (see [`GilCell::peek`]).
    ///
    /// # Safety
    /// As [`GilCell::peek`].
    pub(crate) unsafe fn take_unchecked(&self) -> T
    where
        T: Default,
    {
        // SAFETY: as `peek`.
        unsafe { std::mem::take(&mut *self.0.get()) }
    }
}

impl<T: Copy> GilCell<T> {
    /// A copy of the value.
    pub(crate) fn get_copy(&self, _py: Python<'_>) -> T {
        // SAFETY: as `replace`: the GIL is held, a plain copy.
        unsafe { *self.0.get() }
    }
}

/// A callback and its arguments.
pub(crate) struct Call {
    pub(crate) callback: Py<PyAny>,
    pub(crate) args: Py<PyTuple>,
}

impl GilCell<Option<Call>> {
    /// New references to the callback and its arguments, if any.
    pub(crate) fn get_call<'py>(
        &self,
        py: Python<'py>,
    ) -> Option<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        // SAFETY: as `replace`: the GIL is held; cloning a `Bound` only
        // increments a reference count (no Python code).
        unsafe {
            (*self.0.get())
                .as_ref()
                .map(|c| (c.callback.bind(py).clone(), c.args.bind(py).clone()))
        }
    }

    /// The callback's and the arguments' pointers, no new references
    /// (valid while the cell keeps them: until the next `replace`).
    pub(crate) fn call_ptrs(
        &self,
        _py: Python<'_>,
    ) -> Option<(*mut pyo3::ffi::PyObject, *mut pyo3::ffi::PyObject)> {
        // SAFETY: as `replace`: the GIL is held; a plain read.
        unsafe {
            (*self.0.get())
                .as_ref()
                .map(|c| (c.callback.as_ptr(), c.args.as_ptr()))
        }
    }
}

impl<T> GilCell<Option<Py<T>>> {
    /// A new reference to the object, if any.
    pub(crate) fn get<'py>(&self, py: Python<'py>) -> Option<Bound<'py, T>> {
        // SAFETY: as `replace`: the GIL is held; `clone_ref` only
        // increments a reference count (no Python code).
        unsafe { (*self.0.get()).as_ref().map(|o| o.bind(py).clone()) }
    }
}

impl<T> GilCell<Py<T>> {
    /// A new reference to the object.
    pub(crate) fn bound<'py>(&self, py: Python<'py>) -> Bound<'py, T> {
        // SAFETY: as `replace`: the GIL is held; `clone` only increments a
        // reference count (no Python code).
        unsafe { (*self.0.get()).bind(py).clone() }
    }

    /// The object's pointer, no new reference (valid while the cell keeps
    /// it: until the next `replace`).
    pub(crate) fn as_ptr(&self, _py: Python<'_>) -> *mut pyo3::ffi::PyObject {
        // SAFETY: as `replace`: the GIL is held; a plain read.
        unsafe { (*self.0.get()).as_ptr() }
    }
}

impl<T> GilCell<Vec<T>> {
    /// The number of values.
    pub(crate) fn len(&self, _py: Python<'_>) -> usize {
        // SAFETY: as `replace`: the GIL is held; a plain read.
        unsafe { (*self.0.get()).len() }
    }

    /// Appends `value` (runs no Python code: nothing is dropped).
    pub(crate) fn push(&self, _py: Python<'_>, value: T) {
        // SAFETY: as `replace`: the GIL is held; a push drops nothing.
        unsafe { (*self.0.get()).push(value) }
    }

    /// Takes the last value out (the caller drops it).
    pub(crate) fn pop(&self, _py: Python<'_>) -> Option<T> {
        // SAFETY: as `replace`: the GIL is held; the value is moved out,
        // not dropped.
        unsafe { (*self.0.get()).pop() }
    }
}
