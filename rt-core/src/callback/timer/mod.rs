//! Timers on the runtime's wheel, for [`CallbackRuntime::timer_start`] /
//! [`timer_stop`](crate::callback::CallbackRuntime::timer_stop).
//!
//! A runtime's timers live in one table (`table.rs`), as libuv keeps a
//! timer inside its `uv_timer_t`: a slot holds the callback, the period,
//! the deadline and where the timer is in its life; the wheel holds only an
//! alarm naming the slot by id ([`Alarms`]). Starting a timer allocates
//! nothing of its own and takes two locks (the table's, then the wheel's).
//! When the alarm fires, the slot's id is queued for a call: on a
//! current-thread runtime one caller task makes the calls in firing order
//! (deadline order; ties in start order), one per poll; a multi-thread
//! runtime spawns a task per expiry, so calls spread over the workers.
//!
//! [`CallbackRuntime::timer_start`]: crate::callback::CallbackRuntime::timer_start

mod table;

use super::gate::this_thread;
use super::marks::{in_callback, is_in_callback};
use super::{Error, Status, Stopped, TimerCallback, TimerId};
use crate::runtime::{Handle, RuntimeFlavor};
use crate::time::{AlarmKey, AlarmTarget, Alarms, Instant};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;
use table::{later, Then, TimerTable};

/// A runtime's timers: the table, the wheel's alarms, and the tasks that
/// make the calls.
pub(crate) struct Timers<T: TimerCallback> {
    runtime: Handle,
    alarms: Alarms,
    table: TimerTable<AlarmKey, T>,
}

impl<T: TimerCallback> fmt::Debug for Timers<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers").finish_non_exhaustive()
    }
}

impl<T: TimerCallback> Timers<T> {
    /// The timers of the runtime behind `runtime`.
    pub(crate) fn new(runtime: Handle) -> Arc<Timers<T>> {
        let task_per_call = runtime.runtime_flavor() == RuntimeFlavor::MultiThread;
        Arc::new_cyclic(|me: &Weak<Timers<T>>| Timers {
            alarms: Alarms::new(&runtime, me.clone() as Weak<dyn AlarmTarget>),
            runtime,
            table: TimerTable::new(task_per_call),
        })
    }

    /// Arms the timer named `id` for `deadline`: its key, or `None` if the
    /// deadline is already due (or the runtime shut down).
    fn arm(&self, deadline: Instant, id: u64) -> Option<AlarmKey> {
        self.alarms.arm(deadline, id).ok()
    }

    /// Starts what the table asked for, outside its lock.
    fn then(self: &Arc<Self>, what: Then) {
        match what {
            Then::Nothing => {}
            Then::Caller => {
                let caller = Caller {
                    timers: self.clone(),
                    next: None,
                    finished: false,
                };
                // Refused after shutdown: dropping `caller` gives what is
                // queued its final call.
                drop(self.runtime.spawn(caller.run()));
            }
            Then::Call(id) => {
                let call = QueuedCall {
                    timers: self.clone(),
                    id,
                    called: false,
                };
                // Refused after shutdown: dropping `call` makes the final
                // Cancelled call.
                drop(self.runtime.spawn(async move { call.run() }));
            }
            Then::Cancel(id) => self.make_call(id, Status::Cancelled),
        }
    }

    /// Makes the call of queued timer `id`: `status` Ok for an expiry (then
    /// re-arms a repeating timer), `Cancelled` for the final call of a timer
    /// whose call was dropped at shutdown. A timer stopped since it was
    /// queued is skipped.
    fn make_call(self: &Arc<Self>, id: u64, status: Status) {
        let Some(call) = self.table.claim(id, status, this_thread()) else {
            return;
        };
        in_callback(|| call.cb.call(status));
        let then = self
            .table
            .finish(call, |deadline, id| self.arm(deadline, id));
        self.then(then);
    }

    /// Gives every queued call its final `Cancelled` (the caller task was
    /// dropped: shutdown).
    fn cancel_queued(self: &Arc<Self>) {
        while let Some(id) = self.table.next_queued() {
            self.make_call(id, Status::Cancelled);
        }
    }

