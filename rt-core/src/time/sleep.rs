//! `Sleep`: a future that completes at a deadline.

use super::driver::{Entry, Handle};
use super::entry::{Fired, TimerShared};
use super::wheel::TimerKey;
use super::Instant;
use crate::task::coop;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

/// Waits until `duration` has elapsed.
///
/// # Panics
/// Outside a runtime, or on a runtime built without `enable_time`.
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(Instant::far_future);
    sleep_until(deadline)
}

/// Waits until `deadline`.
///
/// # Panics
/// Outside a runtime, or on a runtime built without `enable_time`.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        handle: crate::runtime::driver::current_time_handle(),
        deadline,
        shared: Arc::new(TimerShared::new()),
        key: None,
        registered: false,
    }
}

/// Completes at its deadline (never before). Dropping it cancels the
/// timer. Registered with the wheel on first poll.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    handle: Handle,
    deadline: Instant,
    shared: Arc<TimerShared>,
    key: Option<TimerKey>,
    registered: bool,
}

impl Sleep {
    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once the timer fired.
    pub fn is_elapsed(&self) -> bool {
        self.shared.state() == Some(Fired::Elapsed)
    }

    /// Moves the deadline (re-arming a fired timer too).
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
        // A fresh state: the old one may still be fired by a driver that
        // popped it just before the cancel.
        self.shared = Arc::new(TimerShared::new());
        self.registered = false;
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            self.handle.cancel(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let coop = ready!(coop::poll_proceed(cx));
        let this = &mut *self;
        if !this.registered {
            this.registered = true;
            let tick = this.handle.deadline_to_tick(this.deadline.into_std());
            this.key = this
                .handle
                .register(tick, Entry::Sleep(this.shared.clone()));
        }
        match ready!(this.shared.poll_fired(cx)) {
            Fired::Elapsed => {
                this.key = None;
                coop.made_progress();
                Poll::Ready(())
            }
            Fired::Shutdown => panic!(
                "a timer was polled after its rt runtime shut down; the timer can no longer fire"
            ),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("elapsed", &self.is_elapsed())
            .finish()
    }
}
