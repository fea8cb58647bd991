//! The current-thread run loop.
//!
//! The driving thread owns the `Core` (local FIFO, tick, driver). While a
//! task runs, or the driver parks, the core sits in the thread's scheduler
//! `Context`, so wakes from this thread go straight to the local queue.
//! Each tick takes one task: from the shared queue first every
//! `global_queue_interval` ticks (or when the local queue is empty), else
//! from the local one; the driver is polled (zero timeout) every
//! `event_interval` ticks and parked in when there is no work. Tasks that
//! yielded (`yield_now`) wait in the context's defer list until the next
//! driver turn; with nothing else to run, that turn has a zero timeout.

use super::{Handle, RunMode};
use crate::runtime::config::Config;
use crate::runtime::context;
use crate::runtime::metrics::WorkerStats;
use crate::runtime::park::Park;
use crate::scheduler;
use crate::scheduler::Defer;
use crate::task::{coop, Notified};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// The scheduler state owned by the driving thread.
pub(crate) struct Core {
    tasks: VecDeque<Notified<Arc<Handle>>>,
    tick: u32,
    global_queue_interval: u32,
    event_interval: u32,
    driver: Option<Box<dyn Park>>,
    stats: WorkerStats,
}

/// The per-thread context while the core is driven.
pub(crate) struct Context {
    pub(super) handle: Arc<Handle>,
    pub(super) core: RefCell<Option<Box<Core>>>,
    /// Wakers of tasks that yielded, woken after the next driver turn.
    defer: Defer,
}

impl Core {
    pub(super) fn new(driver: Box<dyn Park>, config: &Config) -> Box<Core> {
        Box::new(Core {
            tasks: VecDeque::with_capacity(64),
            tick: 0,
            global_queue_interval: config.global_queue_interval.max(1),
            event_interval: config.event_interval.max(1),
            driver: Some(driver),
            stats: WorkerStats::default(),
        })
    }

    /// After shutdown: drops the queued entries (their tasks were
    /// cancelled) and shuts the driver down. Idempotent.
    fn drop_leftovers(&mut self) {
        self.tasks.clear();
        if let Some(driver) = self.driver.as_mut() {
            driver.shutdown();
        }
    }

    pub(super) fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    pub(super) fn push_task(&mut self, task: Notified<Arc<Handle>>) {
        self.tasks.push_back(task);
    }

    fn next_task(&mut self, handle: &Handle) -> Option<Notified<Arc<Handle>>> {
        if self.tick % self.global_queue_interval == 0 {
            handle.next_remote_task().or_else(|| self.tasks.pop_front())
        } else {
            self.tasks.pop_front().or_else(|| handle.next_remote_task())
        }
    }

    fn submit_metrics(&self, handle: &Handle) {
        self.stats.submit(&handle.worker_metrics, self.tasks.len());
    }
}

impl Context {
    /// Keeps `waker` until after the next driver turn (`yield_now`). False
    /// if the core is not here (then the caller wakes it at once).
    pub(crate) fn defer(&self, waker: &std::task::Waker) -> bool {
        if self.core.borrow().is_none() {
            return false;
        }
        self.defer.defer(waker);
        true
    }

    /// Wakes the deferred wakers into the local queue.
    fn wake_deferred(&self, core: Box<Core>) -> Box<Core> {
        if self.defer.is_empty() {
            return core;
        }
        self.enter(core, || self.defer.wake()).0
    }

    /// Puts the core in the context while `f` runs, then takes it back.
    fn enter<R>(&self, core: Box<Core>, f: impl FnOnce() -> R) -> (Box<Core>, R) {
        *self.core.borrow_mut() = Some(core);
        let ret = f();
        let core = self
            .core
            .borrow_mut()
            .take()
            .expect("core missing from context");
        (core, ret)
    }

    fn run_task(&self, mut core: Box<Core>, task: Notified<Arc<Handle>>) -> Box<Core> {
        core.stats.polls += 1;
        self.enter(core, || coop::budget(|| task.run())).0
    }

    /// Blocks in the driver until woken, unless work is already waiting.
    /// With only yielded tasks waiting, polls the driver without blocking
    /// and wakes them.
    fn park(&self, mut core: Box<Core>, handle: &Handle) -> Box<Core> {
        if !self.defer.is_empty() {
            return self.park_yield(core);
        }
        let mut driver = core.driver.take().expect("driver missing");
        if core.tasks.is_empty()
            && handle.inject_len() == 0
            && !handle.woken.load(std::sync::atomic::Ordering::Acquire)
        {
            core.stats.parks += 1;
            core.submit_metrics(handle);
            core = self.enter(core, || driver.park()).0;
        }
        core.driver = Some(driver);
        core
    }

