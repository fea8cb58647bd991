//! A multi-thread worker: its `Core` (local queue, LIFO slot, parker) and
//! its run loop.
//!
//! Each tick takes one task: every `global_queue_interval` ticks from the
//! inject queue first, otherwise the LIFO slot, the local queue, then a
//! batch from the inject queue; if all are empty it searches (steals half
//! of a random victim's queue) and finally parks. Every `event_interval`
//! ticks the driver gets a zero-timeout turn. Tasks that yielded wait in
//! the context's defer list until the next driver turn (a zero-timeout one
//! instead of the park when nothing else is ready), then go to the back of
//! the local queue.
//!
//! # Stuck workers
//!
//! A task may block its thread (a C callback that sleeps or waits). Two
//! things must not wait for it: the task in its worker's LIFO slot, and
//! the drivers (timers, fds), which that worker may have left to run it.
//!
//! The task a running task spawns or wakes goes to the worker's LIFO slot
//! and, normally, runs right after it on the same worker. Another worker
//! may take it: one that finds the slot full while the owner's poll count
//! (bumped at each poll) has not moved for [`STUCK_POLL`]. Who looks:
//! - a parked worker, while some other worker runs, holds the watch
//!   (`Shared::lifo_watch`, one holder) and parks at most
//!   [`LIFO_WATCH_INTERVAL`] at a time, checking the slots each time;
//! - busy workers check at their maintenance (every `event_interval`);
//! - a task put in a LIFO slot while workers sleep and nobody holds the
//!   watch wakes a sleeper, which takes it when it parks again (the owner
//!   may not get another chance: it may be about to block);
//! - so does a worker that leaves its park (its own driver turn, or a
//!   notification) when it starts its first task.
//!
//! The holder lets the watch go when it leaves its park, or when it finds
//! every other worker parked and none started a poll since its previous
//! look (idle for a whole watching park).
//!
//! The watcher parks on its condvar while others turn the driver, and in
//! the driver when nobody turned it during its previous park (`park.rs`):
//! then timers fire and fds are polled within about two watching parks of
//! their time while a worker blocks, if another one is idle.
//!
//! The cost: a runtime that goes idle between sparse events (a timer every
//! 20 ms, say) wakes a second worker at each event, which then watches for
//! one or two parks (about twice the context switches of a runtime without
//! the watch); a busy one keeps its watcher, which wakes every 5 ms.
//!
//! The ping-pong fast path is kept: the owner still runs its LIFO task
//! next; filling an empty slot is a plain store and taking it one CAS (see
//! `lifo.rs`); the watch costs two plain loads per LIFO push.

use super::handle::{Entry, Handle};
use super::lifo::Lifo;
use super::park::Parker;
use super::queue::Local;
use crate::runtime::context;
use crate::runtime::metrics::WorkerStats;
use crate::scheduler;
use crate::scheduler::Defer;
use crate::task::coop;
use std::cell::RefCell;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// LIFO polls in a row before the slot is turned off until the chain ends.
const MAX_LIFO_POLLS_PER_TICK: usize = 3;

/// How long a worker must have been inside one poll before another takes
/// the task in its LIFO slot.
const STUCK_POLL: Duration = Duration::from_millis(5);

/// How often the parked worker that holds the LIFO watch wakes to check
/// the slots (only while some other worker runs).
const LIFO_WATCH_INTERVAL: Duration = Duration::from_millis(5);

/// One worker thread's identity; its core travels with the thread.
pub(super) struct Worker {
    pub(super) handle: Arc<Handle>,
    pub(super) index: usize,
    /// The core until the thread starts and takes it.
    pub(super) core: Mutex<Option<Box<Core>>>,
}

/// The state only the running worker touches.
pub(crate) struct Core {
    tick: u32,
    /// The LIFO slot (the task to run next, spawned or woken by the
    /// current task) and the poll count others watch.
    pub(super) lifo: Arc<Lifo<Entry>>,
    pub(super) lifo_enabled: bool,
    /// This worker holds `Shared::lifo_watch`.
    holds_lifo_watch: bool,
    /// The worker left a park and has not run a task since.
    left_park: bool,
    /// While it holds the watch: the other workers' poll counts (summed)
    /// at its last look.
    others_polls_seen: u32,
    pub(super) run_queue: Local<Entry>,
    is_searching: bool,
    is_shutdown: bool,
    /// The last park ended with tasks the drivers woke: when out of work,
    /// poll the drivers before stealing (see `Context::poll_drivers`).
    io_first: bool,
    /// Taken out while the worker parks.
    pub(super) park: Option<Parker>,
    pub(super) stats: WorkerStats,
    rand: FastRand,
    global_queue_interval: u32,
    event_interval: u32,
    index: usize,
}

