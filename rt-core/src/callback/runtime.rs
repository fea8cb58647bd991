//! [`CallbackRuntime`]: a runtime driven through callbacks, with its timers,
//! fd watches, callback tasks and blocking work. The shutdown contract is
//! in `lifecycle.rs`, the host-driven mode in `host.rs`.

use super::gate::ShutdownFlag;
use super::lifecycle::{Life, Phase};
use super::timer::Timers;
use super::watch::Watches;
use super::{
    blocking, task, Error, OnceCallback, Stopped, TaskHandle, TimerCallback, TimerId,
    WatchCallback, WatchId,
};
use crate::runtime::{Handle, Runtime, RuntimeFlavor};
use crate::time::Instant;
use std::fmt;
use std::os::fd::RawFd;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A runtime driven through callbacks, with timers of type `T` and fd
/// watches of type `W`: what the C API's `rt_runtime` and Python's
/// `rtpy.Runtime` are.
///
/// Every callback handed in is called exactly once with its final status
/// ([`Status::Ok`](super::Status::Ok) when its work ran, or
/// [`Status::Cancelled`](super::Status::Cancelled)); timers and watches
/// once per expiry / readiness, then at most once with `Cancelled`. A call
/// that takes a callback and fails never calls it.
///
/// Dropping it shuts it down without a time limit (see
/// [`shutdown`](Self::shutdown)) and waits for host runs on other threads.
pub struct CallbackRuntime<T: TimerCallback, W: WatchCallback> {
    /// The runtime (`None` once a shutdown took it) and where its shutdown
    /// stands.
    pub(super) life: Mutex<Life>,
    /// Signalled when a shutdown is over (`Phase::Done`).
    pub(super) shutdown_over: Condvar,
    /// Set when a shutdown starts: lets every call check for shutdown
    /// without the lock. Shared with the tasks that make calls: none is
    /// made with status Ok once it is set.
    pub(super) shut_down: ShutdownFlag,
    /// Host runs ([`run`](Self::run) / [`run_budget`](Self::run_budget))
    /// under way: the host thread of a current-thread runtime runs its
    /// callbacks inside them, so a shutdown waits for them like for the
    /// runtime's threads.
    pub(super) host_runs: AtomicU32,
    pub(super) handle: Handle,
    pub(super) timers: Arc<Timers<T>>,
    pub(super) watches: Watches<W>,
}

impl<T: TimerCallback, W: WatchCallback> fmt::Debug for CallbackRuntime<T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackRuntime")
            .field("flavor", &self.flavor())
            .field("shut_down", &self.is_shutdown())
            .finish_non_exhaustive()
    }
}

/// A runtime's counters, copied at one moment (the C API's `rt_metrics`).
/// Available after shutdown too (then final).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Worker threads (1 for a current-thread runtime).
    pub workers: u64,
    /// Tasks alive (spawned, not yet finished).
    pub tasks_alive: u64,
    /// Tasks ever spawned.
    pub tasks_spawned: u64,
    /// Task polls, all workers.
    pub polls: u64,
    /// Tasks stolen between workers.
    pub steals: u64,
    /// Local queue overflows into the shared queue.
    pub overflows: u64,
    /// Tasks scheduled from outside the runtime's threads.
    pub remote_schedules: u64,
    /// Times workers parked.
    pub parks: u64,
    /// Threads of the blocking pool, the worker threads of a multi-thread
    /// runtime included (they run on it).
    pub blocking_threads: u64,
    /// Idle threads of the blocking pool.
    pub blocking_idle_threads: u64,
    /// Blocking jobs waiting for a thread.
    pub blocking_queue_depth: u64,
    /// Timers armed in the wheel.
    pub timers: u64,
    /// File descriptors registered with the reactor.
    pub io_registrations: u64,
}

impl<T: TimerCallback, W: WatchCallback> CallbackRuntime<T, W> {
    /// Wraps `runtime` (built with its timer and I/O drivers: `enable_all`).
    ///
    /// # Panics
    /// If the runtime was built without its timer.
    pub fn new(runtime: Runtime) -> CallbackRuntime<T, W> {
        let handle = runtime.handle().clone();
        let timers = Timers::new(handle.clone());
        CallbackRuntime {
            life: Mutex::new(Life {
                runtime: Some(runtime),
                phase: Phase::Live,
            }),
            shutdown_over: Condvar::new(),
            shut_down: ShutdownFlag::default(),
            host_runs: AtomicU32::new(0),
            handle,
            timers,
            watches: Watches::default(),
        }
    }

