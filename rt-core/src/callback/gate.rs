//! The stop guarantee of fd watches (the timer table keeps its own, with
//! the same rules, in `timer/table.rs`), and the runtime's shutdown flag.
//!
//! A callback runs between `begin` and `end` under this gate. `stop`
//! marks the gate stopped and, unless called from inside the callback on
//! the same thread, waits until the callback is not running. After `stop`
//! returns, the callback is not running and will not be called again.

use crate::task::AbortHandle;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::sync::{Arc, Condvar, Mutex};

/// The runtime's "shutdown has begun" flag, set first thing by
/// [`CallbackRuntime::shutdown`](super::CallbackRuntime::shutdown) and
/// shared with the tasks that make calls (they may outlive the runtime
/// object). A task checks it right before each call with `Status::Ok` and
/// makes none once it is set: what is left is the final `Cancelled` call. A
/// call that passed the check just before another thread's shutdown set the
/// flag may still be running; the shutdown waits for it (it joins the
/// threads), unless it is made from inside a callback or times out.
#[derive(Clone, Default)]
pub struct ShutdownFlag(Arc<AtomicBool>);

impl fmt::Debug for ShutdownFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShutdownFlag").field(&self.is_set()).finish()
    }
}

impl ShutdownFlag {
    /// True once the runtime's shutdown has begun.
    pub fn is_set(&self) -> bool {
        self.0.load(Acquire)
    }

    /// Sets it. SeqCst: pairs with the host runs' check (either a host run
    /// sees the shutdown, or the shutdown sees the run and waits for it).
    pub(crate) fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// As [`is_set`](Self::is_set), SeqCst (see [`set`](Self::set)).
    pub(crate) fn is_set_seqcst(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Names the runtime (nonzero; not reused while this flag lives): what
    /// marks blocking work with the runtime it runs for
    /// ([`in_blocking_work`](super::marks::in_blocking_work)).
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

/// Outcome of a stop (timer stop, watch close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Stopped, and no call is running (except the caller's own): the
    /// callback is never called again.
    Done,
    /// Stopped (no further call starts), but a call is still finishing on
    /// another thread: asked from inside another callback, it did not wait
    /// (two callbacks stopping each other would wait forever). Do not free
    /// what the callback uses yet. (C: `RT_EDEADLK`.)
    StillRunning,
}

/// A cheap identity of the calling thread, unique among live threads: the
/// address of a thread-local (`std::thread::current()` would clone an
/// `Arc` per call). A thread that exited cannot be running a call, so the
/// reuse of its address by a later thread is harmless.
pub(crate) fn this_thread() -> NonZeroUsize {
    thread_local! {
        static MARK: u8 = const { 0 };
    }
    MARK.with(|m| {
        NonZeroUsize::new(m as *const u8 as usize).expect("a thread-local has an address")
    })
}

#[derive(Default)]
pub(crate) struct CallGate {
    state: Mutex<GateState>,
    cv: Condvar,
    /// Mirrors `state.stopped` (set under the lock) for lock-free reads.
    stopped: AtomicBool,
}

/// A gate plus the task that makes the calls (fd watches: a stop also
/// cancels their task, which would otherwise wait for readiness).
#[derive(Default)]
pub(crate) struct TaskGate {
    gate: CallGate,
    /// The task that makes the calls, cancelled by `stop_and_cancel`.
    task: Mutex<Option<AbortHandle>>,
}

impl std::ops::Deref for TaskGate {
    type Target = CallGate;

    fn deref(&self) -> &CallGate {
        &self.gate
    }
}

#[derive(Default)]
struct GateState {
    stopped: bool,
    running_on: Option<NonZeroUsize>,
    /// Stoppers waiting for the running call: `end` skips the condvar's
    /// syscall when there are none.
    waiters: u32,
}

impl CallGate {
    /// Claims a call. False if stopped.
    pub(crate) fn begin(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return false;
        }
        s.running_on = Some(this_thread());
        true
    }

