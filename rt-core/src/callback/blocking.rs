//! Blocking work with a completion: `work` on the blocking pool, `done` on
//! the runtime, exactly once.

use super::gate::ShutdownFlag;
use super::marks::in_blocking_work;
use super::once::Once;
use super::task::{FinishOnDrop, TaskHandle, TaskShared};
use super::{Error, OnceCallback, Status};
use crate::runtime::Handle;
use std::sync::{Arc, Mutex};

/// Runs `work` on the blocking pool (a thread where blocking is fine),
/// then `done(Ok)` exactly once on a runtime thread. If `work` never
/// started (aborted first, or the runtime shut down while it waited for a
/// free pool thread), `done(Cancelled)` is called instead and `work` never
/// runs. If the runtime shuts down while `work` runs, `done(Ok)` runs on
/// the pool thread right after `work`. An abort of queued work makes the
/// `Cancelled` call at once, on the aborting thread. If `work` panics,
/// `done(Cancelled)` follows on the pool thread (the panic goes on to the
/// pool, as a task's does).
///
/// `Err(Os(EAGAIN))` when the pool has no thread and the OS refuses to
/// start one: then neither function is called.
pub(crate) fn spawn_blocking<W, C>(
    handle: &Handle,
    owner: ShutdownFlag,
    work: W,
    done: C,
) -> Result<TaskHandle, Error>
where
    W: FnOnce() + Send + 'static,
    C: OnceCallback,
{
    let shared = TaskShared::new();
    // `done` lives here until it is called (or, dropped uncalled, gets
    // Cancelled and marks the task finished).
    let finish = Arc::new(Mutex::new(Some(FinishOnDrop {
        callback: Some(Once::new(done)),
        shared: shared.clone(),
    })));
    // An abort of queued work makes the Cancelled call right away, on the
    // aborting thread (the queued closure then finds nothing to do). Weak:
    // the hook lives in the task's shared state, which `done`'s guard points
    // back to; a strong reference would be a cycle that keeps `done` from
    // ever being called if the work is dropped unrun.
    let on_abort = Arc::downgrade(&finish);
    let weak_finish = on_abort.clone();
    // The closure holds the only strong reference outside the runtime: this
    // thread keeps none, or it could be the last to let go (and so make the
    // call) after a racing shutdown already returned.
    let in_pool = finish;
    shared.set_on_abort(Box::new(move || {
        if let Some(finish) = on_abort.upgrade() {
            drop(take(&finish));
        }
    }));
    let task_shared = shared.clone();
    let rt_handle = handle.clone();
    let spawned = handle.try_spawn_blocking(move || {
        let finish = in_pool;
        if !task_shared.try_start() {
            return; // aborted: `finish` drops -> Cancelled
        }
        // `owner` keeps the identity valid (not reused) while the work runs.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_blocking_work(owner.identity(), work)
        }));
        if let Err(panic) = ran {
            // The work panicked: `done(Cancelled)` now, not while the panic
            // unwinds (a panic of `done` there would abort the process);
            // then the panic goes on to the pool, as a task's would.
            drop(take(&finish));
            std::panic::resume_unwind(panic);
        }
        // From now on `done` reports success even if the runtime drops the
        // completion task (a shutdown racing with this).
        if let Some(f) = finish.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            if let Some(cb) = f.callback.as_mut() {
                cb.set_drop_status(Status::Ok);
            }
        }
        let on_runtime = finish.clone();
        let completion = rt_handle.spawn(async move { call_ok(&on_runtime) });
        if completion.is_finished() {
            // The runtime refused the task (shut down): run `done` here.
            call_ok(&finish);
        }
    });
    let join = match spawned {
        Ok(join) => join,
        // No pool thread and the OS refused one: a failed call, so `done`
        // is never called. Take it out before the closure (which holds
        // `finish`, alive until then) is dropped.
        Err((e, job)) => {
            if let Some(finish) = weak_finish.upgrade() {
                if let Some(mut f) = take(&finish) {
                    if let Some(cb) = f.callback.take() {
                        drop(cb.disarm());
                    }
                }
            }
            drop(job);
            return Err(e.into());
        }
    };
    // If the pool refused the closure (a shutdown racing with this call),
    // dropping it made `done`'s Cancelled call: still a success.
    shared.set_abort(join.abort_handle());
    Ok(TaskHandle::from_shared(shared))
}

/// Takes `done`'s guard out of its slot (`None` once taken), the slot's
/// lock released before the caller calls or drops it.
fn take<C: OnceCallback>(slot: &Mutex<Option<FinishOnDrop<C>>>) -> Option<FinishOnDrop<C>> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Makes `done`'s `Ok` call (then marks the task finished), unless the
/// guard was taken already.
fn call_ok<C: OnceCallback>(slot: &Mutex<Option<FinishOnDrop<C>>>) {
    if let Some(mut f) = take(slot) {
        if let Some(cb) = f.callback.take() {
            cb.call(Status::Ok);
        }
    }
}
