//! Deferred wakes: where `yield_now` leaves its waker.
//!
//! A task that yields must not run again before the drivers had a turn:
//! otherwise a task yielding in a loop keeps the queue non-empty, the
//! scheduler never blocks in (nor polls) the driver, and I/O or timers that
//! became ready wait up to `event_interval` rounds of it. So `yield_now`
//! does not wake its task; it hands the waker to the scheduler running it,
//! which wakes every deferred waker right after its next driver turn (a
//! zero-timeout one if nothing else is ready: a scheduler with only
//! deferred tasks never blocks). Tokio does the same.
//!
//! The list is per thread (it lives in the scheduler context of the thread
//! that drives the scheduler) and is only touched by that thread.

use std::cell::{Cell, RefCell};
use std::task::Waker;

/// The wakers deferred by tasks polled on this thread.
#[derive(Default)]
pub(crate) struct Defer {
    deferred: RefCell<Vec<Waker>>,
    /// True while [`Defer::wake`] runs: what it schedules is a yield.
    waking: Cell<bool>,
}

impl Defer {
    pub(crate) fn new() -> Defer {
        Defer::default()
    }

    /// Keeps `waker` until the next [`Defer::wake`]. Deferring the same
    /// task twice in a row keeps one waker.
    pub(crate) fn defer(&self, waker: &Waker) {
        let mut deferred = self.deferred.borrow_mut();
        if deferred.last().is_some_and(|last| last.will_wake(waker)) {
            return;
        }
        deferred.push(waker.clone());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.deferred.borrow().is_empty()
    }

    /// True while the deferred wakers are being woken: the scheduler queues
    /// what they schedule as yields (back of the queue, never a LIFO slot).
    pub(crate) fn is_waking(&self) -> bool {
        self.waking.get()
    }

    /// Wakes every deferred waker, in the order they were deferred.
    pub(crate) fn wake(&self) {
        if self.is_empty() {
            return;
        }
        struct Reset<'a>(&'a Cell<bool>, bool);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _reset = Reset(&self.waking, self.waking.replace(true));
        let mut wakers = std::mem::take(&mut *self.deferred.borrow_mut());
        for waker in wakers.drain(..) {
            waker.wake();
        }
        // Keep the allocation for the next round.
        let mut deferred = self.deferred.borrow_mut();
        if deferred.is_empty() {
            *deferred = wakers;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    struct Recorder {
        id: usize,
        log: Arc<Mutex<Vec<usize>>>,
        wakes: AtomicUsize,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, SeqCst);
            self.log.lock().unwrap().push(self.id);
        }
    }

    #[test]
    fn wakes_in_order_once_each() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let recs: Vec<Arc<Recorder>> = (0..3)
            .map(|id| {
                Arc::new(Recorder {
                    id,
                    log: log.clone(),
                    wakes: AtomicUsize::new(0),
                })
            })
            .collect();
        let wakers: Vec<Waker> = recs.iter().map(|r| Waker::from(r.clone())).collect();
        let defer = Defer::new();
        assert!(defer.is_empty());
        defer.defer(&wakers[0]);
        defer.defer(&wakers[0]); // same task twice in a row: kept once
        defer.defer(&wakers[1]);
        defer.defer(&wakers[2]);
        assert!(!defer.is_empty());
        assert!(!defer.is_waking());
        defer.wake();
        assert!(defer.is_empty());
        assert!(!defer.is_waking());
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2]);
        assert!(recs.iter().all(|r| r.wakes.load(SeqCst) == 1));
        defer.wake();
        assert_eq!(log.lock().unwrap().len(), 3);
    }
}
