//! `block_in_place`: run blocking code on a multi-thread worker without
//! stalling the tasks queued behind it.

use crate::runtime::context;
use crate::scheduler;

/// Runs `f`, which may block, on the current thread. On a multi-thread
/// runtime's worker, the worker's run queue (its "core") is first handed to
/// a new thread from the blocking pool, so the other tasks of this worker
/// keep running while `f` blocks; afterwards this thread takes the core back
/// if it is still free, else it leaves the worker role once the current
/// task yields.
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
    let handed_off = context::with_scheduler(|cx| {
        match cx {
        Some(scheduler::Context::MultiThread(cx)) => cx.hand_off_core(),
        Some(scheduler::Context::CurrentThread(_)) => panic!(
            "block_in_place can only be used on a multi-thread runtime; use spawn_blocking on a current-thread runtime"
        ),
        None => false,
    }
    });
    if !handed_off {
        // Not a worker with a core (outside any runtime, on a block_on
        // thread, or nested): nothing to hand off.
        return f();
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
    let _reclaim = Reclaim;
    // `f` may call `Handle::block_on`: this thread does not drive the
    // scheduler while it runs.
    let _exit = context::exit_runtime();
    f()
}
