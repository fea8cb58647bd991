//! `Handle`: a cloneable, thread-safe reference to a runtime.

use super::context;
use super::metrics_api::RuntimeMetrics;
use crate::scheduler;
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
    /// [`spawn_blocking`](crate::task::spawn_blocking).
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, func: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.inner.blocking_spawner().spawn_blocking(func)
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
