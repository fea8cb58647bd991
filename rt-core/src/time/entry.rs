//! The state one timer shares with the driver.
//!
//! The driver fires a timer by setting its state and then taking its waker;
//! a polling timer stores its waker and then reads the state. Both sides
//! take the waker lock, so either the poller sees the new state or the
//! driver sees the waker: no lost wakeup (a loom model checks it).

use crate::loom::{AtomicUsize, Mutex};
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::task::{Context, Poll, Waker};

const WAITING: usize = 0;
const FIRED: usize = 1;
const SHUTDOWN: usize = 2;

/// Why a timer completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fired {
    /// Its deadline passed.
    Elapsed,
    /// The runtime's time driver shut down first.
    Shutdown,
}

/// Shared by a timer (`Sleep`) and the wheel entry that refers to it.
#[derive(Debug)]
pub(crate) struct TimerShared {
    state: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl TimerShared {
    pub(crate) fn new() -> TimerShared {
        TimerShared {
            state: AtomicUsize::new(WAITING),
            waker: Mutex::new(None),
        }
    }

    /// Marks the timer fired (or shut down) and wakes its task. The first
    /// of the two wins.
    pub(crate) fn fire(&self, how: Fired) {
        let new = match how {
            Fired::Elapsed => FIRED,
            Fired::Shutdown => SHUTDOWN,
        };
        if self
            .state
            .compare_exchange(WAITING, new, AcqRel, Acquire)
            .is_err()
        {
            return;
        }
        let waker = self.waker.lock().unwrap().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The outcome, once fired.
    pub(crate) fn state(&self) -> Option<Fired> {
        match self.state.load(Acquire) {
            FIRED => Some(Fired::Elapsed),
            SHUTDOWN => Some(Fired::Shutdown),
            _ => None,
        }
    }

    /// Ready once fired; otherwise keeps the task's waker for the driver.
    pub(crate) fn poll_fired(&self, cx: &mut Context<'_>) -> Poll<Fired> {
        if let Some(f) = self.state() {
            return Poll::Ready(f);
        }
        {
            let mut slot = self.waker.lock().unwrap();
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        match self.state() {
            Some(f) => Poll::Ready(f),
            None => Poll::Pending,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(crate::loom::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Fire vs poll: a pending poll is always followed by a wake.
    #[test]
    fn fire_vs_poll_no_lost_wakeup() {
        loom::model(|| {
            let t = Arc::new(TimerShared::new());
            let t2 = t.clone();
            let driver = loom::thread::spawn(move || t2.fire(Fired::Elapsed));
            let flag = Arc::new(Flag(crate::loom::AtomicBool::new(false)));
            let waker = Waker::from(flag.clone());
            let mut cx = Context::from_waker(&waker);
            let first = t.poll_fired(&mut cx);
            driver.join().unwrap();
            if first.is_pending() {
                assert!(
                    flag.0.load(std::sync::atomic::Ordering::SeqCst),
                    "lost wakeup"
                );
            }
            assert_eq!(t.poll_fired(&mut cx), Poll::Ready(Fired::Elapsed));
        });
    }

    /// Cancel (the wheel entry is removed under the wheel lock) vs fire
    /// (the driver popped it under the same lock): exactly one side owns
    /// the entry, and a fire racing with shutdown fires once.
    #[test]
    fn cancel_vs_fire_exactly_one_owner() {
        loom::model(|| {
            let wheel = Arc::new(crate::loom::Mutex::new(Some(Arc::new(TimerShared::new()))));
            let w2 = wheel.clone();
            let driver = loom::thread::spawn(move || {
                let popped = w2.lock().unwrap().take();
                if let Some(t) = popped {
                    t.fire(Fired::Elapsed);
                    t.fire(Fired::Shutdown);
                    assert_eq!(t.state(), Some(Fired::Elapsed));
                    true
                } else {
                    false
                }
            });
            let cancelled = wheel.lock().unwrap().take().is_some();
            let fired = driver.join().unwrap();
            assert!(cancelled ^ fired, "entry owned by both or neither");
        });
    }
}
