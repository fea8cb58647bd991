//! Current-thread scheduler: every task runs on the thread that drives the
//! runtime (`block_on`, or `run_for` from a host loop).
//!
//! - `Handle` (shared, `Arc`): the inject queue for wakes from other
//!   threads, the owned-task list, the driver's unparker, and the parked
//!   `Core` while no thread drives the runtime.
//! - `Core` (owned by the driving thread): the local FIFO, the tick counter
//!   and the driver. See `core.rs` for the run loop.

mod core;
mod host;
mod inject;

pub(crate) use self::core::Context;
use self::core::Core;
use self::host::HostState;
pub use self::host::RunMode;
use self::inject::Inject;
use crate::blocking::Spawner;
use crate::runtime::config::Config;
use crate::runtime::context;
use crate::runtime::driver;
use crate::runtime::metrics::{SchedulerMetrics, WorkerMetrics};
use crate::runtime::park::{Park, Unpark};
use crate::scheduler;
use crate::task::list::OwnedTasks;
use crate::task::{Id, JoinHandle, Notified, Schedule, Task};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Release};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::Duration;

/// The shared half of a current-thread scheduler.
pub(crate) struct Handle {
    /// Remote wakes and spawns from other threads.
    inject: Inject<Arc<Handle>>,
    /// Every live task.
    owned: OwnedTasks<Arc<Handle>>,
    /// Set when the `block_on` future was woken.
    woken: AtomicBool,
    /// Wakes the driving thread.
    unpark: Arc<dyn Unpark>,
    /// The I/O and time drivers' handles.
    pub(crate) driver: driver::Handle,
    /// The blocking pool.
    pub(crate) blocking: Spawner,
    /// The core, while no thread drives the runtime.
    core: Mutex<Option<Box<Core>>>,
    /// `block_on` callers on other threads waiting for the core.
    core_waiters: Mutex<Vec<Waker>>,
    /// Stop / wake requests and the wait source of a host loop.
    host: HostState,
    scheduler_metrics: SchedulerMetrics,
    worker_metrics: WorkerMetrics,
}

impl Handle {
    /// Creates the scheduler around its driver.
    pub(crate) fn new(
        park: Box<dyn Park>,
        driver: driver::Handle,
        blocking: Spawner,
        config: Config,
    ) -> Arc<Handle> {
        let unpark = park.unparker();
        // A `Default` run waits for blocking jobs too: wake it when the
        // last one ends.
        blocking.on_last_job(unpark.clone());
        let core = Core::new(park, &config);
        Arc::new(Handle {
            inject: Inject::new(),
            owned: OwnedTasks::new(1),
            woken: AtomicBool::new(false),
            unpark,
            driver,
            blocking,
            core: Mutex::new(Some(core)),
            core_waiters: Mutex::new(Vec::new()),
            host: HostState::new(),
            scheduler_metrics: SchedulerMetrics::default(),
            worker_metrics: WorkerMetrics::default(),
        })
    }

