//! `InFlight`: a process-wide count of operations under way that
//! interpreter exit waits for (the uses of Python on runtime threads,
//! `gil::IN_PYTHON`; the loops' pool jobs, `pool::JOBS`). A child of
//! `fork()` starts every count at zero: the operations counted were the
//! parent's threads', which the child does not have. A guard that began
//! before the fork may still end in the child: the decrement saturates.

use pyo3::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// A count of operations under way (see the module's doc).
pub(crate) struct InFlight(AtomicUsize);

/// One operation counted by an [`InFlight`], until dropped.
pub(crate) struct Counted(&'static InFlight);

impl InFlight {
    /// A count at zero.
    pub(crate) const fn new() -> InFlight {
        InFlight(AtomicUsize::new(0))
    }

    /// Counts one operation until the guard is dropped.
    pub(crate) fn enter(&'static self) -> Counted {
        self.0.fetch_add(1, SeqCst);
        Counted(self)
    }

    /// True when no operation is under way.
    pub(crate) fn is_idle(&self) -> bool {
        self.0.load(SeqCst) == 0
    }

    /// Waits, with the GIL released, until no operation is under way, or
    /// at most `limit` when one is given.
    pub(crate) fn wait_idle(&self, py: Python<'_>, limit: Option<Duration>) {
        let deadline = limit.map(|l| Instant::now() + l);
        py.detach(|| {
            while !self.is_idle() && deadline.is_none_or(|d| Instant::now() < d) {
                std::thread::sleep(Duration::from_micros(100));
            }
        });
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // Saturating: an operation that began before an `os.fork()` (on the
        // forking thread) may end in the child, whose count was reset.
        let _ = self
            .0
             .0
            .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
    }
}

/// Every `InFlight` of the module: reset in a forked child.
static ALL: [&InFlight; 2] = [&crate::gil::IN_PYTHON, &crate::event_loop::pool::JOBS];

/// In a child of `fork()`: the operations counted were the parent's
/// threads' (not in the child).
extern "C" fn reset_in_child() {
    for count in ALL {
        count.0.store(0, SeqCst);
    }
}

/// Resets the counts in forked children (called once, at module init).
pub(crate) fn init() {
    // SAFETY: registers a handler for the process's life (a plain `fn`);
    // run in the child right after a fork, it only stores to atomics.
    unsafe { libc::pthread_atfork(None, None, Some(reset_in_child)) };
}
