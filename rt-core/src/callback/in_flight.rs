//! [`InFlight`]: a count of calls under way plus a gate that stops new
//! ones, for a binding whose callbacks call into a foreign runtime (a
//! Python interpreter) that must not be entered past some point: a
//! runtime's shutdown, the interpreter's exit.
//!
//! The rule is a Dekker pair: a call first counts itself, then checks the
//! gate; a closer first shuts the gate, then reads the count, with a SeqCst
//! fence between the two steps on each side (which also makes the pair
//! hold under loom, whose SeqCst accesses alone are only AcqRel).
//! Either the closer sees the call counted (and may wait for it), or the
//! call sees the gate shut (and is not made). A call never starts unseen
//! after [`close`](InFlight::close) returns.

use crate::loom::{fence, AtomicBool, AtomicUsize};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// Calls under way, and the gate (see the module's doc).
#[derive(Debug)]
pub struct InFlight {
    running: AtomicUsize,
    closed: AtomicBool,
}

/// One call counted by an [`InFlight`], until dropped.
#[derive(Debug)]
#[must_use = "the call is counted until the guard is dropped"]
pub struct Entered<'a>(&'a InFlight);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // Saturating: a call counted before a `fork()` may end in the
        // child, whose count was reset (`reset_after_fork`).
        let _ = self
            .0
            .running
            .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
    }
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl InFlight {
    /// Open, nothing under way (`const`: usable in a `static`).
    #[cfg(not(loom))]
    pub const fn new() -> InFlight {
        InFlight {
            running: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Open, nothing under way.
    #[cfg(loom)]
    pub fn new() -> InFlight {
        InFlight {
            running: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Counts a call until the guard drops; None (nothing counted) once
    /// the gate is closed: the call must not be made.
    pub fn enter(&self) -> Option<Entered<'_>> {
        let entered = self.track();
        fence(SeqCst);
        if self.closed.load(SeqCst) {
            return None;
        }
        Some(entered)
    }

    /// Counts a call until the guard drops, whether or not the gate is
    /// closed (for work that must end before a wait returns but is not
    /// refused, e.g. jobs already handed to a pool).
    pub fn track(&self) -> Entered<'_> {
        self.running.fetch_add(1, SeqCst);
        Entered(self)
    }

    /// Closes the gate: no [`enter`](Self::enter) succeeds from now on.
    pub fn close(&self) {
        self.closed.store(true, SeqCst);
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// True when no call is counted. After [`close`](Self::close) on
    /// this thread, true means no call can start any more.
    pub fn is_idle(&self) -> bool {
        fence(SeqCst);
        self.running.load(SeqCst) == 0
    }

    /// Waits (polling every 100 µs; a caller holding a lock the calls need,
    /// such as Python's GIL, must let it go first) until no call is
    /// counted, for at most `limit` (None: no limit). False if one still is.
    pub fn wait_idle(&self, limit: Option<Duration>) -> bool {
        let deadline = limit.and_then(|l| Instant::now().checked_add(l));
        while !self.is_idle() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        true
    }

    /// In a child of `fork()`: nothing is under way (the calls counted were
    /// the parent's threads'); the gate keeps its state. Async-signal-safe
    /// (one atomic store), as an atfork handler must be. Limit: a call that
    /// forks from inside its count ends in the child too, and its guard's
    /// decrement then hides one call of the child (the decrement saturates,
    /// so the count never wraps).
    pub fn reset_after_fork(&self) {
        self.running.store(0, SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_until_dropped_and_refuses_once_closed() {
        let f = InFlight::new();
        let a = f.enter().expect("open");
        let b = f.track();
        assert!(!f.is_idle());
        f.close();
        assert!(f.is_closed());
        assert!(f.enter().is_none(), "entered after close");
        assert!(!f.is_idle(), "a refused enter left a count behind");
        drop(a);
        drop(b);
        assert!(f.is_idle());
        let _still_tracked = f.track();
        assert!(!f.is_idle());
    }

    #[test]
    fn wait_idle_waits_for_the_calls_and_times_out_otherwise() {
        let f = Arc::new(InFlight::new());
        let entered = f.track();
        assert!(!f.wait_idle(Some(Duration::from_millis(5))));
        drop(entered);
        let f2 = f.clone();
        let t = std::thread::spawn(move || {
            let _e = f2.track();
            std::thread::sleep(Duration::from_millis(20));
        });
        while f.is_idle() && !t.is_finished() {
            std::thread::yield_now();
        }
        assert!(f.wait_idle(None));
        t.join().unwrap();
    }

    #[test]
    fn a_reset_count_saturates_when_older_guards_end() {
        let f = InFlight::new();
        let old = f.track();
        f.reset_after_fork();
        assert!(f.is_idle());
        drop(old);
        assert!(f.is_idle(), "the count wrapped below zero");
        let _new = f.track();
        assert!(!f.is_idle());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// The Dekker pair: a closer that finds the count idle after closing
    /// never has a call start after it.
    #[test]
    fn loom_no_call_starts_unseen_after_close() {
        loom::model(|| {
            let f = Arc::new(InFlight::new());
            let made = Arc::new(AtomicBool::new(false));
            let (f2, made2) = (f.clone(), made.clone());
            let caller = loom::thread::spawn(move || {
                if let Some(_e) = f2.enter() {
                    made2.store(true, SeqCst);
                }
            });
            f.close();
            if f.is_idle() {
                // Seen idle after closing: the call was refused or has
                // already ended; it can't be made later.
                let made_now = made.load(SeqCst);
                caller.join().unwrap();
                assert_eq!(
                    made.load(SeqCst),
                    made_now,
                    "a call started after close saw idle"
                );
            } else {
                caller.join().unwrap();
            }
            assert!(f.is_idle());
        });
    }
}
