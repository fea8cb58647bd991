//! The current-thread scheduler's shared queue: a mutex-protected FIFO that
//! can be closed.

use crate::task::Notified;
use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Mutex;

/// A closable FIFO of run-queue entries.
pub(super) struct Inject<S: 'static> {
    synced: Mutex<Synced<S>>,
    /// Mirrors the length so the empty check skips the lock.
    len: AtomicUsize,
}

struct Synced<S: 'static> {
    queue: VecDeque<Notified<S>>,
    closed: bool,
}

impl<S: 'static> Inject<S> {
    pub(super) fn new() -> Inject<S> {
        Inject {
            synced: Mutex::new(Synced {
                queue: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Adds an entry; hands it back if the queue is closed. `Ok(true)` if
    /// the queue was empty before: only then must the driving thread be
    /// woken. Had it held entries, the push that made it non-empty woke
    /// it, and it pops (under this lock, so it sees this entry) until it
    /// finds the queue empty before it parks again.
    pub(super) fn push(&self, task: Notified<S>) -> Result<bool, Notified<S>> {
        let mut synced = self.synced.lock().unwrap();
        if synced.closed {
            return Err(task);
        }
        let was_empty = synced.queue.is_empty();
        synced.queue.push_back(task);
        self.len.store(synced.queue.len(), Release);
        Ok(was_empty)
    }

    pub(super) fn pop(&self) -> Option<Notified<S>> {
        if self.len.load(Acquire) == 0 {
            return None;
        }
        let mut synced = self.synced.lock().unwrap();
        let task = synced.queue.pop_front();
        self.len.store(synced.queue.len(), Release);
        task
    }

    /// Closes the queue and drops what it holds. Returns false if it was
    /// already closed.
    pub(super) fn close(&self) -> bool {
        let drained: VecDeque<Notified<S>> = {
            let mut synced = self.synced.lock().unwrap();
            if synced.closed {
                return false;
            }
            synced.closed = true;
            self.len.store(0, Release);
            std::mem::take(&mut synced.queue)
        };
        // Dropped outside the lock: dropping an entry may free a task.
        drop(drained);
        true
    }

    pub(super) fn is_closed(&self) -> bool {
        self.synced.lock().unwrap().closed
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }
}
