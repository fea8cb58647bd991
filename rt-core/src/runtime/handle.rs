//! `Handle`: a cloneable, thread-safe reference to a runtime.

use super::context;
use super::metrics_api::RuntimeMetrics;
use crate::scheduler;
use crate::scheduler::current_thread::RunMode;
use crate::task::{Id, JoinHandle};
use std::fmt;
use std::future::Future;

/// A handle to a runtime: spawn onto it or block on it from any thread.
///
/// It does not keep the runtime alive: once the [`Runtime`](super::Runtime)
/// is dropped, spawning through a handle returns a `JoinHandle` that
/// resolves to a cancelled [`JoinError`](crate::task::JoinError).
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: scheduler::Handle,
}

/// The flavor of a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeFlavor {
    /// One thread runs every task.
    CurrentThread,
    /// A pool of work-stealing worker threads.
    MultiThread,
}

/// Returned by [`Handle::try_current`] outside a runtime context.
#[derive(Debug)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("there is no reactor running, must be called from the context of an rt runtime")
    }
}

impl std::error::Error for TryCurrentError {}

/// Keeps a runtime current on this thread until dropped
/// ([`Runtime::enter`](super::Runtime::enter), [`Handle::enter`]).
#[derive(Debug)]
#[must_use = "the runtime stays current only while the guard lives"]
pub struct EnterGuard<'a> {
    _guard: context::SetCurrentGuard,
    // Not Send: it must be dropped on the thread it was made on.
    _p: std::marker::PhantomData<(&'a Handle, *const ())>,
}

