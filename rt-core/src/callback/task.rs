//! Callback tasks and their handle: [`TaskHandle`] (abort / is_finished /
//! join), the shared state behind it, and the spawn of a callback task.

use super::gate::ShutdownFlag;
use super::marks::is_in_callback;
use super::once::Once;
use super::{Error, OnceCallback, Status};
use crate::runtime::Handle;
use crate::task::AbortHandle;
use std::fmt;
use std::sync::atomic::{
    AtomicU32, AtomicU8, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// A handle to a task of the layer (a callback task, blocking work, or a
/// binding's own task such as the C API's poll tasks): abort it, ask
/// whether it finished, wait for it. Clones name the same task; dropping
/// every handle does not cancel it.
#[derive(Clone)]
pub struct TaskHandle {
    shared: Arc<TaskShared>,
}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

pub(crate) struct TaskShared {
    /// PENDING until the callback starts (RUNNING) or the task is aborted
    /// first (CANCELLED).
    start: AtomicU8,
    /// Set (under the mutex) once the final call returned.
    done: Mutex<bool>,
    cv: Condvar,
    /// Threads waiting in `join` (changed and read under `done`'s lock):
    /// `finish` skips the condvar's syscall when there are none.
    joiners: AtomicU32,
    abort: Mutex<Option<AbortHandle>>,
    /// Run by a successful abort (blocking work: the `Cancelled` call
    /// happens at once, not when a pool thread reaches the queued job).
    on_abort: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl TaskShared {
    pub(crate) fn new() -> Arc<TaskShared> {
        Arc::new(TaskShared {
            start: AtomicU8::new(PENDING),
            done: Mutex::new(false),
            cv: Condvar::new(),
            joiners: AtomicU32::new(0),
            abort: Mutex::new(None),
            on_abort: Mutex::new(None),
        })
    }

    /// Claims the right to run. False if aborted first.
    pub(crate) fn try_start(&self) -> bool {
        self.start
            .compare_exchange(PENDING, RUNNING, AcqRel, Acquire)
            .is_ok()
    }

    pub(crate) fn finish(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done = true;
        let joiners = self.joiners.load(Relaxed);
        drop(done);
        if joiners > 0 {
            self.cv.notify_all();
        }
    }

    fn is_finished(&self) -> bool {
        *self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what a successful abort runs besides cancelling the task.
    pub(crate) fn set_on_abort(&self, hook: Box<dyn FnOnce() + Send>) {
        *self.on_abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Stores the abort handle of the task behind it.
    pub(crate) fn set_abort(&self, abort: AbortHandle) {
        *self.abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(abort);
    }
}

impl TaskHandle {
    pub(crate) fn from_shared(shared: Arc<TaskShared>) -> TaskHandle {
        TaskHandle { shared }
    }

    /// Aborts the task. A callback task that has not started gets its
    /// single call with `Cancelled` instead; queued blocking work never runs
    /// (its `done` gets `Cancelled`, at once, on this thread); a binding's
    /// own task (a C poll task) is cancelled at its next pending poll.
    ///
    /// `Err(Error::Already)` if the task already finished or (callback and
    /// blocking tasks) already started: nothing changes then.
    pub fn abort(&self) -> Result<(), Error> {
        let shared = &self.shared;
        if shared.is_finished() {
            return Err(Error::Already);
        }
        if shared
            .start
            .compare_exchange(PENDING, CANCELLED, AcqRel, Acquire)
            .is_err()
        {
            return Err(Error::Already);
        }
        // Drop the future (and so make the Cancelled call) promptly.
        if let Some(abort) = shared
            .abort
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            abort.abort();
        }
        let hook = shared
            .on_abort
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(())
    }

    /// True once the task's final call has returned.
    pub fn is_finished(&self) -> bool {
        self.shared.is_finished()
    }

    /// Blocks until the task's final call has returned, at most `timeout`
    /// (`None`: no limit; `Some(ZERO)`: just check).
    ///
    /// `Err(TimedOut)`; `Err(WouldDeadlock)` (without waiting) when called
    /// on a thread that drives a runtime (a worker) or from inside any
    /// runtime callback (final `Cancelled` calls made during shutdown
    /// included) unless the task has already finished: waiting there could
    /// wait for itself.
    pub fn join(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let shared = &self.shared;
        // `Some(None)`: a limit too far to represent, none.
        let deadline = timeout.map(|t| Instant::now().checked_add(t));
        let mut done = shared.done.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return Ok(());
        }
        if timeout != Some(Duration::ZERO)
            && (crate::runtime::is_runtime_thread() || is_in_callback())
        {
            return Err(Error::WouldDeadlock);
        }
        shared.joiners.fetch_add(1, Relaxed);
        let result = loop {
            if *done {
                break Ok(());
            }
            match deadline {
                None | Some(None) => done = shared.cv.wait(done).unwrap_or_else(|e| e.into_inner()),
                Some(Some(d)) => {
                    let now = Instant::now();
                    if now >= d {
                        break Err(Error::TimedOut);
                    }
                    done = shared
                        .cv
                        .wait_timeout(done, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        shared.joiners.fetch_sub(1, Relaxed);
        result
    }

    /// A handle to a new task, not started, for a binding that spawns its
    /// own task (the C API's poll tasks): the binding reports its end with
    /// [`finish`](Self::finish) and gives it an abort handle with
    /// [`set_abort`](Self::set_abort). [`abort`](Self::abort) then cancels
    /// the task (it is never marked started).
    #[doc(hidden)]
    pub fn new_unstarted() -> TaskHandle {
        TaskHandle::from_shared(TaskShared::new())
    }

    /// Marks the task finished (its final call returned): joiners return.
    #[doc(hidden)]
    pub fn finish(&self) {
        self.shared.finish();
    }

    /// Records the abort handle of the task behind this handle.
    #[doc(hidden)]
    pub fn set_abort(&self, abort: AbortHandle) {
        self.shared.set_abort(abort);
    }
}

/// Marks the task finished when dropped, after the final call ran (its
/// fields drop in order: the callback first).
pub(crate) struct FinishOnDrop<C: OnceCallback> {
    pub(crate) callback: Option<Once<C>>,
    pub(crate) shared: Arc<TaskShared>,
}

impl<C: OnceCallback> Drop for FinishOnDrop<C> {
    fn drop(&mut self) {
        // An uncalled callback gets Cancelled here.
        drop(self.callback.take());
        self.shared.finish();
    }
}

/// Spawns a callback task on `handle`: `cb(Ok)` runs once on a runtime
/// thread; if the task is aborted before it started, or the runtime's
/// shutdown (`shutdown`) begins first, `cb(Cancelled)` is called instead,
/// exactly once, possibly on the aborting / shutting-down thread. With
/// `with_handle`, returns a handle to it.
pub(crate) fn spawn<C: OnceCallback>(
    handle: &Handle,
    shutdown: ShutdownFlag,
    cb: C,
    with_handle: bool,
) -> Option<TaskHandle> {
    // Once shutdown has begun the task makes no call with status Ok: its
    // worker may still poll it before it notices (after a callback shut the
    // runtime down, say); the callback, dropped uncalled, then gets
    // Cancelled.
    if !with_handle {
        // No handle: nobody can abort or join it, so no shared state.
        // Dropped unpolled (shutdown), the callback gets Cancelled.
        let callback = Once::new(cb);
        drop(handle.spawn(async move {
            if !shutdown.is_set() {
                callback.call(Status::Ok)
            }
        }));
        return None;
    }
    let shared = TaskShared::new();
    let guard = FinishOnDrop {
        callback: Some(Once::new(cb)),
        shared: shared.clone(),
    };
    let join = handle.spawn(async move {
        let mut guard = guard;
        if !shutdown.is_set() && guard.shared.try_start() {
            if let Some(cb) = guard.callback.take() {
                cb.call(Status::Ok);
            }
        }
    });
    shared.set_abort(join.abort_handle());
    drop(join);
    Some(TaskHandle::from_shared(shared))
}