/// The scheduler context of a worker thread.
pub(crate) struct Context {
    pub(super) worker: Arc<Worker>,
    /// The core while a task runs or the worker parks.
    pub(super) core: RefCell<Option<Box<Core>>>,
    /// Wakers of tasks that yielded, woken after the next driver turn.
    pub(super) defer: Defer,
}

/// `Err` means the core left this thread (reserved for `block_in_place`).
type RunResult = Result<Box<Core>, ()>;

impl Core {
    pub(super) fn new(
        index: usize,
        run_queue: Local<Entry>,
        lifo: Arc<Lifo<Entry>>,
        park: Parker,
        handle_cfg: &crate::runtime::config::Config,
    ) -> Box<Core> {
        Box::new(Core {
            tick: 0,
            lifo,
            lifo_enabled: !handle_cfg.disable_lifo_slot,
            holds_lifo_watch: false,
            left_park: false,
            others_polls_seen: 0,
            run_queue,
            is_searching: false,
            is_shutdown: false,
            io_first: false,
            park: Some(park),
            stats: WorkerStats::default(),
            rand: FastRand::new(index as u64 + 1),
            global_queue_interval: handle_cfg.global_queue_interval.max(1),
            event_interval: handle_cfg.event_interval.max(1),
            index,
        })
    }

    fn next_task(&mut self, worker: &Worker) -> Option<Entry> {
        let handle = &worker.handle;
        if self.tick % self.global_queue_interval == 0 {
            return handle.next_remote_task().or_else(|| self.next_local_task());
        }
        if let Some(task) = self.next_local_task() {
            return Some(task);
        }
        if handle.shared.inject.is_empty() {
            return None;
        }
        // Pull a fair share of the inject queue into the local one.
        let cap = self
            .run_queue
            .remaining_slots()
            .min(self.run_queue.max_capacity() / 2);
        let n = (handle.shared.inject.len() / handle.num_workers() + 1)
            .min(cap)
            .max(1);
        self.run_queue.refill_from(&handle.shared.inject, n)
    }

    fn next_local_task(&mut self) -> Option<Entry> {
        self.lifo.slot.take().or_else(|| self.run_queue.pop())
    }

    /// Moves the task in another worker's LIFO slot to the back of this
    /// worker's queue if that worker has been inside one poll for at least
    /// [`STUCK_POLL`] (see "Stuck workers").
    fn steal_stuck_lifo(&mut self, worker: &Worker) {
        let shared = &worker.handle.shared;
        let mut now = None;
        for (i, remote) in shared.remotes.iter().enumerate() {
            if i == self.index || !remote.lifo.slot.is_full() {
                continue;
            }
            let now = *now.get_or_insert_with(super::lifo::stuck_clock_ms);
            if u128::from(remote.lifo.unmoved_for_ms(now)) >= STUCK_POLL.as_millis() {
                if let Some(task) = remote.lifo.slot.take() {
                    self.stats.steals += 1;
                    self.run_queue
                        .push_back_or_overflow(task, &shared.inject, &mut self.stats);
                    return;
                }
            }
        }
    }

    /// Before a park: whether this worker holds the LIFO watch now (then it
    /// parks at most [`LIFO_WATCH_INTERVAL`]). It takes or keeps the watch
    /// while another worker runs, and lets it go once all others are parked
    /// and none has started a poll since its previous look (idle for a
    /// whole watching park: in a ping-pong, the others park and leave again
    /// all the time, and each leave would wake a new watcher).
    fn watch_lifo_slots(&mut self, worker: &Worker) -> bool {
        let shared = &worker.handle.shared;
        if shared.remotes.len() == 1 {
            return false;
        }
        // This worker is parked already: any unparked one is another.
        if self.holds_lifo_watch {
            let others_polls = self.others_polls(worker);
            let others_idle = others_polls == self.others_polls_seen;
            self.others_polls_seen = others_polls;
            if others_idle && shared.idle.num_unparked() == 0 {
                self.release_lifo_watch(worker);
                // Then look again (below): a worker unparked since the load
                // above and filling its slot saw the watch taken and woke
                // nobody. (It sees the watch free if that look misses it:
                // SeqCst.)
            }
        }
        if !self.holds_lifo_watch && shared.idle.num_unparked() > 0 {
            self.holds_lifo_watch = shared
                .lifo_watch
                .compare_exchange(false, true, SeqCst, SeqCst)
                .is_ok();
            if self.holds_lifo_watch {
                self.others_polls_seen = self.others_polls(worker);
            }
        }
        self.holds_lifo_watch
    }

