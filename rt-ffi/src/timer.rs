//! Timers on the runtime's wheel: `rt_timer_start`, `rt_timer_stop`.

use crate::callback::rt_callback;
use crate::calls::CallGate;
use crate::error::*;
use crate::guard::ffi_guard;
use crate::registry::Registry;
use crate::runtime::{live_runtime_ref, rt_runtime, runtime_ref};
use rt_core::runtime::{Handle, RuntimeFlavor};
use rt_core::time::{Instant, WakeAt};
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::Duration;

/// A timer id: generational, so a stale id is refused with `RT_ENOENT`.
pub type rt_timer_id = u64;

/// A timer's shared control block. It is also the waker of its wheel
/// entry: a timer waits with no task; when it fires, `wake` hands its call
/// to `TimerCalls` (so calls run in deadline order, ties in start order,
/// on a current-thread runtime).
pub(crate) struct TimerCtl {
    gate: CallGate,
    cb: Cb,
    calls: Arc<TimerCalls>,
    /// Set right after the registry insert, before the timer is armed.
    id: AtomicU64,
    /// Repeat period in ms; zero for a one-shot timer.
    period_ms: u64,
    armed: Mutex<Armed>,
}

/// The current deadline and its wheel entry.
struct Armed {
    deadline: Instant,
    /// `None` between a call and the re-arm, and once stopped.
    entry: Option<WakeAt>,
}

pub(crate) type TimerRegistry = Registry<Arc<TimerCtl>>;

/// The C callback and its argument.
#[derive(Clone, Copy)]
struct Cb {
    f: unsafe extern "C" fn(*mut c_void, c_int),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread; we
// only copy the pointer around and hand it back to C.
unsafe impl Send for Cb {}
// SAFETY: as above: shared access only reads the two pointers.
unsafe impl Sync for Cb {}

impl Cb {
    fn call(self, status: c_int) {
        // SAFETY: a C function pointer with the documented signature.
        crate::callback::in_callback(|| unsafe { (self.f)(self.arg, status) })
    }
}

impl TimerCtl {
    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the timer on the wheel for `deadline` (its current one). A stop that
    /// came meanwhile takes it off again.
    fn arm(self: &Arc<Self>, deadline: Instant) {
        // Outside the lock: a deadline already processed wakes right here.
        let entry = WakeAt::new(&self.calls.runtime, deadline, Waker::from(self.clone()));
        self.lock().entry = Some(entry);
        if self.gate.is_stopped() {
            self.disarm();
        }
    }

    /// Takes the timer off the wheel (a no-op once it fired).
    fn disarm(&self) {
        let entry = self.lock().entry.take();
        drop(entry);
    }

    /// Moves a repeating timer's deadline one period on (skipping the
    /// periods it fell behind: no burst) and arms it.
    fn rearm(self: &Arc<Self>) {
        let deadline = {
            let mut armed = self.lock();
            let period = Duration::from_millis(self.period_ms);
            let mut deadline = later(armed.deadline, period);
            let now = Instant::now();
            if deadline <= now {
                let behind = now.duration_since(deadline).as_nanos();
                let skip = behind / period.as_nanos() + 1;
                let skip = u32::try_from(skip).unwrap_or(u32::MAX);
                deadline = later(deadline, period.saturating_mul(skip));
            }
            armed.deadline = deadline;
            deadline
        };
        self.arm(deadline);
    }
}

/// `t + d`, or 30 years on for a `d` too large to add (the wheel clamps
/// far deadlines to its horizon anyway).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(86_400 * 365 * 30))
}

/// The wheel fired the timer (or the runtime shut down): queue its call.
impl Wake for TimerCtl {
    fn wake(self: Arc<Self>) {
        let calls = self.calls.clone();
        calls.push(FinalCall {
            ctl: self,
            armed: true,
        });
    }
}

/// Where fired timers wait for their call. On a current-thread runtime one
/// task makes the calls, one per poll, in firing order (deadline order),
/// yielding between them so other tasks and the host's time budget get
/// their turn: no allocation per expiry. A multi-thread runtime spawns a
/// task per expiry instead, so calls spread over the workers.
pub(crate) struct TimerCalls {
    runtime: Handle,
    /// The runtime's timers by id.
    registry: Arc<TimerRegistry>,
    queue: Mutex<CallQueue>,
}

#[derive(Default)]
struct CallQueue {
    fired: VecDeque<FinalCall>,
    /// A caller task is spawned and will take what is queued.
    running: bool,
}