    /// Polls the driver without blocking, then wakes the yielded tasks
    /// (behind what the driver woke).
    fn park_yield(&self, mut core: Box<Core>) -> Box<Core> {
        let mut driver = core.driver.take().expect("driver missing");
        core = self
            .enter(core, || {
                driver.park_timeout(Duration::ZERO);
                self.defer.wake();
            })
            .0;
        core.driver = Some(driver);
        core
    }
}

/// Holds the core in a context for one `block_on` / `run_for`, and gives it
/// back to the handle when done (also if the `block_on` future panics).
struct CoreGuard {
    context: scheduler::Context,
}

impl CoreGuard {
    fn new(handle: &Arc<Handle>, core: Box<Core>) -> CoreGuard {
        CoreGuard {
            context: scheduler::Context::CurrentThread(Context {
                handle: handle.clone(),
                core: RefCell::new(Some(core)),
                defer: Defer::new(),
            }),
        }
    }

    /// Runs `f` with the core and this thread's scheduler context set.
    fn enter<R>(self, f: impl FnOnce(Box<Core>, &Context) -> (Box<Core>, R)) -> R {
        let cx = self.context.expect_current_thread();
        let core = cx.core.borrow_mut().take().expect("core missing");
        let (core, ret) = context::set_scheduler(&self.context, || f(core, cx));
        *cx.core.borrow_mut() = Some(core);
        ret
    }
}

impl Drop for CoreGuard {
    fn drop(&mut self) {
        let cx = self.context.expect_current_thread();
        // Tasks that yielded are ready: into the local queue (the core is
        // still in the context), so the next run finds them.
        if !cx.defer.is_empty() && cx.core.borrow().is_some() {
            context::set_scheduler(&self.context, || cx.defer.wake());
        }
        let core = cx.core.borrow_mut().take();
        if let Some(core) = core {
            core.submit_metrics(&cx.handle);
            cx.handle.prepare_backend(core.has_tasks());
            cx.handle.return_core(core);
            // A shutdown while this thread drove the runtime could not take
            // the core, so it could not reach the local queue or the
            // driver: finish its job here. (Shutdown closes the queue and
            // then looks for the core again, so one of the two always sees
            // both the closed queue and the core.)
            if cx.handle.inject.is_closed() {
                if let Some(mut core) = cx.handle.take_core() {
                    core.drop_leftovers();
                    cx.handle.return_core(core);
                }
            }
        }
    }
}

/// The `block_on` loop: polls the future when it was woken, runs up to
/// `event_interval` tasks, polls the driver, parks when idle.
pub(super) fn block_on<F: Future>(
    handle: &Arc<Handle>,
    core: Box<Core>,
    mut future: Pin<&mut F>,
) -> F::Output {
    let waker = std::task::Waker::from(handle.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    // Poll the future on the first turn.
    handle
        .woken
        .store(true, std::sync::atomic::Ordering::Release);
    CoreGuard::new(handle, core).enter(|mut core, context| 'outer: loop {
        if handle.reset_woken() {
            let (c, res) = context.enter(core, || coop::budget(|| future.as_mut().poll(&mut cx)));
            core = c;
            if let Poll::Ready(v) = res {
                return (core, v);
            }
        }
        for _ in 0..core.event_interval {
            core.tick = core.tick.wrapping_add(1);
            let Some(task) = core.next_task(handle) else {
                core = context.park(core, handle);
                continue 'outer;
            };
            core = context.run_task(core, task);
        }
        // Give the driver its turn (I/O, timers) without blocking.
        core = context.park_yield(core);
    })
}

/// Runs ready tasks until `budget` elapses or `max_tasks` ran (or a stop
/// request); never blocks.
pub(super) fn run_for(
    handle: &Arc<Handle>,
    core: Box<Core>,
    budget: Duration,
    max_tasks: usize,
) -> usize {
    let deadline = Instant::now().checked_add(budget);
    CoreGuard::new(handle, core).enter(|core, context| {
        let (core, ran) = if handle.host.stop_requested() {
            (core, 0)
        } else {
            // Collect what the driver has ready before running tasks.
            let core = context.park_yield(core);
            run_ready(handle, core, context, max_tasks, deadline, true)
        };
        (end_run(handle, core, context), ran)
    })
}

/// Host-driven run in `mode` (see [`RunMode`]). `Once` ends after a pass
/// that ran a task and after which `progress()` holds (or on a wake or
/// stop request).
pub(super) fn run(
    handle: &Arc<Handle>,
    core: Box<Core>,
    mode: RunMode,
    progress: &mut dyn FnMut() -> bool,
) -> usize {
    CoreGuard::new(handle, core).enter(|core, context| {
        let (core, ran) = match mode {
            RunMode::NoWait => run_nowait(handle, core, context),
            RunMode::Once => run_once(handle, core, context, progress),
            RunMode::Default => run_default(handle, core, context),
        };
        (end_run(handle, core, context), ran)
    })
}

