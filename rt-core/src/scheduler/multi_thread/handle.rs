//! The shared half of the multi-thread scheduler: what every worker and
//! every `Handle` can reach (the inject queue, the stealing ends of the
//! local queues, the idle state, the owned-task list).

use super::idle::Idle;
use super::inject::Inject;
use super::lifo::Lifo;
use super::park::Unparker;
use super::queue::Steal;
use super::worker::Core;
use crate::blocking::Spawner;
use crate::runtime::config::Config;
use crate::runtime::context;
use crate::runtime::driver;
use crate::runtime::metrics::{SchedulerMetrics, WorkerMetrics};
use crate::scheduler;
use crate::task::list::OwnedTasks;
use crate::task::{Id, JoinHandle, Notified, Schedule, Task};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

/// A run-queue entry of this scheduler.
pub(super) type Entry = Notified<Arc<Handle>>;

/// The shared state of a multi-thread scheduler.
pub(crate) struct Handle {
    pub(super) shared: Shared,
    pub(super) config: Config,
    /// The I/O and time drivers' handles.
    pub(crate) driver: driver::Handle,
    /// The blocking pool (also runs the workers).
    pub(crate) blocking: Spawner,
}

pub(super) struct Shared {
    /// Per worker: the stealing end of its queue and its unparker.
    pub(super) remotes: Box<[Remote]>,
    /// The global queue: spawns and wakes from outside the workers, and
    /// overflow from full local queues.
    pub(super) inject: Inject<Entry>,
    pub(super) idle: Idle,
    /// A parked worker watches the others periodically: their LIFO slots
    /// and the driver (see `worker.rs`, "Stuck workers"). While nobody
    /// does, a task put in a LIFO slot, or a worker leaving its park, wakes
    /// a sleeper to take the role.
    pub(super) lifo_watch: AtomicBool,
    pub(super) owned: OwnedTasks<Arc<Handle>>,
    /// Cores handed in by workers that stopped; the last one in finishes
    /// the shutdown. (Cores live in boxes everywhere: they move between
    /// the worker, its context and this list without copying.)
    #[allow(clippy::vec_box)]
    pub(super) shutdown_cores: Mutex<Vec<Box<Core>>>,
    pub(super) worker_metrics: Box<[WorkerMetrics]>,
    pub(super) scheduler_metrics: SchedulerMetrics,
}

pub(super) struct Remote {
    pub(super) steal: Steal<Entry>,
    /// The worker's LIFO slot: taken by others only when it is stuck.
    pub(super) lifo: Arc<Lifo<Entry>>,
    pub(super) unpark: Unparker,
}

