//! Timers on the runtime's wheel: `rt_timer_start`, `rt_timer_stop`.
//!
//! A runtime's timers live in one table (`table.rs`), as libuv keeps a
//! timer inside its `uv_timer_t`: a slot holds the callback, the period,
//! the deadline and where the timer is in its life; the wheel holds only an
//! alarm naming the slot by id (`rt_core::time::Alarms`). Starting a timer
//! allocates nothing of its own and takes two locks (the table's, then the
//! wheel's). When the alarm fires, the slot's id is queued for a call: on a
//! current-thread runtime one caller task makes the calls in firing order
//! (deadline order; ties in start order), one per poll; a multi-thread
//! runtime spawns a task per expiry, so calls spread over the workers.

mod table;

use crate::callback::rt_callback;
use crate::calls::this_thread;
use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{live_runtime_ref, rt_runtime, runtime_ref};
use rt_core::runtime::{Handle, RuntimeFlavor};
use rt_core::time::{AlarmKey, AlarmTarget, Alarms, Instant};
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Weak};
use std::time::Duration;
use table::{later, Cb, Then, TimerTable};

/// A timer id: generational, so a stale id is refused with `RT_ENOENT`.
pub type rt_timer_id = u64;

/// A runtime's timers: the table, the wheel's alarms, and the tasks that
/// make the calls.
pub(crate) struct Timers {
    runtime: Handle,
    alarms: Alarms,
    table: TimerTable<AlarmKey>,
}

impl Timers {
    pub(crate) fn new(runtime: Handle) -> Arc<Timers> {
        let task_per_call = runtime.runtime_flavor() == RuntimeFlavor::MultiThread;
        Arc::new_cyclic(|me| Timers {
            alarms: Alarms::new(&runtime, me.clone() as Weak<dyn AlarmTarget>),
            runtime,
            table: TimerTable::new(task_per_call),
        })
    }

    /// Arms the timer named `id` for `deadline`: its key, or `None` if the
    /// deadline is already due (or the runtime shut down).
    fn arm(&self, deadline: Instant, id: u64) -> Option<AlarmKey> {
        self.alarms.arm(deadline, id).ok()
    }

    /// Starts what the table asked for, outside its lock.
    fn then(self: &Arc<Self>, what: Then) {
        match what {
            Then::Nothing => {}
            Then::Caller => {
                let caller = Caller {
                    timers: self.clone(),
                    next: None,
                    finished: false,
                };
                // Refused after shutdown: dropping `caller` gives what is
                // queued its final call.
                drop(self.runtime.spawn(caller.run()));
            }
            Then::Call(id) => {
                let call = QueuedCall {
                    timers: self.clone(),
                    id,
                    called: false,
                };
                // Refused after shutdown: dropping `call` makes the final
                // RT_ECANCELED call.
                drop(self.runtime.spawn(async move { call.run() }));
            }
            Then::Cancel(id) => self.make_call(id, RT_ECANCELED),
        }
    }

    /// Makes the call of queued timer `id`: `status` 0 for an expiry (then
    /// re-arms a repeating timer), `RT_ECANCELED` for the final call of a
    /// timer whose call was dropped at shutdown. A timer stopped since it
    /// was queued is skipped.
    fn make_call(self: &Arc<Self>, id: u64, status: c_int) {
        let Some(call) = self.table.claim(id, status, this_thread()) else {
            return;
        };
        call.cb.call(status);
        let then = self
            .table
            .finish(call, |deadline, id| self.arm(deadline, id));
        self.then(then);
    }

    /// Gives every queued call its final `RT_ECANCELED` (the caller task was
    /// dropped: shutdown).
    fn cancel_queued(self: &Arc<Self>) {
        while let Some(id) = self.table.next_queued() {
            self.make_call(id, RT_ECANCELED);
        }
    }
}

