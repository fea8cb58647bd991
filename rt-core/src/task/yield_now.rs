//! `yield_now`: let other tasks run.

use super::coop;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler once: the task goes to the back of its run queue
/// (never the LIFO slot), so every other ready task gets a turn first.
/// Spends one unit of the cooperative budget.
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
            // Spend a unit; when the budget is already spent, poll_proceed
            // itself wakes the task and returns Pending, which is a yield too.
            if let Poll::Ready(restore) = coop::poll_proceed(cx) {
                restore.made_progress();
                // Waking ourselves while running makes the scheduler put the
                // task at the back of the queue once this poll returns.
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    YieldNow { yielded: false }.await
}