    /// The other workers' poll counts, summed (wrapping): unchanged between
    /// two looks means none of them started a poll in between.
    fn others_polls(&self, worker: &Worker) -> u32 {
        let remotes = &worker.handle.shared.remotes;
        (remotes.iter().enumerate())
            .filter(|&(i, _)| i != self.index)
            .fold(0, |sum, (_, r)| sum.wrapping_add(r.lifo.polls()))
    }

    fn release_lifo_watch(&mut self, worker: &Worker) {
        if self.holds_lifo_watch {
            self.holds_lifo_watch = false;
            worker.handle.shared.lifo_watch.store(false, SeqCst);
        }
    }

    /// Steals from a random victim, then falls back on the inject queue.
    fn steal_work(&mut self, worker: &Worker) -> Option<Entry> {
        if !self.transition_to_searching(worker) {
            return None;
        }
        let remotes = &worker.handle.shared.remotes;
        let num = remotes.len();
        let start = self.rand.next_n(num as u32) as usize;
        for i in 0..num {
            let i = (start + i) % num;
            if i == worker.index {
                continue;
            }
            if let Some(task) = remotes[i]
                .steal
                .steal_into(&mut self.run_queue, &mut self.stats)
            {
                return Some(task);
            }
        }
        worker.handle.next_remote_task()
    }

    fn transition_to_searching(&mut self, worker: &Worker) -> bool {
        if !self.is_searching {
            self.is_searching = worker.handle.shared.idle.transition_worker_to_searching();
        }
        self.is_searching
    }

    fn transition_from_searching(&mut self, worker: &Worker) {
        if !self.is_searching {
            return;
        }
        self.is_searching = false;
        worker.handle.transition_worker_from_searching();
    }

    fn has_tasks(&self) -> bool {
        self.lifo.slot.is_full() || self.run_queue.has_tasks()
    }

    /// Others should be woken if this worker has more than it can run now.
    fn should_notify_others(&self) -> bool {
        if self.is_searching {
            return false;
        }
        usize::from(self.lifo.slot.is_full()) + self.run_queue.len() > 1
    }

    /// Prepares to park. False if the worker has work after all.
    fn transition_to_parked(&mut self, worker: &Worker) -> bool {
        if self.has_tasks() {
            return false;
        }
        let is_last_searcher = worker
            .handle
            .shared
            .idle
            .transition_worker_to_parked(worker.index, self.is_searching);
        self.is_searching = false;
        if is_last_searcher {
            worker.handle.notify_if_work_pending();
        }
        true
    }

    /// After a park returned: true if the worker should run again.
    fn transition_from_parked(&mut self, worker: &Worker) -> bool {
        if self.has_tasks() {
            // A worker that leaves its park watches no more: a LIFO push
            // may then wake a sleeper to take the watch.
            self.release_lifo_watch(worker);
            // Woken by its own driver turn with local work: leave the
            // sleepers list by itself.
            self.is_searching = !worker.handle.shared.idle.unpark_worker_by_id(worker.index);
            return true;
        }
        if worker.handle.shared.idle.is_parked(worker.index) {
            return false;
        }
        // Unparked by a notification: it is searching now.
        self.release_lifo_watch(worker);
        self.is_searching = true;
        true
    }

    fn maintenance(&mut self, worker: &Worker) {
        self.submit_metrics(worker);
        if !self.is_shutdown {
            self.is_shutdown = worker.handle.is_shutdown();
        }
    }

    fn submit_metrics(&self, worker: &Worker) {
        self.stats.submit(
            &worker.handle.shared.worker_metrics[self.index],
            self.run_queue.len(),
        );
    }

    /// Drops every queued entry and shuts the driver down (last worker).
    pub(super) fn shutdown(&mut self) {
        drop(self.lifo.slot.take());
        self.run_queue.clear();
        if let Some(park) = self.park.as_mut() {
            park.shutdown();
        }
    }
}

/// Starts a worker's run loop on a thread. If it is dropped without running
/// (its thread never started), it hands the worker's core in for shutdown,
/// so the scheduler's final cleanup still happens.
pub(super) struct Launch {
    worker: Option<Arc<Worker>>,
}

impl Launch {
    pub(super) fn new(worker: Arc<Worker>) -> Launch {
        Launch {
            worker: Some(worker),
        }
    }

