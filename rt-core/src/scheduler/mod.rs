//! The two scheduler flavors and what they share.
//!
//! - [`current_thread`]: one thread (whoever calls `block_on` or `run_for`)
//!   runs every task; local FIFO plus a shared inject queue.
//! - [`multi_thread`]: a pool of workers with bounded local queues, a LIFO
//!   slot, a global inject queue and work stealing.
//!
//! [`Handle`] is the flavor-erased, cloneable handle the runtime API holds;
//! [`Context`] is the per-thread scheduler state that `runtime::context`
//! keeps while a scheduler runs on that thread.

pub(crate) mod current_thread;
mod defer;
pub(crate) mod multi_thread;

pub(crate) use defer::Defer;

use crate::runtime::metrics::{SchedulerMetrics, WorkerMetrics};
use crate::task::{Id, JoinHandle};
use std::future::Future;
use std::sync::Arc;
use std::task::Waker;

/// A handle to either scheduler flavor.
#[derive(Clone)]
pub(crate) enum Handle {
    CurrentThread(Arc<current_thread::Handle>),
    MultiThread(Arc<multi_thread::Handle>),
}

/// The scheduler state of the thread that runs tasks now.
pub(crate) enum Context {
    CurrentThread(current_thread::Context),
    MultiThread(multi_thread::Context),
}

impl Handle {
    /// Spawns a task on this scheduler.
    pub(crate) fn spawn<F>(&self, future: F, id: Id) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Handle::CurrentThread(h) => current_thread::Handle::spawn(h, future, id),
            Handle::MultiThread(h) => multi_thread::Handle::spawn(h, future, id),
        }
    }

    /// The handles of the runtime's I/O and time drivers.
    pub(crate) fn driver(&self) -> &crate::runtime::driver::Handle {
        match self {
            Handle::CurrentThread(h) => &h.driver,
            Handle::MultiThread(h) => &h.driver,
        }
    }

    /// The runtime's blocking pool.
    pub(crate) fn blocking_spawner(&self) -> &crate::blocking::Spawner {
        match self {
            Handle::CurrentThread(h) => &h.blocking,
            Handle::MultiThread(h) => &h.blocking,
        }
    }

    /// Live tasks.
    pub(crate) fn num_alive_tasks(&self) -> usize {
        match self {
            Handle::CurrentThread(h) => h.owned().len(),
            Handle::MultiThread(h) => h.owned().len(),
        }
    }

    /// Tasks ever spawned.
    pub(crate) fn spawned_tasks_count(&self) -> u64 {
        match self {
            Handle::CurrentThread(h) => h.owned().spawned(),
            Handle::MultiThread(h) => h.owned().spawned(),
        }
    }

    /// Tasks waiting in the shared (inject) queue.
    pub(crate) fn global_queue_depth(&self) -> usize {
        match self {
            Handle::CurrentThread(h) => h.inject_len(),
            Handle::MultiThread(h) => h.inject_len(),
        }
    }

    pub(crate) fn scheduler_metrics(&self) -> &SchedulerMetrics {
        match self {
            Handle::CurrentThread(h) => h.scheduler_metrics(),
            Handle::MultiThread(h) => h.scheduler_metrics(),
        }
    }

    pub(crate) fn worker_metrics(&self) -> &[WorkerMetrics] {
        match self {
            Handle::CurrentThread(h) => std::slice::from_ref(h.worker_metrics()),
            Handle::MultiThread(h) => h.worker_metrics(),
        }
    }
}

/// Wakes `waker` after the next driver turn of the scheduler running on
/// this thread (`yield_now`: I/O and timers get in before the yielder runs
/// again); at once if no scheduler runs here, or it cannot run tasks now
/// (its core is away).
pub(crate) fn defer(waker: &Waker) {
    crate::runtime::context::with_scheduler(|cx| {
        let deferred = match cx {
            Some(Context::CurrentThread(cx)) => cx.defer(waker),
            Some(Context::MultiThread(cx)) => cx.defer(waker),
            None => false,
        };
        if !deferred {
            waker.wake_by_ref();
        }
    });
}

impl Context {
    pub(crate) fn expect_current_thread(&self) -> &current_thread::Context {
        match self {
            Context::CurrentThread(cx) => cx,
            Context::MultiThread(_) => panic!("expected the current-thread scheduler context"),
        }
    }
}
