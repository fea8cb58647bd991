//! Timers on the runtime's wheel: `rt_timer_start`, `rt_timer_stop`. The
//! table, its stop-vs-fire rules and the tasks that make the calls are
//! `rt_core::callback`'s (`timer/`); this is their C face.

use crate::callback::{rt_callback, status_code, stopped_code};
use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::callback::{Status, TimerCallback};
use std::ffi::{c_int, c_void};
use std::time::Duration;

/// A timer id: generational, so a stale id is refused with `RT_ENOENT`.
pub type rt_timer_id = u64;

/// The C callback of a timer and its argument: `Copy`, so the table hands
/// a copy to each call without allocating.
#[derive(Clone, Copy)]
pub(crate) struct CTimer {
    f: unsafe extern "C" fn(*mut c_void, c_int),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread; we
// only copy the pointer around and hand it back to C.
unsafe impl Send for CTimer {}
// SAFETY: as above; a shared `CTimer` is only copied, never mutated.
unsafe impl Sync for CTimer {}

impl TimerCallback for CTimer {
    fn call(&self, status: Status) {
        // SAFETY: a C function pointer with the documented signature.
        unsafe { (self.f)(self.arg, status_code(status)) }
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
        let period = (repeat_ms > 0).then(|| Duration::from_millis(repeat_ms));
        // `*out` gets the id before any call can run: the first call may
        // stop the timer.
        let out = |id| {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(id) }
        };
        let started = rt.timer_start_with(
            Duration::from_millis(timeout_ms),
            period,
            CTimer { f, arg },
            out,
        );
        status(started)
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
        // (A racing shutdown claimed the final call: RT_ESHUTDOWN.)
        match rt.timer_stop(id) {
            Ok(stopped) => stopped_code(stopped),
            Err(e) => code(&e),
        }
    })
}
