//! `KeyboardInterrupt` and `SystemExit` raised by a callback that a host's
//! own call runs (`Runtime.run`, `Runtime.run_budget`, `Queue.drain`): they
//! end that call and are raised out of it, as asyncio's loop lets them out
//! of `run_forever`. Reported instead (like any other exception), they were
//! lost: a Ctrl-C landing inside a callback of a game loop's frame, or a
//! `sys.exit()` in a drained callback, did nothing.
//!
//! Callbacks on a runtime's own threads have no caller to raise to: theirs
//! are reported (or land in their future) as before.

use pyo3::prelude::*;
use rt_core::runtime::Handle;
use std::cell::RefCell;

/// One host call under way on this thread.
struct HostCall {
    /// The runtime whose run it is (None: a queue's drain), stopped when a
    /// callback raises. Valid while the call is on the stack (`hosted`
    /// borrows it for that long).
    stop: Option<*const Handle>,
    /// The first such exception raised inside it.
    escaped: Option<PyErr>,
}

thread_local! {
    /// The host calls under way on this thread, innermost last (a drained
    /// callback may run a runtime, and the other way round).
    static HOSTS: RefCell<Vec<HostCall>> = const { RefCell::new(Vec::new()) };
}

/// Pops this thread's innermost host call, also if `f` unwinds.
struct Pop;

impl Drop for Pop {
    fn drop(&mut self) {
        let _ = HOSTS.try_with(|h| h.borrow_mut().pop());
    }
}

/// Runs `f` (a host call: it runs callbacks on this thread, `stop` being
/// the runtime it runs) so that a `KeyboardInterrupt` or `SystemExit` a
/// callback raises inside it stops it and comes out of it: `Err` with that
/// exception (`f`'s result is dropped).
pub(crate) fn hosted<R>(stop: Option<&Handle>, f: impl FnOnce() -> R) -> PyResult<R> {
    HOSTS.with(|h| {
        h.borrow_mut().push(HostCall {
            stop: stop.map(|s| s as *const Handle),
            escaped: None,
        })
    });
    let pop = Pop;
    let out = f();
    let call = HOSTS.with(|h| h.borrow_mut().pop());
    std::mem::forget(pop);
    match call.and_then(|c| c.escaped) {
        Some(err) => Err(err),
        None => Ok(out),
    }
}

/// True while this thread runs (inside `hosted`) the runtime whose handle
/// is at address `handle` (only compared, never dereferenced): a call
/// spawned on it can only run once this thread's callback returned.
pub(crate) fn runs_here(handle: usize) -> bool {
    HOSTS
        .try_with(|h| {
            h.borrow()
                .iter()
                .any(|c| c.stop.is_some_and(|p| p as usize == handle))
        })
        .unwrap_or(false)
}

/// True once a callback of this thread's innermost host call raised such
/// an exception (the call should end now).
pub(crate) fn escaping() -> bool {
    HOSTS
        .try_with(|h| h.borrow().last().is_some_and(|c| c.escaped.is_some()))
        .unwrap_or(false)
}

/// `err`, raised by a callback, ends this thread's innermost host call if
/// it is a `KeyboardInterrupt` or `SystemExit` and such a call is under
/// way: true then (the caller does not report it; a future still gets it).
pub(crate) fn escape(py: Python<'_>, err: &PyErr) -> bool {
    if !crate::errors::is_exit(py, err) {
        return false;
    }
    let stop = HOSTS.try_with(|h| {
        let mut hosts = h.borrow_mut();
        let call = hosts.last_mut()?;
        if call.escaped.is_none() {
            call.escaped = Some(err.clone_ref(py));
        }
        Some(call.stop)
    });
    match stop {
        Ok(Some(stop)) => {
            // SAFETY: the pointer was borrowed by `hosted`, whose frame is
            // below this one on this thread's stack (the callback runs
            // inside its `f`): the handle is alive.
            if let Some(handle) = stop.and_then(|h| unsafe { h.as_ref() }) {
                // The run returns after this callback.
                handle.stop();
            }
            true
        }
        _ => false,
    }
}
