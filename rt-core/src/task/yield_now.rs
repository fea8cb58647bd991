//! `yield_now`: let other tasks, and the drivers, run.

use super::coop;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler once. The task is woken only after the
/// scheduler's next driver turn, then goes to the back of its run queue
/// (never the LIFO slot): every other ready task, and any I/O or timer that
/// became ready meanwhile, gets a turn first. A scheduler whose only work is
/// yielded tasks polls its drivers without blocking. Outside a runtime the
/// task is woken at once. Spends one unit of the cooperative budget if any
/// is left.
pub async fn yield_now() {
    struct YieldNow {
        yielded: bool,
    }

    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.yielded {
                return Poll::Ready(());
            }
            self.yielded = true;
            // Spend a unit. (With the budget already spent, `poll_proceed`
            // would wake the task itself, at once: the yield below is all
            // that is needed then.)
            if coop::has_budget_remaining() {
                if let Poll::Ready(restore) = coop::poll_proceed(cx) {
                    restore.made_progress();
                }
            }
            crate::scheduler::defer(cx.waker());
            Poll::Pending
        }
    }

    YieldNow { yielded: false }.await
}
