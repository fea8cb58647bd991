//! Cooperative scheduling budget.
//!
//! Each task poll gets a budget of [`BUDGET_PER_POLL`] units. Leaf futures
//! (channel receives, joins, `yield_now`, later I/O readiness and timers) spend
//! one unit through [`poll_proceed`] each time they could make progress. When
//! the budget is spent, the leaf wakes its task and returns `Pending`, so the
//! task goes to the back of the run queue and a task that loops over always-ready
//! futures cannot starve the others.
//!
//! The budget lives in a thread-local set around every task poll by the
//! scheduler ([`budget`]). Outside a task (e.g. the future passed to
//! `block_on`'s first poll before the scheduler sets one) the budget is
//! unconstrained.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Units of work a task may do in one poll before it is forced to yield.
pub(crate) const BUDGET_PER_POLL: u8 = 128;

/// `None` means unconstrained (no budget is enforced on this thread now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget(Option<u8>);

impl Budget {
    /// The budget a task starts each poll with.
    pub(crate) const fn initial() -> Budget {
        Budget(Some(BUDGET_PER_POLL))
    }

    /// No limit.
    pub(crate) const fn unconstrained() -> Budget {
        Budget(None)
    }

    fn has_remaining(self) -> bool {
        self.0.is_none_or(|n| n > 0)
    }
}

thread_local! {
    static CURRENT: Cell<Budget> = const { Cell::new(Budget::unconstrained()) };
}

/// Runs `f` with a fresh per-poll budget, restoring the previous budget after,
/// even if `f` unwinds.
pub(crate) fn budget<R>(f: impl FnOnce() -> R) -> R {
    with_budget(Budget::initial(), f)
}

/// Runs `f` with the given budget in force, restoring the previous one after.
pub(crate) fn with_budget<R>(budget: Budget, f: impl FnOnce() -> R) -> R {
    struct ResetGuard(Budget);
    impl Drop for ResetGuard {
        fn drop(&mut self) {
            let prev = self.0;
            let _ = CURRENT.try_with(|cell| cell.set(prev));
        }
    }
    let prev = CURRENT.with(|cell| cell.replace(budget));
    let _guard = ResetGuard(prev);
    f()
}

/// True if the current task still has budget left this poll.
pub(crate) fn has_budget_remaining() -> bool {
    CURRENT
        .try_with(|cell| cell.get().has_remaining())
        .unwrap_or(true)
}

/// Spends one unit of budget if some is left.
///
/// Returns `Pending` when the budget is exhausted, after deferring the
/// task's wake to the scheduler's next driver turn (as `yield_now` does).
/// On `Ready`, the returned guard gives the unit back if it is dropped
/// without [`RestoreOnPending::made_progress`] being called, so a leaf that
/// turns out not to be ready does not consume budget.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<RestoreOnPending> {
    CURRENT
        .try_with(|cell| {
            let mut budget = cell.get();
            match budget.0 {
                None => Poll::Ready(RestoreOnPending(Cell::new(budget))),
                Some(0) => {
                    // As a yield (and as in Tokio): woken after the
                    // scheduler's next driver turn, so I/O and timers get in.
                    crate::scheduler::defer(cx.waker());
                    Poll::Pending
                }
                Some(n) => {
                    let restore = RestoreOnPending(Cell::new(budget));
                    budget.0 = Some(n - 1);
                    cell.set(budget);
                    Poll::Ready(restore)
                }
            }
        })
        .unwrap_or_else(|_| Poll::Ready(RestoreOnPending(Cell::new(Budget::unconstrained()))))
}

/// Guard returned by [`poll_proceed`]: restores the spent unit on drop unless
/// progress was reported.
#[derive(Debug)]
pub(crate) struct RestoreOnPending(Cell<Budget>);

impl RestoreOnPending {
    /// The leaf made progress: keep the unit spent.
    pub(crate) fn made_progress(&self) {
        self.0.set(Budget::unconstrained());
    }
}

impl Drop for RestoreOnPending {
    fn drop(&mut self) {
        let budget = self.0.get();
        if budget.0.is_some() {
            let _ = CURRENT.try_with(|cell| cell.set(budget));
        }
    }
}

/// Spends one unit of the task's cooperative budget, yielding to the
/// scheduler first if the budget is exhausted.
///
/// Use it in loops that do work without awaiting anything that would
/// otherwise yield, so they do not starve other tasks on the same worker.
pub async fn consume_budget() {
    struct ConsumeBudget(bool);
    impl Future for ConsumeBudget {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            let restore = std::task::ready!(poll_proceed(cx));
            restore.made_progress();
            self.0 = true;
            Poll::Ready(())
        }
    }
    ConsumeBudget(false).await
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn budget_runs_out_after_128_units() {
        let mut cx = Context::from_waker(Waker::noop());
        budget(|| {
            for _ in 0..BUDGET_PER_POLL {
                match poll_proceed(&mut cx) {
                    Poll::Ready(r) => r.made_progress(),
                    Poll::Pending => panic!("budget ran out early"),
                }
            }
            assert!(poll_proceed(&mut cx).is_pending());
            assert!(!has_budget_remaining());
        });
        // Restored to unconstrained outside.
        assert!(has_budget_remaining());
    }

    #[test]
    fn unused_unit_is_given_back() {
        let mut cx = Context::from_waker(Waker::noop());
        budget(|| {
            for _ in 0..1000 {
                // Dropped without made_progress: no unit spent.
                let r = poll_proceed(&mut cx);
                assert!(r.is_ready());
            }
        });
    }
}