    /// The thread body.
    pub(super) fn run(mut self) {
        if let Some(worker) = self.worker.take() {
            run(worker);
        }
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        let core = worker.core.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(core) = core {
            // Without this worker the runtime cannot run: shut it down.
            worker.handle.shutdown();
            worker.handle.shutdown_core(core);
        }
    }
}

/// The thread body of worker `worker`.
fn run(worker: Arc<Worker>) {
    let Some(core) = worker.core.lock().unwrap().take() else {
        return;
    };
    let handle = scheduler::Handle::MultiThread(worker.handle.clone());
    let _enter = context::enter_runtime(&handle);
    let cx = scheduler::Context::MultiThread(Context {
        worker,
        core: RefCell::new(None),
        defer: Defer::new(),
    });
    context::set_scheduler(&cx, || {
        let scheduler::Context::MultiThread(cx) = &cx else {
            unreachable!()
        };
        // The loop only ends by handing the core in (Err).
        let res = cx.run(core);
        debug_assert!(res.is_err());
        // The core left (shutdown, or `block_in_place` after the last
        // driver turn): what yielded goes to the inject queue.
        cx.defer.wake();
    });
}

impl Context {
    /// Keeps `waker` until after the next driver turn (`yield_now`). False
    /// if this thread has no core now (then the caller wakes it at once).
    pub(crate) fn defer(&self, waker: &std::task::Waker) -> bool {
        if self.core.borrow().is_none() {
            return false;
        }
        self.defer.defer(waker);
        true
    }

    fn run(&self, mut core: Box<Core>) -> RunResult {
        while !core.is_shutdown {
            core.tick = core.tick.wrapping_add(1);
            core = self.maintenance(core);
            if let Some(task) = core.next_task(&self.worker) {
                core = self.run_task(task, core)?;
                continue;
            }
            // Only while nothing is queued anywhere: queued work is stolen
            // first, as ever (a worker with hot I/O must not leave a busy
            // worker's queue waiting).
            if core.io_first && !self.worker.handle.has_queued_work() {
                core = self.poll_drivers(core);
                if let Some(task) = core.next_local_task() {
                    core = self.run_task(task, core)?;
                    continue;
                }
                // Nothing was pending: steal first again.
                core.io_first = false;
            }
            if let Some(task) = core.steal_work(&self.worker) {
                core = self.run_task(task, core)?;
            } else if !self.defer.is_empty() {
                // Only yielded tasks: a driver turn without sleeping wakes
                // them.
                core = self.park_timeout(core, Some(Duration::ZERO));
            } else {
                core = self.park(core);
            }
        }
        // Cancel this worker's share of the tasks, then hand the core in.
        self.worker
            .handle
            .shared
            .owned
            .close_and_shutdown_all(self.worker.index);
        core.submit_metrics(&self.worker);
        self.worker.handle.shutdown_core(core);
        Err(())
    }

    fn run_task(&self, task: Entry, mut core: Box<Core>) -> RunResult {
        // Stop searching first, so another idle worker may start.
        core.transition_from_searching(&self.worker);
        if core.left_park {
            // The first task after a park may block this thread: if the
            // others sleep and none watches, wake one (see "Stuck workers").
            core.left_park = false;
            self.worker.handle.wake_watcher_if_unwatched();
        }
        core.stats.polls += 1;
        core.lifo.poll_started();
        *self.core.borrow_mut() = Some(core);
        // The LIFO chain shares this task's budget.
        coop::budget(|| {
            task.run();
            let mut lifo_polls = 0;
            loop {
                let Some(mut core) = self.core.borrow_mut().take() else {
                    return Err(());
                };
                let Some(task) = core.lifo.slot.take() else {
                    core.lifo_enabled = !self.worker.handle.config.disable_lifo_slot;
                    return Ok(core);
                };
                if !coop::has_budget_remaining() {
                    core.run_queue.push_back_or_overflow(
                        task,
                        &self.worker.handle.shared.inject,
                        &mut core.stats,
                    );
                    return Ok(core);
                }
                lifo_polls += 1;
                if lifo_polls >= MAX_LIFO_POLLS_PER_TICK {
                    core.lifo_enabled = false;
                }
                core.stats.polls += 1;
                core.lifo.poll_started();
                *self.core.borrow_mut() = Some(core);
                task.run();
            }
        })
    }