impl TimerCalls {
    pub(crate) fn new(runtime: Handle, registry: Arc<TimerRegistry>) -> Arc<TimerCalls> {
        Arc::new(TimerCalls {
            runtime,
            registry,
            queue: Mutex::new(CallQueue::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(self: &Arc<Self>, call: FinalCall) {
        if self.runtime.runtime_flavor() == RuntimeFlavor::MultiThread {
            // Refused after shutdown: the future is dropped unpolled and
            // the guard makes the final RT_ECANCELED call.
            drop(self.runtime.spawn(async move { make_call(call) }));
            return;
        }
        let spawn = {
            let mut q = self.lock();
            q.fired.push_back(call);
            !std::mem::replace(&mut q.running, true)
        };
        if spawn {
            let caller = Caller {
                calls: self.clone(),
                finished: false,
            };
            // Refused after shutdown: dropping `caller` gives what is
            // queued its final call.
            drop(self.runtime.spawn(caller.run()));
        }
    }

    /// Gives every queued call its final `RT_ECANCELED` (the caller task
    /// was dropped: shutdown).
    fn cancel_queued(&self) {
        let fired = {
            let mut q = self.lock();
            q.running = false;
            std::mem::take(&mut q.fired)
        };
        drop(fired);
    }
}

/// The task that makes queued calls on a current-thread runtime.
struct Caller {
    calls: Arc<TimerCalls>,
    /// Set when it returns normally: a new caller may own the queue then.
    finished: bool,
}

impl Caller {
    async fn run(mut self) {
        loop {
            let next = {
                let mut q = self.calls.lock();
                match q.fired.pop_front() {
                    Some(call) => call,
                    None => {
                        q.running = false;
                        self.finished = true;
                        return;
                    }
                }
            };
            make_call(next);
            rt_core::task::yield_now().await;
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if !self.finished {
            self.calls.cancel_queued();
        }
    }
}

/// One expiry: the call, then the re-arm of a repeating timer.
fn make_call(mut guard: FinalCall) {
    let ctl = guard.ctl.clone();
    // From here on this task decides about the final call.
    guard.armed = false;
    if ctl.period_ms == 0 {
        // A one-shot's expiry is its final call: claim it as such, so a
        // racing rt_timer_stop reports RT_ENOENT.
        if ctl.gate.begin_final() {
            ctl.calls.registry.remove(ctl.id.load(Relaxed));
            ctl.cb.call(0);
            ctl.gate.end();
        }
        return;
    }
    if !ctl.gate.begin() {
        return;
    }
    ctl.cb.call(0);
    if !ctl.gate.end() {
        // Stopped from inside the callback (or meanwhile): done.
        return;
    }
    ctl.rearm();
}

/// Gives a timer its final `RT_ECANCELED` call if its expiry task is
/// dropped before it ran (runtime shutdown).
struct FinalCall {
    ctl: Arc<TimerCtl>,
    armed: bool,
}

impl Drop for FinalCall {
    fn drop(&mut self) {
        if self.armed && self.ctl.gate.begin_final() {
            self.ctl.calls.registry.remove(self.ctl.id.load(Relaxed));
            self.ctl.cb.call(RT_ECANCELED);
            self.ctl.gate.end();
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
/// armed at shutdown gets one final call with `RT_ECANCELED`; a stopped
/// one gets none. `arg` must stay valid until the final call or a
/// successful stop, and may be used from any thread.
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
        let ctl = Arc::new(TimerCtl {
            gate: CallGate::default(),
            cb: Cb { f, arg },
            calls: rt.timer_calls().clone(),
            id: AtomicU64::new(0),
            period_ms: repeat_ms,
            armed: Mutex::new(Armed {
                deadline,
                entry: None,
            }),
        });
        let id = ctl.calls.registry.insert(ctl.clone());
        ctl.id.store(id, Relaxed);
        // Before the timer is armed: its first call may call rt_timer_stop.
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(id) };
        // (After a shutdown racing with this call the wheel wakes it at
        // once: the call is refused and the final RT_ECANCELED call is
        // made; still a success.)
        ctl.arm(deadline);
        0
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
        match rt.timers().remove(id) {
            Some(ctl) => {
                // No task to cancel: a call task spawned already finds the
                // gate stopped.
                let stopped = ctl.gate.stop();
                ctl.disarm();
                stopped.to_status()
            }
            None => RT_ENOENT,
        }
    })
}