impl Handle {
    /// The handle of the runtime this thread is in (a worker thread, inside
    /// `block_on`, or under [`Handle::enter`]).
    ///
    /// # Panics
    /// Outside any runtime context; see [`Handle::try_current`].
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    /// The current runtime's handle, or an error outside a runtime context.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::current()
            .map(|inner| Handle { inner })
            .ok_or(TryCurrentError(()))
    }

    /// Spawns a future onto the runtime. See [`crate::spawn`].
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(future, Id::next())
    }

    /// Runs a blocking closure on the runtime's blocking pool; see
    /// [`spawn_blocking`](crate::task::spawn_blocking). The closure runs
    /// with this runtime as the current one (as in Tokio): `spawn`,
    /// timers, sockets and [`Handle::current`] work in it, and so does
    /// `Handle::current().block_on(..)` (a pool thread does not drive the
    /// runtime).
    ///
    /// # Panics
    /// When the pool has no thread and the OS refuses to start one (as
    /// Tokio does); [`try_spawn_blocking`](Self::try_spawn_blocking)
    /// returns that error instead.
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match self.try_spawn_blocking(func) {
            Ok(join) => join,
            Err((e, _)) => panic!("OS can't spawn a blocking pool thread: {e}"),
        }
    }

    /// [`spawn_blocking`](Self::spawn_blocking) that reports, rather than
    /// panics on, the one way it can fail: the pool has no thread and the
    /// OS refuses to start one (`EAGAIN`: too many threads, no memory for
    /// a stack). `func` then comes back unrun, with the OS error. (An rt
    /// extension: the C API returns the error to its caller.)
    pub fn try_spawn_blocking<F, R>(&self, func: F) -> Result<JoinHandle<R>, (std::io::Error, F)>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let mut slot = Some(func);
        let spawned = self.inner.blocking_spawner().try_spawn_blocking_with(|| {
            let func = slot.take().expect("called once");
            let handle = self.inner.clone();
            move || {
                let entered = context::set_current(&handle);
                // The handle is let go of when `func` returns, before the
                // JoinHandle sees the result: once a runtime's jobs are
                // done, none of them keeps its drivers alive.
                drop(handle);
                let ret = func();
                drop(entered);
                ret
            }
        });
        match (spawned, slot) {
            (Ok(join), _) => Ok(join),
            (Err(e), Some(func)) => Err((e, func)),
            (Err(_), None) => unreachable!("the pool builds the job only to run it"),
        }
    }

    /// Runs a future to completion on this thread, with this runtime as the
    /// current one.
    ///
    /// On a current-thread runtime this thread drives the scheduler (if no
    /// other thread does now). On a multi-thread runtime the future runs
    /// here while the workers run spawned tasks.
    ///
    /// # Panics
    /// When called from a thread that already drives a runtime (inside
    /// `block_on` or on a worker): that would block the tasks it runs.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.inner {
            scheduler::Handle::CurrentThread(h) => {
                scheduler::current_thread::Handle::block_on(h, future)
            }
            scheduler::Handle::MultiThread(_) => {
                let _enter = context::enter_runtime(&self.inner);
                super::park::block_on(future)
            }
        }
    }

    /// [`Runtime::run_for`](super::Runtime::run_for) through a handle: runs
    /// ready tasks of a current-thread runtime for at most `budget` and
    /// `max_tasks`, never blocking; returns how many were polled.
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn run_for(&self, budget: std::time::Duration, max_tasks: usize) -> usize {
        match &self.inner {
            scheduler::Handle::CurrentThread(h) => {
                scheduler::current_thread::Handle::run_for(h, budget, max_tasks)
            }
            scheduler::Handle::MultiThread(_) => {
                panic!(
                    "Runtime::run_for needs a current-thread runtime (Builder::new_current_thread)"
                )
            }
        }
    }

    /// The current-thread scheduler, or a panic naming `what`.
    #[track_caller]
    fn host_driven(&self, what: &str) -> &std::sync::Arc<scheduler::current_thread::Handle> {
        match &self.inner {
            scheduler::Handle::CurrentThread(h) => h,
            scheduler::Handle::MultiThread(_) => panic!(
                "Handle::{what} needs a current-thread runtime (Builder::new_current_thread)"
            ),
        }
    }

    /// Drives a current-thread runtime from a host loop, on this thread,
    /// in `mode` (like libuv's `uv_run`): [`RunMode::Default`] runs until
    /// [`stop`](Self::stop) or no work is left, [`RunMode::Once`] blocks
    /// until at least one task ran (or a [`wake`](Self::wake)),
    /// [`RunMode::NoWait`] runs what is ready and never blocks. Returns the
    /// number of tasks polled.
    ///
    /// Returns 0 without running anything if the runtime is being driven
    /// already (by another thread, or re-entrantly from one of its tasks).
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn run(&self, mode: RunMode) -> usize {
        scheduler::current_thread::Handle::run(self.host_driven("run"), mode)
    }

    /// [`run`](Self::run), where a [`RunMode::Once`] run keeps waiting
    /// until `progress()` returns true after a pass that ran tasks (or a
    /// wake or stop request comes): for an embedder whose unit of work is
    /// not a task (the C API counts its callbacks, not the library's own
    /// bookkeeping tasks). Other modes ignore `progress`.
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn run_until(&self, mode: RunMode, mut progress: impl FnMut() -> bool) -> usize {
        scheduler::current_thread::Handle::run_until(
            self.host_driven("run_until"),
            mode,
            &mut progress,
        )
    }

    /// Makes the running [`run`](Self::run) / [`run_for`](Self::run_for)
    /// call return after the task it is polling (or, if none runs, the
    /// next one return at once). Safe from any thread; repeated requests
    /// before the run returns count once.
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn stop(&self) {
        self.host_driven("stop").stop();
    }

    /// Interrupts a blocking wait: a [`RunMode::Once`] run returns (maybe
    /// having run nothing), a host waiting on
    /// [`backend_fd`](Self::backend_fd) sees it readable. A
    /// [`RunMode::Default`] run keeps running. Coalescing: wakes before the
    /// next run call returns count once. Safe from any thread and, with
    /// the I/O driver enabled, from a signal handler (one atomic swap and
    /// one `write` to an eventfd).
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn wake(&self) {
        self.host_driven("wake").wake();
    }

    /// A file descriptor for a host that waits in its own `poll`/`epoll`
    /// (like libuv's `uv_backend_fd`): readable when the runtime has work
    /// (an I/O event, a timer due, a task spawned or woken from another
    /// thread, tasks left over by [`run_for`](Self::run_for)). Wait on it
    /// with [`backend_timeout`](Self::backend_timeout) as the timeout, then
    /// run with [`RunMode::NoWait`] or `run_for`. It may also turn readable
    /// with nothing to run (the wheel cascading a far timer): the run then
    /// polls nothing. The runtime owns it: do
    /// not close it; it stays valid until the runtime is dropped.
    ///
    /// # Errors
    /// When the runtime was built without the I/O driver, or the OS
    /// refuses the timerfd.
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn backend_fd(&self) -> std::io::Result<std::os::fd::RawFd> {
        self.host_driven("backend_fd").backend_fd()
    }

    /// How long a host may wait before running the runtime again: zero if
    /// tasks are ready, else the time until the earliest timer deadline
    /// (exactly: the backend fd becomes readable then, once), `None` if no
    /// timer is armed.
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn backend_timeout(&self) -> Option<std::time::Duration> {
        self.host_driven("backend_timeout").backend_timeout()
    }

    /// Makes this runtime current on this thread until the guard drops, so
    /// [`crate::spawn`] and [`Handle::current`] work outside its threads.
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _guard: context::set_current(&self.inner),
            _p: std::marker::PhantomData,
        }
    }

    /// The runtime's flavor.
    pub fn runtime_flavor(&self) -> RuntimeFlavor {
        match self.inner {
            scheduler::Handle::CurrentThread(_) => RuntimeFlavor::CurrentThread,
            scheduler::Handle::MultiThread(_) => RuntimeFlavor::MultiThread,
        }
    }

    /// Counters describing the runtime.
    pub fn metrics(&self) -> RuntimeMetrics {
        RuntimeMetrics::new(self.clone())
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("flavor", &self.runtime_flavor())
            .finish()
    }
}
