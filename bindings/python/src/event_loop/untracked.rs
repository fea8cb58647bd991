//! Scheduled handles the garbage collector does not track while only their
//! loop holds them.
//!
//! A `Handle` is a GC container (its callback, arguments and context can
//! form cycles), but nearly all of them live only in the loop's queues
//! between `call_soon` / `call_later` and their run. Tracked, every young
//! collection walks each of them through pyo3's traverse wrapper, the
//! largest part of the collector's cost on a busy loop. So a handle the
//! engine takes is untracked ([`untrack`]) and is tracked again as soon as
//! anything else may keep it.
//!
//! # Design, and why the collector stays sound and complete
//!
//! The collector only examines tracked objects. An untracked object is
//! never freed by it, and a reference it holds is never subtracted: to the
//! collector that reference comes from outside, so what it refers to is
//! kept alive (safe, at worst a cycle through it is not found). The scheme
//! keeps both soundness (nothing collected while reachable) and
//! completeness (every cycle found, as with asyncio's tracked handles):
//!
//! 1. **The loop speaks for the handles it owns alone.** `LoopCore`'s
//!    traversal ([`Item::visit`](super::handle::Item::visit)) visits a
//!    tracked handle as an object, and an untracked one whose reference
//!    count is 1 (the engine's own reference is then the only one) through
//!    its fields, as if the loop held them itself, which it does in effect:
//!    nothing else can reach that handle. An untracked handle with more
//!    references is not visited at all (its fields count as referenced from
//!    outside: safe). Reference counts do not change during a traversal.
//! 2. **A handle whose engine reference goes while another remains is
//!    tracked** (`Item`'s drop, and the runner after a run: `track_if_shared`),
//!    so a handle outside any engine is untracked only while one owner (the
//!    runner running it, or whoever drops it last) holds it.
//! 3. **A handle handed to Python is listed** (`untrack` lists the one
//!    `call_soon` returns) and at the start of every collection the hook
//!    this module adds to `gc.callbacks` tracks each listed handle that has
//!    more than one reference (then something besides the engine holds it:
//!    a user's object can be part of a cycle through it) or a weak
//!    reference (a later strong one could be taken through it unseen), and
//!    empties the list. A handle leaves the list when it is freed (`Handle`'s drop).
//!    Python gets a handle the engine holds in no other way: the binding
//!    hands one out only as `call_soon` / `call_at`'s result (listed) and
//!    from the runner (the exception handler's context, debug mode's
//!    `_current_handle`: covered by 2). Between a handle's return and the
//!    next collection's start it may be untracked and shared: then 1 does
//!    not visit it (safe), and that collection's start settles it.
//! 4. **A context only its handle holds is untracked with it** (an exact
//!    `contextvars.Context`, the copy `call_soon` made for it, with the
//!    handle's `context_untracked` flag set), and the handle's traversal
//!    (its own, or the loop's on its behalf) visits such a context, while
//!    its count is 1, through what it refers to (`context::visit_owned`:
//!    the context's own `tp_traverse` with the collector's visitor), exact
//!    for the same reason as 1. Python gets the context only from the
//!    handle's `get_context` / `_context` (which track it again) or by
//!    running in it (tracked again after the run if anything kept it); the
//!    handle's drop always tracks it again, as CPython frees a context
//!    assuming it is tracked.
//!
//! So when a collection starts, every untracked handle is held by its
//! engine only, or by the runner only: 1 accounts for it exactly. Cycles
//! through the runner's stack reference are kept for the run, as any stack
//! reference keeps them. If the hook is removed from `gc.callbacks` or a
//! collection bypasses the callbacks (CPython's interpreter shutdown),
//! listed handles stay untracked: cycles through them are found late or
//! not at all (a leak), never wrongly freed.

use super::handle::Handle;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::cell::UnsafeCell;
use std::ptr::NonNull;

/// Not in the list (a handle's [`Handle`] slot).
pub(crate) const NOT_LISTED: usize = usize::MAX;

/// The handles handed to Python since the last collection started: raw
/// pointers (no reference: a listed handle may be freed, then its drop
/// takes it off), each handle's slot is its index.
struct Listed(UnsafeCell<Vec<NonNull<ffi::PyObject>>>);

// SAFETY: only accessed with the GIL held (every function here takes a
// `Python` token or is called from a handle's deallocation, which CPython
// runs with the GIL held), and the module requires the GIL (`gil_used`);
// no access runs Python code while it borrows the vector, so none nests.
unsafe impl Sync for Listed {}

static LISTED: Listed = Listed(UnsafeCell::new(Vec::new()));

/// The hook, once added to `gc.callbacks`.
static HOOK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The list, borrowed for one step that runs no Python code.
///
/// # Safety
/// The GIL is held (`_py`) and no other borrow of the list is alive.
unsafe fn listed<'a>(_py: Python<'_>) -> &'a mut Vec<NonNull<ffi::PyObject>> {
    // SAFETY: the caller's contract (see the `Sync` impl).
    unsafe { &mut *LISTED.0.get() }
}

