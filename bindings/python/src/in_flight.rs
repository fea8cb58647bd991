//! The process-wide counts of operations under way that interpreter exit
//! waits for (the uses of Python on runtime threads, `gil::IN_PYTHON`; the
//! loops' pool jobs, `pool::JOBS`): `rt_core::callback::InFlight`s, reset
//! in a child of `fork()` (the operations counted were the parent's
//! threads', which the child does not have; a guard that began before the
//! fork may still end in the child: its decrement saturates).

use pyo3::prelude::*;
pub(crate) use rt_core::callback::{Entered, InFlight};
use std::time::Duration;

/// Every process-wide `InFlight` of the module: reset in a forked child.
static ALL: [&InFlight; 2] = [&crate::gil::IN_PYTHON, &crate::event_loop::pool::JOBS];

/// In a child of `fork()`: the operations counted were the parent's
/// threads' (not in the child).
extern "C" fn reset_in_child() {
    for count in ALL {
        count.reset_after_fork();
    }
}

/// Resets the counts in forked children (called once, at module init).
pub(crate) fn init() {
    // SAFETY: registers a handler for the process's life (a plain `fn`);
    // run in the child right after a fork, it only stores to atomics.
    unsafe { libc::pthread_atfork(None, None, Some(reset_in_child)) };
}

/// `count.wait_idle(limit)` with the GIL released (the operations counted
/// may need it to end).
pub(crate) fn wait_idle(py: Python<'_>, count: &InFlight, limit: Option<Duration>) -> bool {
    py.detach(|| count.wait_idle(limit))
}