    /// The runtime's handle (to spawn futures, enter its context...), or
    /// `Err(Shutdown)` once its shutdown has begun.
    pub fn handle(&self) -> Result<&Handle, Error> {
        if self.is_shutdown() {
            return Err(Error::Shutdown);
        }
        Ok(&self.handle)
    }

    /// True once the shutdown has begun. Lock-free.
    pub fn is_shutdown(&self) -> bool {
        self.shut_down.is_set()
    }

    /// For a child process after `fork(2)`: the runtime's threads exist
    /// only in the parent, so this copy of it can run nothing. Marks it shut
    /// down, lock-free (a lock a parent's thread held at the fork stays held
    /// in the child), so every call that hands in work answers
    /// [`Error::Shutdown`] instead of accepting work no thread will ever
    /// run. The copy must then be leaked: a shutdown or drop would wait for
    /// threads that are not there.
    pub fn abandon_after_fork(&self) {
        self.shut_down.set();
    }

    /// The runtime's flavor.
    pub fn flavor(&self) -> RuntimeFlavor {
        self.handle.runtime_flavor()
    }

    /// The flag the shutdown sets first, for a binding's own tasks (the C
    /// API's poll tasks), which may outlive this runtime object: no call
    /// with status Ok once it is set.
    pub fn shutdown_flag(&self) -> ShutdownFlag {
        self.shut_down.clone()
    }

    /// `NotFound` becomes `Shutdown` once the shutdown has begun (the
    /// shutdown took the entry: its final call, or the drain of the
    /// watches): a call racing a shutdown reports the shutdown, not a
    /// consequence of it. So does the kernel's `ENOENT` (a watch's re-arm
    /// on an fd number that names another file now): the C API has one
    /// code for both (`RT_ENOENT` is `-ENOENT`), and always mapped it so.
    fn gone_or_shutdown(&self, e: Error) -> Error {
        match e {
            Error::NotFound if self.is_shutdown() => Error::Shutdown,
            Error::Os(ref os) if os.raw_os_error() == Some(libc::ENOENT) && self.is_shutdown() => {
                Error::Shutdown
            }
            e => e,
        }
    }

    /// The runtime's counters. Works after shutdown too.
    pub fn metrics(&self) -> MetricsSnapshot {
        let m = self.handle.metrics();
        let workers = m.num_workers();
        let sum = |f: &dyn Fn(usize) -> u64| (0..workers).map(f).sum::<u64>();
        MetricsSnapshot {
            workers: workers as u64,
            tasks_alive: m.num_alive_tasks() as u64,
            tasks_spawned: m.spawned_tasks_count(),
            polls: sum(&|w| m.worker_poll_count(w)),
            steals: sum(&|w| m.worker_steal_count(w)),
            overflows: sum(&|w| m.worker_overflow_count(w)),
            remote_schedules: m.remote_schedule_count(),
            parks: sum(&|w| m.worker_park_count(w)),
            blocking_threads: m.num_blocking_threads() as u64,
            blocking_idle_threads: m.num_idle_blocking_threads() as u64,
            blocking_queue_depth: m.blocking_queue_depth() as u64,
            timers: m.num_timers() as u64,
            io_registrations: m.num_io_registrations() as u64,
        }
    }

    /// Spawns a callback task: `cb(Ok)` runs once on a runtime thread (on a
    /// current-thread runtime: on the thread that drives it). If the task
    /// is aborted before it started, or the runtime's shutdown begins first
    /// (also when a callback on that worker called `shutdown`),
    /// `cb(Cancelled)` is called instead, exactly once, possibly on the
    /// thread calling [`TaskHandle::abort`] / [`shutdown`](Self::shutdown).
    ///
    /// With `handle`, returns a [`TaskHandle`] (abort, join); without, no
    /// shared state is allocated. `Err(Shutdown)` (then `cb` is never
    /// called).
    pub fn spawn(&self, cb: impl OnceCallback, handle: bool) -> Result<Option<TaskHandle>, Error> {
        let h = self.handle()?;
        Ok(task::spawn(h, self.shutdown_flag(), cb, handle))
    }

    /// Runs `work` on the blocking pool (a thread where blocking is fine),
    /// then `done(Ok)` exactly once on a runtime thread. If `work` never
    /// started (aborted first, or the runtime shut down while it waited for
    /// a free pool thread, the pool being at its cap), `done(Cancelled)` is
    /// called instead and `work` never runs. If the runtime shuts down
    /// while `work` runs, `done(Ok)` runs on the pool thread right after
    /// `work`. An abort of queued work makes the `Cancelled` call at once,
    /// on the aborting thread. If `work` panics, `done(Cancelled)` follows
    /// on the pool thread.
    ///
    /// `Err(Shutdown)`; `Err(Os(EAGAIN))` when the pool has no thread and
    /// the OS refuses to start one (with a pool thread alive, the work
    /// waits for a free one instead). On error neither is called.
    pub fn spawn_blocking(
        &self,
        work: impl FnOnce() + Send + 'static,
        done: impl OnceCallback,
    ) -> Result<TaskHandle, Error> {
        let h = self.handle()?;
        blocking::spawn_blocking(h, self.shutdown_flag(), work, done)
    }