    /// Starts a timer: `cb(Ok)` once `delay` has passed (never earlier),
    /// then every `period` if given. `on_id` gets the id before any call
    /// can run (the first call may stop the timer by its id). `Shutdown`
    /// once closed, `InvalidInput` for a zero period.
    pub(crate) fn start(
        self: &Arc<Self>,
        delay: Duration,
        period: Option<Duration>,
        cb: T,
        on_id: impl FnOnce(TimerId),
    ) -> Result<TimerId, Error> {
        let period_ns = match period {
            None => 0,
            Some(p) if p.is_zero() => return Err(Error::InvalidInput),
            Some(p) => u64::try_from(p.as_nanos()).unwrap_or(u64::MAX),
        };
        let deadline = later(Instant::now(), delay);
        let mut timer_id = 0;
        let then = self.table.start(
            cb,
            deadline,
            period_ns,
            |id| {
                timer_id = id;
                on_id(id)
            },
            |deadline, id| self.arm(deadline, id),
        )?;
        // (After a shutdown racing with this call the timer's call is
        // refused and the final Cancelled call is made; still a success.)
        self.then(then);
        Ok(timer_id)
    }

    /// Stops timer `id` (see `CallbackRuntime::timer_stop`); `NotFound` if
    /// it is not live.
    pub(crate) fn stop(&self, id: TimerId) -> Result<Stopped, Error> {
        self.table
            .stop(id, this_thread(), is_in_callback(), |key| {
                self.alarms.disarm(key);
            })
            .ok_or(Error::NotFound)
    }

    /// The deadline of live timer `id`.
    pub(crate) fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.table.deadline(id)
    }

    /// Runtime shutdown: no timer starts or re-arms from now on, and every
    /// timer armed or queued gets its final `Cancelled` call here, on this
    /// thread, before this returns. A call running now is left to end on
    /// its thread (a repeat's final call follows it there).
    pub(crate) fn close(&self) {
        let pending = self.table.close(|key| {
            self.alarms.disarm(key);
        });
        for cb in pending {
            in_callback(|| cb.call(Status::Cancelled));
        }
    }
}

impl<T: TimerCallback> Drop for Timers<T> {
    fn drop(&mut self) {
        // The last reference went. Shutdown closed the table, so no timer
        // is left armed or queued; this only guards the "exactly one final
        // call" rule should one ever be (alarms still in the wheel can no
        // longer reach the table: the wheel holds it weakly).
        for cb in self.table.take_pending() {
            in_callback(|| cb.call(Status::Cancelled));
        }
    }
}

/// The wheel fired a timer (or the runtime shut down): queue its call.
impl<T: TimerCallback> AlarmTarget for Timers<T> {
    fn fire(self: Arc<Self>, id: u64, shutdown: bool) {
        let then = self.table.fired(id, shutdown);
        self.then(then);
    }
}

/// The task that makes queued calls on a current-thread runtime.
struct Caller<T: TimerCallback> {
    timers: Arc<Timers<T>>,
    /// The next call, taken off the queue, waiting for the next poll.
    next: Option<u64>,
    /// Set when it returns normally: a new caller may own the queue then.
    finished: bool,
}

impl<T: TimerCallback> Caller<T> {
    /// One call per poll. It yields only while calls are left: a yield
    /// after the last one would leave a task ready for nothing (one more
    /// host wake per timer expiry, the backend fd readable after a run
    /// that made every call).
    async fn run(mut self) {
        self.next = self.timers.table.next_queued();
        while let Some(id) = self.next.take() {
            self.timers.make_call(id, Status::Ok);
            self.next = self.timers.table.next_queued();
            if self.next.is_some() {
                crate::task::yield_now().await;
            }
        }
        self.finished = true;
    }
}

impl<T: TimerCallback> Drop for Caller<T> {
    fn drop(&mut self) {
        if !self.finished {
            // In firing order: the call it held, then the queue.
            if let Some(id) = self.next.take() {
                self.timers.make_call(id, Status::Cancelled);
            }
            self.timers.cancel_queued();
        }
    }
}

/// One expiry's call on a multi-thread runtime. Dropped before it ran
/// (shutdown), it makes the final `Cancelled` call.
struct QueuedCall<T: TimerCallback> {
    timers: Arc<Timers<T>>,
    id: u64,
    called: bool,
}

impl<T: TimerCallback> QueuedCall<T> {
    fn run(mut self) {
        self.called = true;
        self.timers.make_call(self.id, Status::Ok);
    }
}

impl<T: TimerCallback> Drop for QueuedCall<T> {
    fn drop(&mut self) {
        if !self.called {
            self.timers.make_call(self.id, Status::Cancelled);
        }
    }
}