/// A run call returns: a stop request is done with, and so is a wake (the
/// host has control back). For a host that waits on the backend fd, one
/// last driver poll consumes the driver's own wakeups (a timer registered
/// by a task unparks the driver): left pending, they would make the fd
/// readable with nothing to do. What it reports is run next time, and the
/// fd is armed accordingly when the core is handed back.
fn end_run(handle: &Handle, mut core: Box<Core>, context: &Context) -> Box<Core> {
    core = if handle.host.timer().is_some() {
        context.park_yield(core)
    } else {
        context.wake_deferred(core)
    };
    handle.host.take_stop();
    handle.host.take_wake();
    core
}

/// Runs tasks in scheduler order (polling the driver every
/// `event_interval` ticks) until none is ready, `max_tasks` ran, the
/// deadline passed or a stop was requested. With only yielded tasks left,
/// `run_yielded` decides: poll the driver (zero timeout), wake them and go
/// on, or end (they run next time).
fn run_ready(
    handle: &Arc<Handle>,
    mut core: Box<Core>,
    context: &Context,
    max_tasks: usize,
    deadline: Option<Instant>,
    run_yielded: bool,
) -> (Box<Core>, usize) {
    let mut ran = 0;
    while ran < max_tasks && !handle.host.stop_requested() {
        // The first ready task runs whatever the clock says: a budget spent
        // before any task ran (the driver's poll on a loaded machine, a
        // budget smaller than one task) must not starve the runtime.
        if ran > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        core.tick = core.tick.wrapping_add(1);
        if core.tick % core.event_interval == 0 {
            core = context.park_yield(core);
        }
        let Some(task) = core.next_task(handle) else {
            if run_yielded && !context.defer.is_empty() {
                core = context.park_yield(core);
                continue;
            }
            break;
        };
        core = context.run_task(core, task);
        ran += 1;
    }
    (core, ran)
}

/// One pass: what the driver has ready now, then the tasks queued at that
/// point (tasks they wake run on the next pass).
fn run_nowait(handle: &Arc<Handle>, core: Box<Core>, context: &Context) -> (Box<Core>, usize) {
    if handle.host.stop_requested() {
        return (core, 0);
    }
    let core = context.park_yield(core);
    let queued = core.tasks.len() + handle.inject_len();
    run_ready(handle, core, context, queued, None, false)
}

/// Passes until at least one task ran and `progress()` holds; blocks in
/// the driver between them. A wake or stop request ends the wait even if
/// nothing ran.
fn run_once(
    handle: &Arc<Handle>,
    mut core: Box<Core>,
    context: &Context,
    progress: &mut dyn FnMut() -> bool,
) -> (Box<Core>, usize) {
    let mut total = 0;
    loop {
        let (c, ran) = run_nowait(handle, core, context);
        core = c;
        total += ran;
        if (total > 0 && progress())
            || handle.host.stop_requested()
            || handle.host.take_wake()
            || handle.inject.is_closed()
        {
            return (core, total);
        }
        if ran == 0 {
            core = context.park(core, handle);
        }
    }
}

/// Runs until a stop request or no work is left, parking in the driver
/// while tasks wait.
fn run_default(handle: &Arc<Handle>, mut core: Box<Core>, context: &Context) -> (Box<Core>, usize) {
    let mut ran = 0;
    loop {
        if handle.host.stop_requested() {
            return (core, ran);
        }
        let mut idle = false;
        for _ in 0..core.event_interval {
            if handle.host.stop_requested() {
                return (core, ran);
            }
            core.tick = core.tick.wrapping_add(1);
            let Some(task) = core.next_task(handle) else {
                idle = true;
                break;
            };
            core = context.run_task(core, task);
            ran += 1;
        }
        if !idle {
            // Give the driver its turn (I/O, timers) without blocking.
            core = context.park_yield(core);
            continue;
        }
        if !handle.is_alive() || handle.inject.is_closed() {
            return (core, ran);
        }
        // A wake only interrupts the wait: keep running.
        handle.host.take_wake();
        core = context.park(core, handle);
    }
}

/// Shutdown: cancel every task, drop every queued entry, shut the driver.
pub(super) fn shutdown(handle: &Arc<Handle>, core: Box<Core>) {
    CoreGuard::new(handle, core).enter(|mut core, _context| {
        // Cancelling a task runs its destructors, which may wake or spawn
        // others: those land in the local queue or are refused (closed).
        handle.owned.close_and_shutdown_all(0);
        handle.inject.close();
        debug_assert!(handle.owned.is_empty());
        core.drop_leftovers();
        (core, ())
    });
}