impl Handle {
    /// Spawns a task. From a worker of this runtime it goes to that
    /// worker's LIFO slot; from anywhere else to the inject queue.
    pub(crate) fn spawn<F>(me: &Arc<Handle>, future: F, id: Id) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (join, notified) = me.shared.owned.bind(future, me.clone(), id);
        if let Some(notified) = notified {
            me.schedule_task(notified, false);
        }
        join
    }

    pub(crate) fn owned(&self) -> &OwnedTasks<Arc<Handle>> {
        &self.shared.owned
    }

    pub(crate) fn inject_len(&self) -> usize {
        self.shared.inject.len()
    }

    pub(crate) fn scheduler_metrics(&self) -> &SchedulerMetrics {
        &self.shared.scheduler_metrics
    }

    pub(crate) fn worker_metrics(&self) -> &[WorkerMetrics] {
        &self.shared.worker_metrics
    }

    /// Number of workers.
    pub(crate) fn num_workers(&self) -> usize {
        self.shared.remotes.len()
    }

    pub(super) fn schedule_task(self: &Arc<Handle>, task: Entry, is_yield: bool) {
        context::with_scheduler(|cx| {
            if let Some(scheduler::Context::MultiThread(cx)) = cx {
                if Arc::ptr_eq(self, &cx.worker.handle) {
                    if let Some(core) = cx.core.borrow_mut().as_mut() {
                        // Deferred wakes of yielded tasks are yields too.
                        let is_yield = is_yield || cx.defer.is_waking();
                        self.schedule_local(core, task, is_yield);
                        return;
                    }
                }
            }
            // Not on one of our workers (or the core is away): global queue.
            self.shared.scheduler_metrics.inc_remote_schedule();
            if let Err(task) = self.shared.inject.push(task) {
                // Shut down: the task was already cancelled.
                drop(task);
                return;
            }
            self.notify_parked();
        });
    }

    fn schedule_local(&self, core: &mut Core, task: Entry, is_yield: bool) {
        let should_notify = if is_yield || !core.lifo_enabled {
            core.run_queue
                .push_back_or_overflow(task, &self.shared.inject, &mut core.stats);
            true
        } else {
            // The LIFO slot: the newest task runs next. Whatever was there
            // moves to the back of the queue.
            match core.lifo.slot.push(task) {
                Some(prev) => {
                    core.run_queue.push_back_or_overflow(
                        prev,
                        &self.shared.inject,
                        &mut core.stats,
                    );
                    true
                }
                None => {
                    // Only this worker can run the task now, unless a
                    // parked worker watches the LIFO slots: this one may be
                    // about to block (a C callback). Two plain loads; a
                    // wake only when workers sleep and none watches.
                    self.is_unwatched_with_sleepers()
                }
            }
        };
        // While the worker parks (its `park` is taken out), wakes come in
        // batches from the driver: notify once after the park instead.
        if should_notify && core.park.is_some() {
            self.notify_parked();
        }
    }

    /// True if some worker sleeps and none holds the watch: a worker that
    /// blocks its thread now would go unnoticed. Two plain loads.
    fn is_unwatched_with_sleepers(&self) -> bool {
        !self.shared.lifo_watch.load(SeqCst) && self.shared.idle.has_sleepers()
    }

    /// Wakes a sleeping worker if none watches the others; it takes the
    /// watch when it parks again (this worker runs by then).
    pub(super) fn wake_watcher_if_unwatched(&self) {
        if self.is_unwatched_with_sleepers() {
            self.notify_parked();
        }
    }

    /// Wakes one sleeping worker if the idle rules allow it.
    pub(super) fn notify_parked(&self) {
        if let Some(index) = self.shared.idle.worker_to_notify() {
            self.shared.remotes[index].unpark.unpark();
        }
    }

    /// Wakes a worker if any queue holds work (used by the last searcher
    /// before it parks).
    pub(super) fn notify_if_work_pending(&self) {
        if self.has_queued_work() {
            self.notify_parked();
        }
    }

    /// True if a worker's queue or the inject queue holds tasks.
    pub(super) fn has_queued_work(&self) -> bool {
        self.shared.remotes.iter().any(|r| !r.steal.is_empty()) || !self.shared.inject.is_empty()
    }

    /// A searching worker found work; if it was the last searcher, wake
    /// another to keep looking.
    pub(super) fn transition_worker_from_searching(&self) {
        if self.shared.idle.transition_worker_from_searching() {
            self.notify_parked();
        }
    }

    pub(super) fn next_remote_task(&self) -> Option<Entry> {
        self.shared.inject.pop()
    }

    /// Starts the shutdown: closes the inject queue and wakes every worker
    /// so each cancels its share of the tasks and stops. Idempotent.
    pub(crate) fn shutdown(&self) {
        if self.shared.inject.close() {
            for remote in self.shared.remotes.iter() {
                remote.unpark.unpark();
            }
        }
    }

    /// After a shutdown whose wait for the workers timed out (a task blocks
    /// its worker): cancels, on the calling thread, every task the workers
    /// have not cancelled yet. Tasks not running are dropped here, now; a
    /// running one is dropped by its poller once its poll returns. (Each
    /// worker cancels every shard as it stops; with all of them blocked,
    /// nobody else would until they return.)
    pub(crate) fn shutdown_remaining_tasks(me: &Arc<Handle>) {
        let handle = scheduler::Handle::MultiThread(me.clone());
        // Task destructors may call `spawn`: let them find this runtime
        // (closed, so they get cancelled handles).
        let _current = context::set_current(&handle);
        me.shared.owned.close_and_shutdown_all(0);
    }

    /// True once shutdown started.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shared.inject.is_closed()
    }

    /// A worker stopped and hands in its core. The last one drops every
    /// queued entry and shuts the driver down.
    pub(super) fn shutdown_core(&self, core: Box<Core>) {
        let cores = {
            let mut cores = self.shared.shutdown_cores.lock().unwrap();
            cores.push(core);
            if cores.len() != self.shared.remotes.len() {
                return;
            }
            std::mem::take(&mut *cores)
        };
        // Every worker cancelled its share of the tasks; a task woken since
        // may sit in a queue, but it is already complete.
        for mut core in cores {
            core.shutdown();
        }
        while let Some(task) = self.next_remote_task() {
            drop(task);
        }
    }
}

impl Schedule for Arc<Handle> {
    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        self.shared.owned.remove(task)
    }

    fn schedule(&self, task: Notified<Self>) {
        self.schedule_task(task, false);
    }

    fn yield_now(&self, task: Notified<Self>) {
        self.schedule_task(task, true);
    }
}
