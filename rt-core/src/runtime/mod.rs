//! The runtime: [`Builder`], [`Runtime`] and [`Handle`].
//!
//! - `builder.rs`: settings and construction of both flavors;
//! - `handle.rs`: the cloneable `Handle` (spawn, block_on from any thread);
//! - `context.rs`: thread-local current runtime and scheduler context;
//! - `park.rs`: the `Park` / `Unpark` abstraction every idle thread blocks
//!   through, and the thread parker;
//! - `driver.rs`: creates the driver the schedulers park in;
//! - `metrics.rs` / `metrics_api.rs`: counters.

mod builder;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod driver;
mod handle;
pub(crate) mod metrics;
mod metrics_api;
pub(crate) mod park;

pub use crate::scheduler::current_thread::RunMode;
pub use builder::{Builder, MAX_THREAD_STACK_SIZE, MAX_WORKER_THREADS};
pub use handle::{EnterGuard, Handle, RuntimeFlavor, TryCurrentError};
pub use metrics_api::RuntimeMetrics;

use crate::blocking::BlockingPool;
use crate::scheduler;
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// True if the calling thread drives a runtime right now: it is a worker of
/// a multi-thread runtime, or inside a `block_on` (or `run_for`). Blocking
/// such a thread on something only that runtime can complete would
/// deadlock; the C API uses this to answer `RT_EDEADLK` instead.
pub fn is_runtime_thread() -> bool {
    context::is_in_runtime()
}

/// An async runtime: a scheduler (current-thread or multi-thread) and the
/// threads that run it.
///
/// Dropping the runtime shuts it down: no new task is accepted, every
/// outstanding task is cancelled (its future dropped, exactly once), and
/// the worker threads are joined. Dropping it from an asynchronous context
/// (a task, a `block_on`) panics, as in Tokio: use
/// [`Runtime::shutdown_background`] there.
pub struct Runtime {
    handle: Handle,
    /// Runs the multi-thread workers and `spawn_blocking` work.
    blocking_pool: BlockingPool,
    /// Set once shut down (by a `shutdown_*` call: the drop that follows
    /// has nothing left to do).
    is_shut_down: bool,
}

impl Runtime {
    fn new(handle: Handle, blocking_pool: BlockingPool) -> Runtime {
        // Before any pool thread starts: their hooks run in this context.
        blocking_pool.spawner().set_runtime(&handle.inner);
        Runtime {
            handle,
            blocking_pool,
            is_shut_down: false,
        }
    }

    /// A multi-thread runtime with default settings.
    pub fn new_multi_thread() -> std::io::Result<Runtime> {
        Builder::new_multi_thread().build()
    }

    /// The runtime's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns a future onto the runtime. On a current-thread runtime it runs
    /// when a thread drives the runtime (`block_on`, `run_for`).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs a future to completion on this thread; see [`Handle::block_on`].
    ///
    /// # Panics
    /// When called from a thread that already drives a runtime.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// Makes the runtime current on this thread until the guard drops.
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// Runs ready tasks of a current-thread runtime from a host loop (a game
    /// frame, say): polls the driver once without blocking, then runs tasks
    /// in FIFO order until `budget` has elapsed or `max_tasks` were polled.
    /// Never blocks. The budget is checked before each task but the first:
    /// a call with a task ready polls at least one (and `max_tasks` > 0),
    /// however small the budget, so a host on a loaded machine still makes
    /// progress; it overruns the budget by at most one task. Returns the
    /// number of tasks polled; what is left runs on the next call, in the
    /// same order.
    ///
    /// Returns 0 without running anything if the runtime is being driven
    /// already (by another thread's `block_on`, or re-entrantly from a
    /// task of this runtime).
    ///
    /// # Panics
    /// On a multi-thread runtime: its workers run the tasks by themselves.
    #[track_caller]
    pub fn run_for(&self, budget: Duration, max_tasks: usize) -> usize {
        self.handle.run_for(budget, max_tasks)
    }

    /// Drives a current-thread runtime from a host loop: see
    /// [`Handle::run`].
    ///
    /// # Panics
    /// On a multi-thread runtime.
    #[track_caller]
    pub fn run(&self, mode: RunMode) -> usize {
        self.handle.run(mode)
    }

    /// Counters describing the runtime.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Shuts down, waiting at most `timeout` for the worker threads to stop.
    /// Threads still busy then (a task that blocks its thread, a
    /// `spawn_blocking` closure still running) are detached: a running
    /// blocking closure finishes in the background and its `JoinHandle`
    /// gets its result; closures still queued are cancelled. Every task not
    /// running at that point is cancelled (its future dropped) before this
    /// returns, on this thread if no worker got to it.
    ///
    /// # Panics
    /// With a non-zero `timeout`, from an asynchronous context (a task, a
    /// `block_on`), where blocking is not allowed, as in Tokio: the
    /// runtime is then shut down without waiting, and the call panics.
    /// Use [`shutdown_background`](Self::shutdown_background) there.
    #[track_caller]
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(timeout));
    }

    /// Like [`Runtime::shutdown_timeout`], and tells whether every thread
    /// stopped within the timeout (false: some are still finishing work in
    /// the background).
    ///
    /// # Panics
    /// As [`Runtime::shutdown_timeout`].
    #[track_caller]
    pub fn shutdown_timeout_completed(mut self, timeout: Duration) -> bool {
        self.shutdown(Some(timeout))
    }

    /// Shuts down without waiting for the worker threads. Allowed
    /// anywhere, also from an asynchronous context.
    pub fn shutdown_background(self) {
        self.shutdown_timeout(Duration::ZERO);
    }

    /// Shuts down, waiting at most `timeout` (`None`: no limit). Returns
    /// true if every thread stopped.
    #[track_caller]
    fn shutdown(&mut self, timeout: Option<Duration>) -> bool {
        if std::mem::replace(&mut self.is_shut_down, true) {
            return true;
        }
        // Refused only if there would be a wait: `shutdown_background` is
        // allowed anywhere. Not while unwinding (a panic in a panic aborts).
        let refused = timeout != Some(Duration::ZERO)
            && context::is_in_runtime()
            && !std::thread::panicking();
        match &self.handle.inner {
            scheduler::Handle::CurrentThread(h) => scheduler::current_thread::Handle::shutdown(h),
            scheduler::Handle::MultiThread(h) => h.shutdown(),
        }
        // Workers and blocking closures run on the pool: wait for them (the
        // pool does not wait when called from one of its own threads). From
        // where blocking is not allowed, or while unwinding, do not wait:
        // the threads finish in the background.
        let wait = if refused || context::is_in_runtime() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let completed = self.blocking_pool.shutdown(wait);
        if !completed {
            // Timed out (or not waiting): a worker may be blocked in a task,
            // leaving tasks uncancelled. Cancel them here, so no task that is
            // not running outlives this call. (A current-thread shutdown did
            // it already.)
            if let scheduler::Handle::MultiThread(h) = &self.handle.inner {
                scheduler::multi_thread::Handle::shutdown_remaining_tasks(h);
            }
        }
        if refused {
            panic!(
                "Cannot drop a runtime in a context where blocking is not allowed. This \
                 happens when a runtime is dropped from within an asynchronous context."
            );
        }
        completed
    }
}

impl Drop for Runtime {
    /// Shuts the runtime down and waits for its threads.
    ///
    /// # Panics
    /// From an asynchronous context (a task, a `block_on`), where blocking
    /// is not allowed, as in Tokio (the runtime is still shut down, in the
    /// background). Use [`Runtime::shutdown_background`] there.
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("flavor", &self.handle.runtime_flavor())
            .finish()
    }
}