    /// Starts a timer: `cb.call(Ok)` runs on a runtime thread once `delay`
    /// has passed (never earlier), then every `period` if given. Ticks are
    /// 1 ms; a repeating timer that falls behind skips to the next period
    /// instead of firing in a burst. On a current-thread runtime the calls
    /// run in deadline order, timers due in the same millisecond in the
    /// order they were started. A waiting timer costs no task and starting
    /// one allocates nothing of its own.
    ///
    /// A one-shot timer is done after its call (its id then gives
    /// `NotFound`). A timer still armed at shutdown (or fired, its call not
    /// started) gets one final `Cancelled` call before
    /// [`shutdown`](Self::shutdown) returns; a repeating timer whose call
    /// runs at shutdown gets it right after that call, on the same thread;
    /// a stopped one gets none.
    ///
    /// `Err(Shutdown)`; `Err(InvalidInput)` for a zero period. On error
    /// `cb` is never called.
    pub fn timer_start(
        &self,
        delay: Duration,
        period: Option<Duration>,
        cb: T,
    ) -> Result<TimerId, Error> {
        self.timer_start_with(delay, period, cb, |_| {})
    }

    /// [`timer_start`](Self::timer_start), where `on_id` gets the id before
    /// any call can run (the first call may stop the timer by its id: the
    /// C API stores it in `*out` here).
    pub fn timer_start_with(
        &self,
        delay: Duration,
        period: Option<Duration>,
        cb: T,
        on_id: impl FnOnce(TimerId),
    ) -> Result<TimerId, Error> {
        self.handle()?;
        self.timers.start(delay, period, cb, on_id)
    }

    /// Stops a timer. After it returns `Ok(Stopped::Done)` the callback is
    /// not running on any other thread and will not be called again (not
    /// even with `Cancelled`); called from inside the timer's own callback
    /// it returns at once and no further call happens.
    ///
    /// `Ok(Stopped::StillRunning)` when called from inside another runtime
    /// callback while this timer's callback runs on another thread: the
    /// timer is stopped (no further call starts) but that call may still be
    /// finishing (waiting there could deadlock two callbacks stopping each
    /// other). `Err(NotFound)` if the timer already fired (one-shot,
    /// including one whose final call is running now), was stopped, or the
    /// id is unknown; `Err(Shutdown)` once shutdown has begun (also when
    /// racing it: the shutdown claimed the final call).
    pub fn timer_stop(&self, id: TimerId) -> Result<Stopped, Error> {
        self.handle()?;
        self.timers.stop(id).map_err(|e| self.gone_or_shutdown(e))
    }

    /// The deadline of a live timer: its next expiry (while its call is
    /// queued or runs: the expiry being called); `None` for a timer that
    /// is gone (fired one-shot, stopped, stale id).
    pub fn timer_deadline(&self, id: TimerId) -> Option<Instant> {
        self.timers.deadline(id)
    }

    /// Watches `fd`: `cb.call(fd, events, Ok)` runs on a runtime thread
    /// whenever `fd` is ready for `interest` ([`READABLE`](super::READABLE)
    /// and/or [`WRITABLE`](super::WRITABLE)); `events` holds what is ready,
    /// plus [`HUP`](super::HUP) / [`ERROR`](super::ERROR) when the fd
    /// reports them. Level-triggered, like `epoll`'s default and libuv's
    /// `uv_poll`: a callback that leaves data unread is called again, after
    /// other tasks had a turn. `fd` must be non-blocking.
    ///
    /// Ownership: the caller keeps owning `fd`; the runtime never closes it
    /// and keeps no duplicate. It uses the fd number until
    /// [`watch_close`](Self::watch_close) returns or the final `Cancelled`
    /// call starts: close `fd` only after one of these. One watch per fd:
    /// `Err(Os(EEXIST))` for a second (a `dup` is another fd). An fd closed
    /// without a close of its watch: the watch notices at its next re-arm,
    /// or when the number is watched again, and falls silent (its close is
    /// still needed, and touches nothing else).
    ///
    /// A watch still active at shutdown gets one final
    /// `cb.call(fd, 0, Cancelled)`; a closed one gets none. No call with
    /// `Ok` starts once the runtime's shutdown has begun.
    ///
    /// `Err(InvalidInput)` for a negative fd or an interest without
    /// `READABLE` / `WRITABLE`; `Err(Os(..))` if the kernel refuses the fd
    /// (`EBADF`, `EPERM` for a regular file); `Err(Shutdown)`. A call
    /// racing the shutdown returns `Shutdown`, or succeeds and the watch
    /// gets its final call (maybe before this returns). On error `cb` is
    /// never called.
    pub fn watch(&self, fd: RawFd, interest: u32, cb: W) -> Result<WatchId, Error> {
        self.watch_with(fd, interest, cb, |_| {})
    }

