//! A host loop drives a current-thread runtime: `rt_run`, `rt_run_budget`,
//! `rt_stop`, `rt_wake`, `rt_backend_fd`, `rt_backend_timeout` (the C face
//! of `CallbackRuntime`'s host-driven mode).

use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::runtime::RunMode;
use std::ffi::c_int;
use std::time::Duration;

/// How `rt_run` runs: one of `RT_RUN_DEFAULT`, `RT_RUN_ONCE`,
/// `RT_RUN_NOWAIT`.
pub type rt_run_mode = u32;
/// Run until `rt_stop` or no work is left (no live callback task, timer,
/// fd registration, poll task or blocking job), blocking while waiting for
/// I/O and timers.
pub const RT_RUN_DEFAULT: rt_run_mode = 0;
/// Run what is ready; if nothing is, block until something ran, or until
/// `rt_wake` / `rt_stop`.
pub const RT_RUN_ONCE: rt_run_mode = 1;
/// Run what is ready now and return; never block.
pub const RT_RUN_NOWAIT: rt_run_mode = 2;

/// A count of callbacks as a return value.
fn count(n: Result<usize, rt_core::callback::Error>) -> c_int {
    match n {
        Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
        Err(e) => code(&e),
    }
}

/// Drives a current-thread runtime (`RT_FLAVOR_CURRENT_THREAD`) on the
/// calling thread, like libuv's `uv_run`: callbacks, timers and fd
/// callbacks run here, in FIFO order.
///
/// - `RT_RUN_DEFAULT`: runs until `rt_stop` or until no work is left (no
///   live callback task, timer, fd registration, poll task or blocking
///   job); blocks while waiting for I/O and timers. `rt_wake` only makes
///   it re-check whether work is left.
/// - `RT_RUN_ONCE`: runs what is ready; if no callback ran, blocks until
///   at least one did, or until `rt_wake` / `rt_stop` (then it may return
///   0). It blocks even when no work is left: a cross-thread
///   `rt_spawn` or `rt_wake` ends the wait.
/// - `RT_RUN_NOWAIT`: polls I/O and timers without waiting, runs the
///   callbacks ready at that point (the ones they schedule run on the next
///   call) and returns; never blocks.
///
/// A pending `rt_stop` makes it return 0 at once; every return consumes
/// pending `rt_stop` and `rt_wake` requests. A shutdown from another
/// thread makes it return after the callback it runs (`rt_runtime_shutdown`
/// waits for that, up to its timeout).
///
/// Returns the number of C callbacks it ran (>= 0; the library's internal
/// steps, such as arming a timer, are not counted); `RT_EINVAL` for NULL,
/// an unknown mode or a multi-thread runtime (its workers run
/// everything); `RT_EDEADLK` from inside a callback; `RT_ESHUTDOWN`.
/// Call it from one thread at a time (a concurrent call returns 0).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_run(rt: *const rt_runtime, mode: rt_run_mode) -> c_int {
    ffi_guard(|| {
        let mode = match mode {
            RT_RUN_DEFAULT => RunMode::Default,
            RT_RUN_ONCE => RunMode::Once,
            RT_RUN_NOWAIT => RunMode::NoWait,
            _ => return RT_EINVAL,
        };
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) } {
            Ok(rt) => count(rt.run(mode)),
            Err(e) => e,
        }
    })
}

/// Runs ready work of a current-thread runtime on the calling thread for a
/// host that drives it from its own loop (a game frame): polls I/O with a
/// zero timeout, expires timers, then runs ready callbacks and tasks in
/// FIFO order until `budget_us` microseconds have passed or
/// `max_callbacks` tasks ran (or `rt_stop`). Never blocks; what is left
/// runs on the next call, in the same order. The budget is checked before
/// each task but the first: a call overruns it by at most one callback,
/// and with a task ready it runs at least one (if `max_callbacks` > 0),
/// however small the budget, so a host on a loaded machine (where the
/// I/O poll alone may use the budget up) still makes progress. Each callback is
/// one task; the library's own steps (arming a timer, re-checking an fd
/// that stayed ready) are tasks too and count towards `max_callbacks`.
///
/// Returns the number of C callbacks it ran (>= 0); `RT_EINVAL` for
/// NULL or a multi-thread runtime; `RT_EDEADLK` from inside a callback;
/// `RT_ESHUTDOWN`. Call it from one thread at a time (a concurrent call
/// returns 0).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_run_budget(
    rt: *const rt_runtime,
    budget_us: u64,
    max_callbacks: u32,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) } {
            Ok(rt) => {
                count(rt.run_budget(Duration::from_micros(budget_us), max_callbacks as usize))
            }
            Err(e) => e,
        }
    })
}

