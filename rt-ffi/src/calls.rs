//! The stop guarantee of I/O registrations (the timer table keeps its own,
//! with the same rules, in `timer.rs`).
//!
//! A callback runs between `begin` and `end` under this gate. `stop`
//! marks the gate stopped and, unless called from inside the callback on
//! the same thread, waits until the callback is not running. After `stop`
//! returns, the callback is not running and will not be called again.

use rt_core::task::AbortHandle;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::sync::{Condvar, Mutex};

/// Outcome of `CallGate::stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Stopped, and no call is running (except the caller's own).
    Done,
    /// Stopped, but a call is still finishing on another thread.
    StillRunning,
    /// It was already stopped (or its last call was claimed).
    Already,
}

impl Stopped {
    /// The C status of a stop: 0, `RT_EDEADLK` (stopped, still finishing:
    /// do not free `arg` yet), or `RT_ENOENT`.
    pub(crate) fn to_status(self) -> std::ffi::c_int {
        match self {
            Stopped::Done => 0,
            Stopped::StillRunning => crate::error::RT_EDEADLK,
            Stopped::Already => crate::error::RT_ENOENT,
        }
    }
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

/// A gate plus the task that makes the calls (fd registrations: a stop
/// also cancels their task, which would otherwise wait for readiness).
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
    pub(crate) fn stop_and_cancel(&self) -> Stopped {
        let res = self.gate.stop();
        if res != Stopped::Already {
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
    /// then it reports `StillRunning` without waiting.
    pub(crate) fn stop(&self) -> Stopped {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return Stopped::Already;
        }
        s.stopped = true;
        self.stopped.store(true, Release);
        let me = this_thread();
        while let Some(t) = s.running_on {
            if t == me {
                // Called from inside the callback: it returns right after.
                break;
            }
            if crate::callback::is_in_callback() {
                return Stopped::StillRunning;
            }
            s.waiters += 1;
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            s.waiters -= 1;
        }
        Stopped::Done
    }
}