    /// Spawns a task.
    pub(crate) fn spawn<F>(me: &Arc<Handle>, future: F, id: Id) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (join, notified) = me.owned.bind(future, me.clone(), id);
        if let Some(notified) = notified {
            me.schedule(notified);
        }
        join
    }

    pub(crate) fn owned(&self) -> &OwnedTasks<Arc<Handle>> {
        &self.owned
    }

    pub(crate) fn inject_len(&self) -> usize {
        self.inject.len()
    }

    pub(crate) fn scheduler_metrics(&self) -> &SchedulerMetrics {
        &self.scheduler_metrics
    }

    pub(crate) fn worker_metrics(&self) -> &WorkerMetrics {
        &self.worker_metrics
    }

    /// Takes the core if no thread drives the runtime now.
    fn take_core(&self) -> Option<Box<Core>> {
        self.core.lock().unwrap().take()
    }

    /// Gives the core back and tells waiting `block_on` callers.
    fn return_core(&self, core: Box<Core>) {
        *self.core.lock().unwrap() = Some(core);
        let waiters = std::mem::take(&mut *self.core_waiters.lock().unwrap());
        for w in waiters {
            w.wake();
        }
    }

    /// True if the `block_on` future was woken (and clears the flag).
    fn reset_woken(&self) -> bool {
        self.woken.swap(false, AcqRel)
    }

    fn next_remote_task(&self) -> Option<Notified<Arc<Handle>>> {
        self.inject.pop()
    }

    /// Runs `future` to completion, driving the scheduler while this thread
    /// holds the core; if another thread drives it, waits for either the
    /// future or the core.
    pub(crate) fn block_on<F: Future>(me: &Arc<Handle>, future: F) -> F::Output {
        let handle = scheduler::Handle::CurrentThread(me.clone());
        let _enter = context::enter_runtime(&handle);
        let mut future = std::pin::pin!(future);
        // The runtime's own parker, not `std::thread::park` (user code may
        // park and unpark this thread itself).
        let parker = crate::runtime::park::CachedParker::new();
        let waker = parker.waker();
        let mut cx = std::task::Context::from_waker(&waker);
        loop {
            if let Some(core) = me.take_core() {
                return self::core::block_on(me, core, future.as_mut());
            }
            // Another thread drives the scheduler. Ask to be told when the
            // core comes back, then check both again before sleeping.
            {
                let mut waiters = me.core_waiters.lock().unwrap();
                if !waiters.iter().any(|w| w.will_wake(&waker)) {
                    waiters.push(waker.clone());
                }
            }
            if let Some(core) = me.take_core() {
                return self::core::block_on(me, core, future.as_mut());
            }
            if let std::task::Poll::Ready(v) =
                crate::task::coop::budget(|| future.as_mut().poll(&mut cx))
            {
                return v;
            }
            parker.park();
        }
    }

    /// Runs ready tasks for at most `budget` and at most `max_tasks` tasks,
    /// never blocking. Returns how many tasks were polled. Returns 0 at once
    /// if another thread (or this one, re-entrantly) drives the runtime.
    pub(crate) fn run_for(me: &Arc<Handle>, budget: Duration, max_tasks: usize) -> usize {
        let handle = scheduler::Handle::CurrentThread(me.clone());
        let Some(_enter) = context::try_enter_runtime(&handle) else {
            return 0;
        };
        let Some(core) = me.take_core() else {
            return 0;
        };
        self::core::run_for(me, core, budget, max_tasks)
    }

    /// Runs the scheduler on this thread in `mode` (see [`RunMode`]).
    /// Returns how many tasks were polled; 0 at once if another thread (or
    /// this one, re-entrantly) drives the runtime.
    pub(crate) fn run(me: &Arc<Handle>, mode: RunMode) -> usize {
        Handle::run_until(me, mode, &mut || true)
    }

    /// `run`, where a `Once` run also waits until `progress()` holds after
    /// a pass (an embedder whose unit of work is not a task: the C API
    /// counts C callbacks, not the library's own tasks).
    pub(crate) fn run_until(
        me: &Arc<Handle>,
        mode: RunMode,
        progress: &mut dyn FnMut() -> bool,
    ) -> usize {
        let handle = scheduler::Handle::CurrentThread(me.clone());
        let Some(_enter) = context::try_enter_runtime(&handle) else {
            return 0;
        };
        let Some(core) = me.take_core() else {
            return 0;
        };
        self::core::run(me, core, mode, progress)
    }

    /// Asks the running (or the next) `run`/`run_for` call to return.
    pub(crate) fn stop(&self) {
        self.host.request_stop(&*self.unpark);
    }

    /// Interrupts a blocking `run` (and makes the backend fd readable).
    pub(crate) fn wake(&self) {
        self.host.request_wake(&*self.unpark);
    }

    /// True while the runtime has work that may still make progress: a
    /// live task, an armed timer (a `WakeAt` has no task while it waits),
    /// or a blocking job whose completion may spawn a task.
    fn is_alive(&self) -> bool {
        !self.owned.is_empty()
            || self.blocking.jobs_in_flight() > 0
            || self
                .driver
                .time
                .as_ref()
                .is_some_and(|t| t.num_timers() > 0)
    }

    /// The reactor's epoll fd, for a host that waits in its own `poll`:
    /// readable when the runtime has work. The first call adds the host
    /// timer that makes it readable when the next timer is due.
    pub(crate) fn backend_fd(&self) -> std::io::Result<std::os::fd::RawFd> {
        let Some(io) = self.driver.io.as_ref() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the runtime was built without its I/O driver (enable_io)",
            ));
        };
        if self.host.timer().is_none() {
            let timer = crate::io::host_timer::HostTimer::new()?;
            io.register_host_timer(&timer)?;
            self.host.set_timer(timer);
            if let Some(core) = self.core.lock().unwrap().as_ref() {
                self.prepare_backend(core.has_tasks());
            }
            // Else a thread drives the runtime now: it arms the timer when
            // it hands the core back.
        }
        Ok(io.backend_fd())
    }

    /// How long a host may wait before it must run the runtime again:
    /// zero if tasks are ready, the time to the next timer, `None` if
    /// neither (only I/O or another thread can bring work then).
    pub(crate) fn backend_timeout(&self) -> Option<Duration> {
        let local_ready = match self.core.lock().unwrap().as_ref() {
            Some(core) => core.has_tasks(),
            // Being driven right now.
            None => true,
        };
        self.timeout_with(local_ready)
    }

    fn timeout_with(&self, local_ready: bool) -> Option<Duration> {
        if local_ready || self.inject_len() > 0 {
            return Some(Duration::ZERO);
        }
        let deadline = self.driver.time.as_ref()?.next_deadline()?;
        Some(deadline.saturating_duration_since(std::time::Instant::now()))
    }

    /// Arms the host timer (if a host asked for the backend fd) before
    /// the host gets control back: at once if work is ready, else at the
    /// next timer deadline.
    fn prepare_backend(&self, local_ready: bool) {
        if let Some(timer) = self.host.timer() {
            timer.arm(self.timeout_with(local_ready));
        }
    }

    /// Shuts the scheduler down: cancels every task, drains the queues and
    /// shuts the driver down. Idempotent.
    pub(crate) fn shutdown(me: &Arc<Handle>) {
        let handle = scheduler::Handle::CurrentThread(me.clone());
        // Task destructors may call `spawn`: let them find this runtime
        // (closed, so they get cancelled handles).
        let _current = context::set_current(&handle);
        match me.take_core() {
            Some(core) => self::core::shutdown(me, core),
            None => {
                // Another thread drives it (a `Handle::block_on`): close
                // everything we can reach; the driving thread drops the
                // queued entries when it finds the runtime closed.
                me.owned.close_and_shutdown_all(0);
                me.inject.close();
                // A host-driven `run` may be parked in the driver.
                me.unpark.unpark();
                // The driving thread may have handed the core back before it
                // could see the queue closed: then finish with it here.
                if let Some(core) = me.take_core() {
                    self::core::shutdown(me, core);
                }
            }
        }
    }
}

impl Schedule for Arc<Handle> {
    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        self.owned.remove(task)
    }

    fn schedule(&self, task: Notified<Self>) {
        context::with_scheduler(|cx| {
            if let Some(scheduler::Context::CurrentThread(cx)) = cx {
                if Arc::ptr_eq(self, &cx.handle) {
                    if let Some(core) = cx.core.borrow_mut().as_mut() {
                        core.push_task(task);
                        return;
                    }
                }
            }
            // From another thread (or with the core parked): the shared
            // queue, then wake the driving thread.
            self.scheduler_metrics.inc_remote_schedule();
            match self.inject.push(task) {
                Ok(true) => self.unpark.unpark(),
                // Not the first entry: its push woke the driving thread.
                Ok(false) => {}
                // Shut down: the task was already cancelled, drop the entry.
                Err(task) => drop(task),
            }
        });
    }
}

/// The `block_on` future's waker: flag it and wake the driving thread.
impl Wake for Handle {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Release);
        self.unpark.unpark();
    }
}