/// Makes the running `rt_run` / `rt_run_budget` of a current-thread runtime
/// return after the callback it is running (or the next call return 0 at
/// once, if none runs now). Repeated stops before that return count once.
///
/// Returns 0; `RT_EINVAL` for NULL or a multi-thread runtime;
/// `RT_ESHUTDOWN`. Thread-safe, also from inside callbacks.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_stop(rt: *const rt_runtime) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) } {
            Ok(rt) => status(rt.stop()),
            Err(e) => e,
        }
    })
}

/// Wakes the thread that drives a current-thread runtime, like libuv's
/// `uv_async_send`: a blocking `rt_run(RT_RUN_ONCE)` returns (maybe
/// having run nothing), and `rt_backend_fd` becomes readable. A running
/// `RT_RUN_DEFAULT` keeps running. Coalescing: wakes made before the next
/// `rt_run*` call returns count as one.
///
/// Returns 0; `RT_EINVAL` for NULL or a multi-thread runtime. Works after
/// shutdown too (there is nothing to wake: it returns 0).
///
/// Thread-safe and async-signal-safe: it takes no lock and allocates
/// nothing (one atomic exchange, at most one `write(2)` to an eventfd), so
/// a signal handler may call it.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_wake(rt: *const rt_runtime) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) } {
            // Lock-free: no shutdown check.
            Ok(rt) => status(rt.wake()),
            Err(e) => e,
        }
    })
}

/// A file descriptor for a host that waits in its own `poll`/`epoll`/
/// `select` (like libuv's `uv_backend_fd`): it becomes readable when the
/// current-thread runtime has work (an fd event, a timer due, a callback
/// spawned from another thread, work left over by `rt_run_budget`,
/// `rt_wake`). Pattern: wait for it with `rt_backend_timeout` as the
/// timeout, then call `rt_run(rt, RT_RUN_NOWAIT)` or `rt_run_budget`.
/// Level-triggered: it stays readable until such a call ran the work, and
/// a call that left nothing to do leaves it unreadable (one wake per timer
/// deadline). It may also become readable with nothing to run (a stale
/// wake): the run call then returns 0.
///
/// Ownership: the runtime owns the fd; do not read from it or close it. It
/// stays valid until `rt_runtime_free`. Every call returns the same fd.
///
/// Returns the fd (>= 0); `RT_EINVAL` for NULL or a multi-thread runtime;
/// `RT_ESHUTDOWN`; `-errno` if the OS refuses the timerfd behind it.
/// Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_backend_fd(rt: *const rt_runtime) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) }.map(|rt| rt.backend_fd()) {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => code(&e),
            Err(e) => e,
        }
    })
}

/// How long (in ms) a host may wait on `rt_backend_fd` before it must run
/// the current-thread runtime: 0 if callbacks are ready now, else the time
/// until the earliest timer deadline (rounded up to whole ms, at most
/// `INT_MAX`; timer deadlines themselves round up to the runtime's 1 ms
/// tick, so a timer started with `timeout_ms` reports up to
/// `timeout_ms + 1`), -1 if no timer is armed (only an fd event or another
/// thread can bring work). The backend fd becomes readable at that
/// deadline, once.
///
/// Returns the timeout (>= -1); `RT_EINVAL` for NULL or a multi-thread
/// runtime; `RT_ESHUTDOWN`. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_backend_timeout(rt: *const rt_runtime) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) }.map(|rt| rt.backend_timeout()) {
            Ok(Ok(timeout)) => timeout_ms(timeout),
            Ok(Err(e)) => code(&e),
            Err(e) => e,
        }
    })
}

/// Rounds a wait up to whole milliseconds (a host waiting in `poll` must
/// not wake before the timer is due), clamped to `c_int::MAX`; `None` is -1.
fn timeout_ms(timeout: Option<Duration>) -> c_int {
    match timeout {
        None => -1,
        Some(d) => c_int::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(7))), 7);
        assert_eq!(timeout_ms(Some(Duration::from_secs(1 << 40))), c_int::MAX);
    }
}
