//! `block_in_place`: run blocking code on a multi-thread worker without
//! stalling the tasks queued behind it.

use crate::runtime::context;
use crate::scheduler;
use crate::task::coop;

/// Runs `f`, which may block, on the current thread. On a multi-thread
/// runtime's worker, the worker's run queue (its "core") is first handed to
/// a new thread from the blocking pool, so the other tasks of this worker
/// keep running while `f` blocks; afterwards this thread takes the core back
/// if it is still free, else it leaves the worker role once the current
/// task yields.
///
/// While `f` runs the thread is not driving the runtime (on a worker, and
/// on a multi-thread runtime's `block_on` thread): `f` may call `block_on`
/// on another runtime, or on this one through
/// [`Handle::block_on`](crate::runtime::Handle::block_on). The runtime stays current (`spawn`
/// works), and the state comes back when `f` returns or panics.
///
/// Outside any runtime, `f` simply runs.
///
/// # Panics
/// On a current-thread runtime (from inside one of its tasks or its
/// `block_on`): there is no other thread to run the rest of the tasks
/// there. Use [`spawn_blocking`](crate::task::spawn_blocking) instead.
#[track_caller]
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    const CURRENT_THREAD: &str = "block_in_place can only be used on a multi-thread runtime; \
         use spawn_blocking on a current-thread runtime";
    let handed_off = context::with_scheduler(|cx| match cx {
        Some(scheduler::Context::MultiThread(cx)) => cx.hand_off_core(),
        Some(scheduler::Context::CurrentThread(_)) => panic!("{CURRENT_THREAD}"),
        None => false,
    });
    // A current-thread `Handle::block_on` waiting while another thread
    // drives the runtime has no scheduler context, but is inside that
    // runtime all the same.
    if !handed_off && context::is_in_current_thread_runtime() {
        panic!("{CURRENT_THREAD}");
    }
    struct Reclaim;
    impl Drop for Reclaim {
        fn drop(&mut self) {
            context::with_scheduler(|cx| {
                if let Some(scheduler::Context::MultiThread(cx)) = cx {
                    cx.reclaim_core();
                }
            });
        }
    }
    // Declared before the exit guard, so it runs after the runtime state
    // came back (also when `f` panics).
    let _reclaim = handed_off.then_some(Reclaim);
    // Whether or not a core was handed off (none on a multi-thread
    // runtime's `block_on` thread, or in a nested call), the thread leaves
    // the runtime while `f` runs, as in Tokio: `f` may `block_on` another
    // runtime (or this one through its handle) and may drop a runtime.
    // The current handle stays, so `spawn` still works. Outside any
    // runtime this changes nothing.
    let _exit = context::exit_runtime();
    // Blocking code is not subject to the cooperative budget.
    coop::with_budget(coop::Budget::unconstrained(), f)
}
