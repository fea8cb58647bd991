//! The stop guarantee shared by timers and I/O registrations.
//!
//! A callback runs between `begin` and `end` under this gate. `stop`
//! marks the gate stopped and, unless called from inside the callback on
//! the same thread, waits until the callback is not running. After `stop`
//! returns, the callback is not running and will not be called again.

use rt_core::task::AbortHandle;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

#[derive(Default)]
pub(crate) struct CallGate {
    state: Mutex<GateState>,
    cv: Condvar,
    /// The task that makes the calls, cancelled by `stop_and_cancel`.
    task: Mutex<Option<AbortHandle>>,
}

#[derive(Default)]
struct GateState {
    stopped: bool,
    running_on: Option<ThreadId>,
}

impl CallGate {
    /// Claims a call. False if stopped.
    pub(crate) fn begin(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return false;
        }
        s.running_on = Some(std::thread::current().id());
        true
    }

    /// Ends a call. Returns false if a stop arrived meanwhile.
    pub(crate) fn end(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.running_on = None;
        self.cv.notify_all();
        !s.stopped
    }

    /// Records the task that makes the calls.
    pub(crate) fn set_task(&self, task: AbortHandle) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// `stop`, then cancels the task (no final call: the gate is closed).
    /// False if it was already stopped.
    pub(crate) fn stop_and_cancel(&self) -> bool {
        if !self.stop() {
            return false;
        }
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            task.abort();
        }
        true
    }

    /// Stops the gate; waits for a running call on another thread. Returns
    /// false if it was already stopped.
    pub(crate) fn stop(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stopped {
            return false;
        }
        s.stopped = true;
        let me = std::thread::current().id();
        while let Some(t) = s.running_on {
            if t == me {
                // Called from inside the callback: it returns right after.
                break;
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        true
    }
}
