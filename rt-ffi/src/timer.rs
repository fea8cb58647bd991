//! Timers on the runtime's wheel: `rt_timer_start`, `rt_timer_stop`.

use crate::callback::rt_callback;
use crate::calls::CallGate;
use crate::error::*;
use crate::guard::ffi_guard;
use crate::registry::Registry;
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::time::{sleep_until, Instant};
use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

/// A timer id: generational, so a stale id is refused with `RT_ENOENT`.
pub type rt_timer_id = u64;

/// A timer's shared control block.
pub(crate) struct TimerCtl {
    gate: CallGate,
}

pub(crate) type TimerRegistry = Registry<Arc<TimerCtl>>;

/// The C callback and its argument.
#[derive(Clone, Copy)]
struct Cb {
    f: unsafe extern "C" fn(*mut c_void, c_int),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread.
unsafe impl Send for Cb {}

impl Cb {
    fn call(self, status: c_int) {
        // SAFETY: a C function pointer with the documented signature.
        crate::callback::in_callback(|| unsafe { (self.f)(self.arg, status) })
    }
}

/// Gives a timer still armed when its task is dropped (runtime shutdown)
/// its final `RT_ECANCELED` call.
struct FinalCall {
    ctl: Arc<TimerCtl>,
    cb: Cb,
    armed: bool,
}

impl Drop for FinalCall {
    fn drop(&mut self) {
        if self.armed && self.ctl.gate.begin_final() {
            self.cb.call(RT_ECANCELED);
            self.ctl.gate.end();
        }
    }
}

/// Arms a timer: `cb(arg, 0)` runs on a runtime thread once `timeout_ms`
/// has passed (never earlier), then every `repeat_ms` if that is not 0.
/// Ticks are 1 ms; a repeating timer that falls behind skips to the next
/// period instead of firing in a burst.
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
        let handle = match rt.handle() {
            Ok(h) => h,
            Err(e) => return e,
        };
        let cb = Cb { f, arg };
        let ctl = Arc::new(TimerCtl {
            gate: CallGate::default(),
        });
        let registry = rt.timers().clone();
        let id = registry.insert(ctl.clone());
        // Before the task exists: its first callback may call rt_timer_stop.
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(id) };
        let start = Instant::now();
        // Built outside the future: a task dropped before its first poll
        // (shutdown right away) still makes the final call.
        let guard = FinalCall {
            ctl: ctl.clone(),
            cb,
            armed: true,
        };
        let join = handle.spawn(async move {
            let mut guard = guard;
            let period = Duration::from_millis(repeat_ms);
            let mut deadline = start + Duration::from_millis(timeout_ms);
            loop {
                sleep_until(deadline).await;
                if period.is_zero() {
                    // A one-shot's expiry is its final call: claim it as such,
                    // so a racing rt_timer_stop reports RT_ENOENT.
                    guard.armed = false;
                    if guard.ctl.gate.begin_final() {
                        registry.remove(id);
                        cb.call(0);
                        guard.ctl.gate.end();
                    }
                    return;
                }
                if !guard.ctl.gate.begin() {
                    guard.armed = false;
                    return;
                }
                cb.call(0);
                if !guard.ctl.gate.end() {
                    // Stopped from inside the callback (or meanwhile): done.
                    guard.armed = false;
                    return;
                }
                deadline += period;
                let now = Instant::now();
                if deadline <= now {
                    // Behind: skip the missed periods.
                    let behind = now.duration_since(deadline).as_nanos();
                    let skip = behind / period.as_nanos() + 1;
                    deadline += period * (skip as u32);
                }
            }
        });
        // (A shutdown racing with this call drops the task at once: the
        // timer then got its final RT_ECANCELED call; still a success.)
        ctl.gate.set_task(join.abort_handle());
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
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        if rt.is_shutdown() {
            return RT_ESHUTDOWN;
        }
        match rt.timers().remove(id) {
            Some(ctl) => ctl.gate.stop_and_cancel().to_status(),
            None => RT_ENOENT,
        }
    })
}