    /// Ends a call. Returns false if a stop arrived meanwhile.
    pub(crate) fn end(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.running_on = None;
        if s.waiters > 0 {
            self.cv.notify_all();
        }
        !s.stopped
    }

    /// Claims the last call: like `begin`, and stops the gate in the same
    /// step, so a concurrent `stop` finds it stopped (and reports that the
    /// entry is gone) instead of succeeding after the final call.
    pub(crate) fn begin_final(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return false;
        }
        s.stopped = true;
        self.stopped.store(true, Release);
        s.running_on = Some(this_thread());
        true
    }

    /// True once stopped (or its last call claimed). Lock-free: a stop
    /// that completed before this call is always seen.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Acquire)
    }
}

impl TaskGate {
    /// Records the task that makes the calls.
    pub(crate) fn set_task(&self, task: AbortHandle) {
        // A stop that came first found no task to cancel: cancel it here, so
        // it does not linger, waiting for readiness that may never come.
        // The task slot is locked across the check: a concurrent
        // `stop_and_cancel` either sees `stopped` set before this check, or
        // looks at the slot after it is filled.
        let mut slot = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if self.gate.is_stopped() {
            task.abort();
        }
        *slot = Some(task);
    }

    /// `stop`, then cancels the task (no final call: the gate is closed).
    pub(crate) fn stop_and_cancel(&self) -> Option<Stopped> {
        let res = self.gate.stop();
        if res.is_some() {
            if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                task.abort();
            }
        }
        res
    }
}

impl CallGate {
    /// Stops the gate: no call starts after this. Waits for a call running
    /// on another thread, unless this thread is itself inside a runtime
    /// callback (two callbacks stopping each other would wait forever):
    /// then it reports `StillRunning` without waiting. `None` if it was
    /// already stopped (or its last call was claimed).
    pub(crate) fn stop(&self) -> Option<Stopped> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return None;
        }
        s.stopped = true;
        self.stopped.store(true, Release);
        let me = this_thread();
        while let Some(t) = s.running_on {
            if t == me {
                // Called from inside the callback: it returns right after.
                break;
            }
            if super::marks::is_in_callback() {
                return Some(Stopped::StillRunning);
            }
            s.waiters += 1;
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            s.waiters -= 1;
        }
        Some(Stopped::Done)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    #[test]
    fn a_stop_waits_for_the_running_call_and_blocks_later_ones() {
        let gate = Arc::new(CallGate::default());
        assert!(gate.begin());
        let ended = Arc::new(AtomicBool::new(false));
        let stopper = {
            let (gate, ended) = (gate.clone(), ended.clone());
            std::thread::spawn(move || {
                let r = gate.stop();
                (r, ended.load(SeqCst))
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        ended.store(true, SeqCst);
        assert!(!gate.end(), "the stop arrived during the call");
        assert_eq!(stopper.join().unwrap(), (Some(Stopped::Done), true));
        assert!(!gate.begin(), "no call after a stop");
        assert_eq!(gate.stop(), None, "stopped already");
        assert!(!gate.begin_final());
    }

    #[test]
    fn a_stop_from_inside_its_own_call_or_another_callback_does_not_wait() {
        let gate = CallGate::default();
        assert!(gate.begin());
        assert_eq!(gate.stop(), Some(Stopped::Done), "its own call");
        gate.end();
        let gate = Arc::new(CallGate::default());
        let g = gate.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (tx2, rx2) = std::sync::mpsc::channel::<()>();
        let caller = std::thread::spawn(move || {
            assert!(g.begin());
            tx.send(()).unwrap();
            rx2.recv().unwrap();
            g.end();
        });
        rx.recv().unwrap();
        let r = super::super::in_callback(|| gate.stop());
        assert_eq!(r, Some(Stopped::StillRunning));
        tx2.send(()).unwrap();
        caller.join().unwrap();
    }
}