    /// [`watch`](Self::watch), where `on_id` gets the id before the watch's
    /// first call can run (the C API stores it in `*out` here).
    pub fn watch_with(
        &self,
        fd: RawFd,
        interest: u32,
        cb: W,
        on_id: impl FnOnce(WatchId),
    ) -> Result<WatchId, Error> {
        if fd < 0 || interest & (super::READABLE | super::WRITABLE) == 0 {
            return Err(Error::InvalidInput);
        }
        let handle = self.handle()?;
        self.watches
            .watch(handle, self.shutdown_flag(), fd, interest, cb, on_id)
    }

    /// Changes a watch's interest; readiness the fd has for the new
    /// interest is reported at the reactor's next turn.
    ///
    /// `Err(NotFound)` for an unknown or closed id, or a watch whose fd was
    /// closed behind its back (`Os(EBADF)` when that shows now);
    /// `Err(InvalidInput)` for an empty interest; `Err(Shutdown)` once
    /// shutdown has begun (also when racing it); `Err(Os(..))` if the
    /// kernel refuses the change (the new interest is recorded anyway).
    pub fn watch_modify(&self, id: WatchId, interest: u32) -> Result<(), Error> {
        if interest & (super::READABLE | super::WRITABLE) == 0 {
            return Err(Error::InvalidInput);
        }
        self.handle()?;
        self.watches
            .modify(id, interest)
            .map_err(|e| self.gone_or_shutdown(e))
    }

    /// Closes a watch. After it returns `Ok(Stopped::Done)` the callback is
    /// not running on any other thread and will not be called again (no
    /// `Cancelled` either); called from inside the watch's own callback it
    /// returns at once and no further call happens. The reactor has let go
    /// of the fd when it returns (`epoll_ctl` DEL): the runtime never uses
    /// the fd number again, and closing the fd then closes the file.
    ///
    /// `Ok(Stopped::StillRunning)` when called from inside another runtime
    /// callback while this watch's callback runs on another thread: closed
    /// (no further call starts; the reactor let go of the fd) but that call
    /// may still be finishing. `Err(NotFound)` for an unknown or closed id;
    /// `Err(Shutdown)` once shutdown has begun, also when racing it (a
    /// watch still active then gets its final `Cancelled` call).
    pub fn watch_close(&self, id: WatchId) -> Result<Stopped, Error> {
        self.handle()?;
        self.watches.close(id).map_err(|e| self.gone_or_shutdown(e))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::callback::Status;

    #[derive(Clone)]
    struct NoTimer;
    impl TimerCallback for NoTimer {
        fn call(&self, _: Status) {}
    }
    struct NoWatch;
    impl WatchCallback for NoWatch {
        fn call(&self, _: RawFd, _: u32, _: Status) {}
    }

    #[test]
    fn an_entry_gone_while_racing_the_shutdown_reads_as_the_shutdown() {
        let rt = CallbackRuntime::<NoTimer, NoWatch>::new(
            crate::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        );
        let enoent = || Error::Os(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(matches!(
            rt.gone_or_shutdown(Error::NotFound),
            Error::NotFound
        ));
        assert!(matches!(rt.gone_or_shutdown(enoent()), Error::Os(_)));
        rt.shutdown(None).unwrap();
        assert!(matches!(
            rt.gone_or_shutdown(Error::NotFound),
            Error::Shutdown
        ));
        // The kernel's ENOENT for a watch's re-arm (its fd number names
        // another file now) was RT_ENOENT too in the C API (-ENOENT), so a
        // race with the shutdown reported RT_ESHUTDOWN: still so.
        assert!(matches!(rt.gone_or_shutdown(enoent()), Error::Shutdown));
        let eexist = Error::Os(std::io::Error::from_raw_os_error(libc::EEXIST));
        assert!(matches!(rt.gone_or_shutdown(eexist), Error::Os(_)));
    }
}
