//! The current-thread run loop.
//!
//! The driving thread owns the `Core` (local FIFO, tick, driver). While a
//! task runs, or the driver parks, the core sits in the thread's scheduler
//! `Context`, so wakes from this thread go straight to the local queue.
//! Each tick takes one task: from the shared queue first every
//! `global_queue_interval` ticks (or when the local queue is empty), else
//! from the local one; the driver is polled (zero timeout) every
//! `event_interval` ticks and parked in when there is no work.

use super::Handle;
use crate::runtime::config::Config;
use crate::runtime::context;
use crate::runtime::metrics::WorkerStats;
use crate::runtime::park::Park;
use crate::scheduler;
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
    fn park(&self, mut core: Box<Core>, handle: &Handle) -> Box<Core> {
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

    /// Polls the driver without blocking.
    fn park_yield(&self, mut core: Box<Core>) -> Box<Core> {
        let mut driver = core.driver.take().expect("driver missing");
        core = self.enter(core, || driver.park_timeout(Duration::ZERO)).0;
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
        let core = cx.core.borrow_mut().take();
        if let Some(mut core) = core {
            if cx.handle.inject.is_closed() {
                // The runtime was shut down while this thread drove it: the
                // shutdown could not reach the local queue or the driver.
                core.tasks.clear();
                if let Some(driver) = core.driver.as_mut() {
                    driver.shutdown();
                }
            }
            core.submit_metrics(&cx.handle);
            cx.handle.return_core(core);
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

/// Runs ready tasks until `budget` elapses or `max_tasks` ran; never blocks.
pub(super) fn run_for(
    handle: &Arc<Handle>,
    core: Box<Core>,
    budget: Duration,
    max_tasks: usize,
) -> usize {
    let start = Instant::now();
    CoreGuard::new(handle, core).enter(|mut core, context| {
        // Collect what the driver has ready before running tasks.
        core = context.park_yield(core);
        let mut ran = 0;
        while ran < max_tasks && start.elapsed() < budget {
            core.tick = core.tick.wrapping_add(1);
            if core.tick % core.event_interval == 0 {
                core = context.park_yield(core);
            }
            let Some(task) = core.next_task(handle) else {
                break;
            };
            core = context.run_task(core, task);
            ran += 1;
        }
        (core, ran)
    })
}

/// Shutdown: cancel every task, drop every queued entry, shut the driver.
pub(super) fn shutdown(handle: &Arc<Handle>, core: Box<Core>) {
    CoreGuard::new(handle, core).enter(|mut core, _context| {
        // Cancelling a task runs its destructors, which may wake or spawn
        // others: those land in the local queue or are refused (closed).
        handle.owned.close_and_shutdown_all(0);
        core.tasks.clear();
        handle.inject.close();
        debug_assert!(handle.owned.is_empty());
        if let Some(driver) = core.driver.as_mut() {
            driver.shutdown();
        }
        (core, ())
    });
}
