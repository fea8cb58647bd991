//! The multi-thread scheduler's global inject queue: crossbeam's lock-free
//! `Injector` plus a closed flag.
//!
//! Closing must not strand entries: a pusher checks the flag after pushing
//! and the closer drains after setting it, with a SeqCst fence on each side,
//! so at least one of them sees the other and the entry is dropped.

use crossbeam_deque::{Injector, Steal, Worker};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{fence, AtomicBool};

/// The global queue of one multi-thread scheduler.
pub(super) struct Inject<T> {
    queue: Injector<T>,
    closed: AtomicBool,
}

impl<T> Inject<T> {
    pub(super) fn new() -> Inject<T> {
        Inject {
            queue: Injector::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds an entry; hands it back if the queue is closed.
    pub(super) fn push(&self, task: T) -> Result<(), T> {
        if self.closed.load(SeqCst) {
            return Err(task);
        }
        self.queue.push(task);
        self.drain_if_closed();
        Ok(())
    }

    /// Adds several entries in order (overflow from a local queue).
    pub(super) fn push_batch(&self, tasks: Vec<T>) {
        for t in tasks {
            self.queue.push(t);
        }
        self.drain_if_closed();
    }

    fn drain_if_closed(&self) {
        fence(SeqCst);
        if self.closed.load(SeqCst) {
            self.drain();
        }
    }

    fn drain(&self) {
        while self.pop().is_some() {}
    }

    /// Takes the oldest entry.
    pub(super) fn pop(&self) -> Option<T> {
        loop {
            match self.queue.steal() {
                Steal::Success(t) => return Some(t),
                Steal::Empty => return None,
                Steal::Retry => crate::loom::spin_loop(),
            }
        }
    }

    /// Moves up to `limit` entries into `dst`, returning one of them.
    pub(super) fn pop_batch_into(&self, dst: &Worker<T>, limit: usize) -> Option<T> {
        loop {
            match self.queue.steal_batch_with_limit_and_pop(dst, limit.max(1)) {
                Steal::Success(t) => return Some(t),
                Steal::Empty => return None,
                Steal::Retry => crate::loom::spin_loop(),
            }
        }
    }

    /// Closes the queue and drops its entries; false if already closed.
    pub(super) fn close(&self) -> bool {
        if self.closed.swap(true, SeqCst) {
            return false;
        }
        fence(SeqCst);
        self.drain();
        true
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}