    /// `block_in_place`: gives this worker's core to a new pool thread so
    /// the queued tasks keep running. False if this thread has no core (a
    /// nested call).
    pub(crate) fn hand_off_core(&self) -> bool {
        // Yielded tasks must not wait for us either: into the local queue.
        self.defer.wake();
        let Some(mut core) = self.core.borrow_mut().take() else {
            return false;
        };
        // The LIFO task must not wait for us: the new thread runs it.
        if let Some(task) = core.lifo.slot.take() {
            core.run_queue.push_back_or_overflow(
                task,
                &self.worker.handle.shared.inject,
                &mut core.stats,
            );
        }
        core.transition_from_searching(&self.worker);
        *self.worker.core.lock().unwrap() = Some(core);
        // A plain closure, not a `Launch`: if the thread cannot start, the
        // core stays in `worker.core` and is reclaimed just below.
        let worker = self.worker.clone();
        let launched = self
            .worker
            .handle
            .blocking
            .spawn_mandatory(Box::new(move || run(worker)));
        if launched.is_err() {
            // No thread to hand to: keep the core and just block.
            let core = self.worker.core.lock().unwrap().take();
            *self.core.borrow_mut() = core;
            return false;
        }
        true
    }

    /// After `block_in_place`: takes the core back if the new thread has
    /// not started with it yet. Otherwise this thread stops being a worker
    /// once the current task's poll returns.
    pub(crate) fn reclaim_core(&self) {
        if let Some(core) = self.worker.core.lock().unwrap().take() {
            *self.core.borrow_mut() = Some(core);
        }
    }

    fn maintenance(&self, mut core: Box<Core>) -> Box<Core> {
        if core.tick % core.event_interval == 0 {
            // A driver turn without sleeping.
            core = self.park_timeout(core, Some(Duration::ZERO));
            core.maintenance(&self.worker);
            core.steal_stuck_lifo(&self.worker);
        }
        core
    }

    /// Out of local work while I/O is hot (`Core::io_first`) and no queue
    /// holds tasks to steal: a zero-timeout turn of the drivers (if no
    /// other worker holds them) before the search. Readiness already pending,
    /// such as a loopback peer's reply, wakes its task into this queue
    /// without the idle protocol (the searching state, the sleepers list,
    /// a wake-up of another worker).
    fn poll_drivers(&self, core: Box<Core>) -> Box<Core> {
        self.park_timeout(core, Some(Duration::ZERO))
    }

    fn park(&self, mut core: Box<Core>) -> Box<Core> {
        if core.transition_to_parked(&self.worker) {
            while !core.is_shutdown {
                core.stats.parks += 1;
                core.submit_metrics(&self.worker);
                if core.watch_lifo_slots(&self.worker) {
                    core = self.park_watching(core);
                } else {
                    core = self.park_timeout(core, None);
                }
                // Local tasks after a park were woken by the drivers (others
                // wake into the inject queue): I/O is hot.
                core.io_first = core.has_tasks();
                if core.holds_lifo_watch {
                    core.steal_stuck_lifo(&self.worker);
                }
                core.maintenance(&self.worker);
                if core.transition_from_parked(&self.worker) {
                    break;
                }
            }
            core.release_lifo_watch(&self.worker);
            core.left_park = true;
        }
        core
    }

    fn park_timeout(&self, core: Box<Core>, duration: Option<Duration>) -> Box<Core> {
        self.park_with(core, |park| match duration {
            Some(timeout) => park.park_timeout(timeout),
            None => park.park(),
        })
    }

    /// The watching worker's park: until unparked or
    /// [`LIFO_WATCH_INTERVAL`] passed, in the driver if nobody else turned
    /// it during the previous one (see "Stuck workers").
    fn park_watching(&self, core: Box<Core>) -> Box<Core> {
        self.park_with(core, |park| park.park_watching(LIFO_WATCH_INTERVAL))
    }

    fn park_with(&self, mut core: Box<Core>, park_fn: impl FnOnce(&mut Parker)) -> Box<Core> {
        let mut park = core.park.take().expect("park missing");
        // The core stays reachable while parked, so wakes from the driver
        // on this thread go to the local queue.
        *self.core.borrow_mut() = Some(core);
        park_fn(&mut park);
        // After the driver turn: the tasks that yielded, behind what the
        // drivers woke.
        self.defer.wake();
        let mut core = self.core.borrow_mut().take().expect("core missing");
        core.park = Some(park);
        if core.should_notify_others() {
            self.worker.handle.notify_parked();
        }
        core
    }
}

/// A small xorshift generator for picking steal victims.
struct FastRand {
    state: u64,
}

impl FastRand {
    fn new(seed: u64) -> FastRand {
        FastRand {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn next_n(&mut self, n: u32) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        // Lemire's multiply-shift reduction into 0..n.
        (((x >> 32) * u64::from(n)) >> 32) as u32
    }
}
