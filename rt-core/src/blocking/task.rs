//! A blocking closure as a task.

use crate::task::{coop, Notified, Schedule, Task};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs its closure on the first poll.
pub(crate) struct BlockingTask<F> {
    func: Option<F>,
}

impl<F> BlockingTask<F> {
    pub(crate) fn new(func: F) -> BlockingTask<F> {
        BlockingTask { func: Some(func) }
    }
}

// The closure is never pinned: it is moved out and called.
impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingTask<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        let func = self
            .func
            .take()
            .expect("blocking task polled after completion");
        // Blocking code is not subject to the cooperative budget.
        Poll::Ready(coop::with_budget(coop::Budget::unconstrained(), func))
    }
}

/// The "scheduler" of blocking tasks: they run exactly once on a pool
/// thread and are never queued again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockingSchedule;

impl Schedule for BlockingSchedule {
    fn release(&self, _task: &Task<Self>) -> Option<Task<Self>> {
        // Not in any owned list.
        None
    }

    fn schedule(&self, task: Notified<Self>) {
        // A blocking task completes in its only poll, so it is never woken;
        // an abort of a queued one only marks it. Nothing to queue.
        drop(task);
    }
}