impl Timers {
    /// Runtime shutdown: no timer starts or re-arms from now on, and every
    /// timer armed or queued gets its final `RT_ECANCELED` call here, on
    /// this thread, before this returns. A call running now is left to end
    /// on its thread (a repeat's final call follows it there).
    pub(crate) fn close(&self) {
        let pending = self.table.close(|key| {
            self.alarms.disarm(key);
        });
        for cb in pending {
            cb.call(RT_ECANCELED);
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        // The last reference went. Shutdown closed the table, so no timer
        // is left armed or queued; this only guards the "exactly one final
        // call" rule should one ever be (alarms still in the wheel can no
        // longer reach the table: the wheel holds it weakly).
        for cb in self.table.take_pending() {
            cb.call(RT_ECANCELED);
        }
    }
}

/// The wheel fired a timer (or the runtime shut down): queue its call.
impl AlarmTarget for Timers {
    fn fire(self: Arc<Self>, id: u64, shutdown: bool) {
        let then = self.table.fired(id, shutdown);
        self.then(then);
    }
}

/// The task that makes queued calls on a current-thread runtime.
struct Caller {
    timers: Arc<Timers>,
    /// The next call, taken off the queue, waiting for the next poll.
    next: Option<u64>,
    /// Set when it returns normally: a new caller may own the queue then.
    finished: bool,
}

impl Caller {
    /// One call per poll. It yields only while calls are left: a yield
    /// after the last one would leave a task ready for nothing (one more
    /// host wake per timer expiry, the backend fd readable after a run
    /// that made every call).
    async fn run(mut self) {
        self.next = self.timers.table.next_queued();
        while let Some(id) = self.next.take() {
            self.timers.make_call(id, 0);
            self.next = self.timers.table.next_queued();
            if self.next.is_some() {
                rt_core::task::yield_now().await;
            }
        }
        self.finished = true;
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if !self.finished {
            // In firing order: the call it held, then the queue.
            if let Some(id) = self.next.take() {
                self.timers.make_call(id, RT_ECANCELED);
            }
            self.timers.cancel_queued();
        }
    }
}

/// One expiry's call on a multi-thread runtime. Dropped before it ran
/// (shutdown), it makes the final `RT_ECANCELED` call.
struct QueuedCall {
    timers: Arc<Timers>,
    id: u64,
    called: bool,
}

impl QueuedCall {
    fn run(mut self) {
        self.called = true;
        self.timers.make_call(self.id, 0);
    }
}

impl Drop for QueuedCall {
    fn drop(&mut self) {
        if !self.called {
            self.timers.make_call(self.id, RT_ECANCELED);
        }
    }
}

/// Arms a timer: `cb(arg, 0)` runs on a runtime thread once `timeout_ms`
/// has passed (never earlier), then every `repeat_ms` if that is not 0.
/// Ticks are 1 ms; a repeating timer that falls behind skips to the next
/// period instead of firing in a burst. On a current-thread runtime the
/// calls run in deadline order, timers due in the same millisecond in the
/// order they were started. A waiting timer costs no task: its call is
/// scheduled when it fires.
///
/// `*out` receives the timer's id (for `rt_timer_stop`). A one-shot timer
/// is done after its call (its id then gives `RT_ENOENT`). A timer still
/// armed at shutdown (or fired, its call not started) gets one final call
/// with `RT_ECANCELED` before `rt_runtime_shutdown` returns; a repeating
/// timer whose call runs at shutdown gets it right after that call, on
/// the same thread; a stopped one gets none. `arg` must stay valid until
/// the final call or a successful stop, and may be used from any thread.
///
/// Returns 0; `RT_EINVAL` for a NULL `rt`, `cb` or `out`; `RT_ESHUTDOWN`.
/// On error `cb` is never called. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_timer_start(
    rt: *const rt_runtime,
    timeout_ms: u64,
    repeat_ms: u64,
    cb: rt_callback,
    arg: *mut c_void,
    out: *mut rt_timer_id,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let (Some(f), false) = (cb, out.is_null()) else {
            return RT_EINVAL;
        };
        if let Err(e) = rt.handle() {
            return e;
        }
        let deadline = later(Instant::now(), Duration::from_millis(timeout_ms));
        // (After a shutdown racing with this call the timer's call is
        // refused and the final RT_ECANCELED call is made; still a success.)
        let timers = rt.timers();
        let out = |id| {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(id) }
        };
        match timers
            .table
            .start(Cb { f, arg }, deadline, repeat_ms, out, |deadline, id| {
                timers.arm(deadline, id)
            }) {
            Ok(then) => {
                timers.then(then);
                0
            }
            Err(e) => e,
        }
    })
}

/// Stops a timer. After it returns 0 the callback is not running on any
/// other thread and will not be called again (not even with
/// `RT_ECANCELED`), so `arg` may be freed; called from inside the timer's
/// own callback it returns at once and no further call happens.
///
/// Returns 0; `RT_ENOENT` if the timer already fired (one-shot, including
/// one whose final call is running now), was stopped, or the id is
/// unknown; `RT_EDEADLK` when called from inside another runtime callback
/// while this timer's callback runs on another thread: the timer is
/// stopped (no further call starts) but that call may still be finishing,
/// so `arg` must not be freed yet (waiting there could deadlock two
/// callbacks stopping each other); `RT_EINVAL` for NULL; `RT_ESHUTDOWN`
/// after shutdown. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_timer_stop(rt: *const rt_runtime, id: rt_timer_id) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { live_runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let timers = rt.timers();
        let in_callback = crate::callback::is_in_callback();
        // (A racing shutdown claimed the final call: RT_ESHUTDOWN.)
        let status = timers.table.stop(id, this_thread(), in_callback, |key| {
            timers.alarms.disarm(key);
        });
        crate::error::gone_or_shutdown(rt, status)
    })
}