/// Called by the collector at the start (and end) of every collection:
/// settles the listed handles (see the module's point 3).
#[pyfunction]
fn _gc_hook(phase: &Bound<'_, PyAny>, _info: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = phase.py();
    if phase.eq(pyo3::intern!(py, "start"))? {
        settle(py);
    }
    Ok(())
}

/// Tracks every listed handle that is shared (more than one reference, or
/// a weak one), and empties the list.
fn settle(py: Python<'_>) {
    // SAFETY: the GIL is held; the loop below runs no Python code (slot
    // writes, reference count reads, `PyObject_GC_Track`).
    for p in unsafe { listed(py) }.drain(..) {
        // SAFETY: a listed pointer is a live `Handle` (or subclass)
        // object: a handle's drop takes it off the list first.
        let h = unsafe { Borrowed::from_ptr(py, p.as_ptr()).cast_unchecked::<Handle>() };
        h.get().set_slot(py, NOT_LISTED);
        track_if_shared(&h);
    }
}

/// Adds the hook to `gc.callbacks` once (a loop's creation does, so the
/// first `untrack` runs no Python code).
pub(crate) fn hook(py: Python<'_>) -> PyResult<()> {
    HOOK.get_or_try_init(py, || {
        let f = wrap_pyfunction!(_gc_hook, py)?;
        py.import("gc")?
            .getattr("callbacks")?
            .call_method1("append", (&f,))?;
        Ok::<_, PyErr>(f.into_any().unbind())
    })?;
    Ok(())
}

/// Untracks `handle`, which the engine holds now and which is about to be
/// returned to Python (listed: see the module's design). If the hook cannot
/// be added, the handle stays tracked (always sound).
pub(crate) fn untrack(handle: &Bound<'_, Handle>) {
    let py = handle.py();
    if hook(py).is_err() {
        // Tracked (a handle reused from `spare.rs` is not): always sound.
        track_if_untracked(handle);
        return;
    }
    let p = handle.as_ptr();
    // SAFETY: the GIL is held and `p` is live. Untracking a tracked object
    // is allowed at any point outside a collection's traversal (this is a
    // method call on the loop's thread); the push below runs no Python code
    // (no collection can start between the untrack and the listing).
    unsafe {
        ffi::PyObject_GC_UnTrack(p.cast());
        let list = listed(py);
        handle.get().set_slot(py, list.len());
        list.push(NonNull::new_unchecked(p));
    }
    // Its context too if the handle alone holds it (a copy made for it):
    // the handle's traversal then speaks for it (point 4).
    handle.get().untrack_context(py);
}

/// Tracks `handle` if it is untracked and shared: more than one reference
/// (its last owner but one lets it go: see the module's point 2), or a weak
/// reference (through which Python can take a strong one at any time, with
/// no listing: it would then be untracked and shared).
pub(crate) fn track_if_shared(handle: &Bound<'_, Handle>) {
    let p = handle.as_ptr();
    // SAFETY: the GIL is held (`Bound`); `p` is live; reading a count and
    // the weak list runs no Python code.
    if unsafe { ffi::Py_REFCNT(p) > 1 || has_weakrefs(p) } {
        // At a handle's release or in the collector's start hook, never in
        // a traversal.
        track_if_untracked(handle);
    }
}

/// Tracks `handle` if the collector does not (called outside any
/// traversal).
fn track_if_untracked(handle: &Bound<'_, Handle>) {
    let p = handle.as_ptr();
    // SAFETY: the GIL is held (`Bound`); `p` is live; tracking an untracked
    // container is allowed outside a traversal (the callers' contract).
    unsafe {
        if ffi::PyObject_GC_IsTracked(p) == 0 {
            ffi::PyObject_GC_Track(p.cast());
        }
    }
}

/// True if `p` has weak references (its type's weak-reference list slot is
/// not empty).
///
/// # Safety
/// The GIL is held and `p` is a live object.
pub(crate) unsafe fn has_weakrefs(p: *mut ffi::PyObject) -> bool {
    // SAFETY: the caller's contract; a positive `tp_weaklistoffset` is the
    // offset of the list's head pointer inside every instance of the type
    // (`Handle` is not variable-sized, so the offset is never negative).
    unsafe {
        let offset = (*ffi::Py_TYPE(p)).tp_weaklistoffset;
        offset > 0 && !(*p.cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>()).is_null()
    }
}

/// Takes a handle being freed off the list (its slot is `slot`).
///
/// # Safety
/// The GIL is held (a handle's deallocation) and `slot` is the handle's
/// current index in the list.
pub(crate) unsafe fn unlist(py: Python<'_>, slot: usize) {
    // SAFETY: the caller's contract; no Python code runs.
    let list = unsafe { listed(py) };
    list.swap_remove(slot);
    if let Some(moved) = list.get(slot) {
        // SAFETY: a listed pointer is a live `Handle` object.
        let h = unsafe { Borrowed::from_ptr(py, moved.as_ptr()).cast_unchecked::<Handle>() };
        h.get().set_slot(py, slot);
    }
}
