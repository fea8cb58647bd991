//! The blocking thread pool.

use super::task::{BlockingSchedule, BlockingTask};
use crate::runtime::config::Callback;
use crate::runtime::context::{self, WeakHandle};
use crate::runtime::park::Unpark;
use crate::scheduler;
use crate::task::{self, JoinHandle, UnownedTask};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Owns the pool; shutting it down (or dropping it) stops the threads.
pub(crate) struct BlockingPool {
    spawner: Spawner,
}

/// Spawns onto the pool from anywhere.
#[derive(Clone)]
pub(crate) struct Spawner {
    inner: Arc<Inner>,
}

/// Settings of a pool.
pub(crate) struct PoolConfig {
    pub(crate) thread_name: Arc<dyn Fn() -> String + Send + Sync>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) after_start: Option<Callback>,
    pub(crate) before_stop: Option<Callback>,
    /// Threads for non-mandatory work.
    pub(crate) max_blocking_threads: usize,
    pub(crate) keep_alive: Duration,
}

struct Inner {
    shared: Mutex<Shared>,
    /// `spawn_blocking` closures submitted and not yet finished (or
    /// dropped): a host-driven runtime has work left while this is > 0.
    /// (Its own `Arc`: the closures hold it while they sit in `shared`.)
    jobs_in_flight: Arc<JobCount>,
    /// Idle threads wait here for work.
    condvar: Cvar,
    /// `shutdown` waits here for the threads to exit.
    exited: Cvar,
    config: PoolConfig,
    /// The runtime that owns the pool (set once it exists): the threads'
    /// start and stop hooks run in its context, as in Tokio. Weak: the
    /// runtime owns the pool, and a thread still exiting must not keep the
    /// runtime's drivers alive.
    runtime: std::sync::OnceLock<WeakHandle>,
}

type Cvar = Condvar;

struct Shared {
    /// `spawn_blocking` closures not picked up by a thread yet.
    queue: VecDeque<Queued>,
    /// Threads alive.
    num_th: usize,
    /// Of those, running non-mandatory work or waiting (counted against the
    /// cap).
    num_blocking_th: usize,
    /// Threads waiting for work.
    num_idle: usize,
    /// Wakeups sent to idle threads and not consumed yet.
    num_notify: usize,
    shutdown: bool,
}

/// A closure in the queue.
struct Queued {
    task: UnownedTask<BlockingSchedule>,
    /// A thread was started or woken for it when it was submitted: it
    /// counts as started (as in Tokio), so a shutdown lets it run. Else it
    /// waits for a busy thread to free up (the pool is at its cap), and a
    /// shutdown cancels it.
    has_thread: bool,
}

/// Runtime work (a worker thread body) that gets a thread of its own.
type Mandatory = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The pool this thread belongs to (address of its `Inner`), if any.
    static CURRENT_POOL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl BlockingPool {
    pub(crate) fn new(config: PoolConfig) -> BlockingPool {
        BlockingPool {
            spawner: Spawner {
                inner: Arc::new(Inner {
                    shared: Mutex::new(Shared {
                        queue: VecDeque::new(),
                        num_th: 0,
                        num_blocking_th: 0,
                        num_idle: 0,
                        num_notify: 0,
                        shutdown: false,
                    }),
                    jobs_in_flight: Arc::new(JobCount::default()),
                    condvar: Condvar::new(),
                    exited: Condvar::new(),
                    config,
                    runtime: std::sync::OnceLock::new(),
                }),
            },
        }
    }

    pub(crate) fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    /// Stops the pool: closures still waiting for a thread (the pool at its
    /// cap) are cancelled; those a thread was started or woken for run, as
    /// running ones finish; idle threads exit; and this waits up to
    /// `timeout` (`None`: no limit) for the threads.
    /// Returns true if every thread exited. Waiting from one of the pool's
    /// own threads would wait for itself, so it does not wait then.
    pub(crate) fn shutdown(&mut self, timeout: Option<Duration>) -> bool {
        let inner = &self.spawner.inner;
        let own_thread =
            CURRENT_POOL.try_with(|c| c.get()).unwrap_or(0) == Arc::as_ptr(inner) as usize;
        let timeout = if own_thread {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let cancelled: Vec<UnownedTask<BlockingSchedule>> = {
            let mut shared = inner.shared.lock().unwrap();
            if shared.shutdown {
                // Already shut down (and waited, as the first caller chose).
                return shared.num_th == 0;
            }
            shared.shutdown = true;
            inner.condvar.notify_all();
            let (run, cancel): (VecDeque<Queued>, VecDeque<Queued>) =
                std::mem::take(&mut shared.queue)
                    .into_iter()
                    .partition(|q| q.has_thread);
            shared.queue = run;
            cancel.into_iter().map(|q| q.task).collect()
        };
        // Threads may outlive this call by a moment (they drop their
        // reference to the pool after counting themselves out): let go of
        // the driver now.
        drop(inner.jobs_in_flight.on_zero.lock().unwrap().take());
        for task in cancelled {
            task.shutdown();
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut shared = inner.shared.lock().unwrap();
        while shared.num_th > 0 {
            match deadline {
                None => shared = inner.exited.wait(shared).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    shared = inner.exited.wait_timeout(shared, d - now).unwrap().0;
                }
            }
        }
        shared.num_th == 0
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl Spawner {
    /// Tells the pool which runtime owns it (before any thread starts):
    /// the start and stop hooks then run in that runtime's context.
    pub(crate) fn set_runtime(&self, handle: &scheduler::Handle) {
        let _ = self.inner.runtime.set(WeakHandle::new(handle));
    }

    /// Runs the closure `make` returns on the pool (the handle resolves to
    /// its result), unless the pool has no thread and the OS refuses to
    /// start one: then `make` is not called (whatever it owns stays with
    /// the caller) and the OS error is returned. With a thread alive (busy
    /// ones included) a refused new thread is not an error: the closure
    /// waits for a free one. `make` runs under the pool's lock: it only
    /// builds the closure.
    pub(crate) fn try_spawn_blocking_with<M, F, R>(&self, make: M) -> std::io::Result<JoinHandle<R>>
    where
        M: FnOnce() -> F,
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let inner = &self.inner;
        let new_task = |func: F| {
            let in_flight = JobInFlight::new(inner);
            let func = move || {
                // Counted out once `func` returned (or, unrun, when dropped).
                let _in_flight = in_flight;
                func()
            };
            task::unowned(BlockingTask::new(func), BlockingSchedule, task::Id::next())
        };
        let mut shared = inner.shared.lock().unwrap();
        if shared.shutdown {
            drop(shared);
            let (task, join) = new_task(make());
            task.shutdown();
            return Ok(join);
        }
        let has_thread = if shared.num_idle > 0 {
            shared.num_idle -= 1;
            shared.num_notify += 1;
            inner.condvar.notify_one();
            true
        } else if shared.num_blocking_th < inner.config.max_blocking_threads {
            match self.spawn_thread(&mut shared, None) {
                Ok(()) => true,
                // No thread would ever run it.
                Err(e) if shared.num_blocking_th == 0 => return Err(e),
                // It waits for a thread that frees up.
                Err(_) => false,
            }
        } else {
            false
        };
        let (task, join) = new_task(make());
        shared.queue.push_back(Queued { task, has_thread });
        Ok(join)
    }

    /// Runs runtime work (a worker body, a `block_in_place` handoff) on a
    /// thread of its own, outside the blocking-thread cap, also during
    /// shutdown. The thread exits when `func` returns. Never queued behind
    /// blocking closures, and never occupying a pool thread's place.
    pub(crate) fn spawn_mandatory(&self, func: Mandatory) -> std::io::Result<()> {
        let mut shared = self.inner.shared.lock().unwrap();
        self.spawn_thread(&mut shared, Some(func))
    }

    /// Starts a pool thread (`None`) or a dedicated thread for `mandatory`.
    fn spawn_thread(
        &self,
        shared: &mut Shared,
        mandatory: Option<Mandatory>,
    ) -> std::io::Result<()> {
        let config = &self.inner.config;
        let mut builder = std::thread::Builder::new().name((config.thread_name)());
        if let Some(size) = config.stack_size {
            builder = builder.stack_size(size);
        }
        let inner = self.inner.clone();
        let is_pool_thread = mandatory.is_none();
        // Threads are counted, not joined: `shutdown` waits for the count
        // to reach zero, which each thread signals as its very last step.
        builder.spawn(move || run(inner, mandatory))?;
        shared.num_th += 1;
        if is_pool_thread {
            shared.num_blocking_th += 1;
        }
        Ok(())
    }

    /// Threads alive now.
    pub(crate) fn num_threads(&self) -> usize {
        self.inner.shared.lock().unwrap().num_th
    }

    /// Idle threads now.
    pub(crate) fn num_idle_threads(&self) -> usize {
        self.inner.shared.lock().unwrap().num_idle
    }

    /// `spawn_blocking` closures submitted and not finished yet.
    pub(crate) fn jobs_in_flight(&self) -> usize {
        self.inner.jobs_in_flight.count.load(Acquire)
    }

    /// Wakes `unpark` whenever the last job in flight finishes: a host run
    /// that waits for them (`RunMode::Default`) re-checks whether work is
    /// left. Set once, by a current-thread scheduler.
    pub(crate) fn on_last_job(&self, unpark: Arc<dyn Unpark>) {
        let mut on_zero = self.inner.jobs_in_flight.on_zero.lock().unwrap();
        if on_zero.is_none() {
            *on_zero = Some(unpark);
        }
    }

    /// Closures waiting for a thread.
    pub(crate) fn queue_depth(&self) -> usize {
        self.inner.shared.lock().unwrap().queue.len()
    }
}

/// Counts one `spawn_blocking` closure while it exists.
struct JobInFlight {
    jobs: Arc<JobCount>,
}

/// The number of `spawn_blocking` closures alive, and who to wake when it
/// drops to zero (let go at shutdown: it holds the driver, whose fds must
/// close with the runtime, not with the last pool thread to exit).
#[derive(Default)]
struct JobCount {
    count: AtomicUsize,
    on_zero: Mutex<Option<Arc<dyn Unpark>>>,
}

impl JobInFlight {
    fn new(inner: &Inner) -> JobInFlight {
        inner.jobs_in_flight.count.fetch_add(1, AcqRel);
        JobInFlight {
            jobs: inner.jobs_in_flight.clone(),
        }
    }
}

impl Drop for JobInFlight {
    fn drop(&mut self) {
        if self.jobs.count.fetch_sub(1, AcqRel) == 1 {
            let unpark = self.jobs.on_zero.lock().unwrap().clone();
            if let Some(unpark) = unpark {
                unpark.unpark();
            }
        }
    }
}

/// The body of a thread: runs `mandatory` if given, else serves the queue
/// of blocking closures until idle past the keep-alive, or shutdown.
fn run(inner: Arc<Inner>, mandatory: Option<Mandatory>) {
    let _ = CURRENT_POOL.try_with(|c| c.set(Arc::as_ptr(&inner) as usize));
    if let Some(f) = &inner.config.after_start {
        // A panicking hook must not take the pool's bookkeeping with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            context::with_weak_current(inner.runtime.get(), || f())
        }));
    }
    let counted = mandatory.is_none();
    if let Some(f) = mandatory {
        f();
        exit(&inner, counted);
        return;
    }
    let mut shared = inner.shared.lock().unwrap();
    'main: loop {
        // After a shutdown, only closures that had a thread when they were
        // submitted are left here: they run.
        while let Some(queued) = shared.queue.pop_front() {
            drop(shared);
            queued.task.run();
            shared = inner.shared.lock().unwrap();
        }
        if shared.shutdown {
            break;
        }
        shared.num_idle += 1;
        loop {
            let (guard, res) = inner
                .condvar
                .wait_timeout(shared, inner.config.keep_alive)
                .unwrap();
            shared = guard;
            if shared.num_notify > 0 {
                // Woken for new work (submit already took us off the idle count).
                shared.num_notify -= 1;
                continue 'main;
            }
            if shared.shutdown {
                shared.num_idle -= 1;
                break 'main;
            }
            if res.timed_out() {
                // Idle past the keep-alive: exit, unless work is waiting.
                shared.num_idle -= 1;
                if shared.queue.is_empty() {
                    break 'main;
                }
                continue 'main;
            }
            // Spurious wakeup.
        }
    }
    drop(shared);
    exit(&inner, counted);
}

/// Last steps of a thread: the stop hook, then count it out.
fn exit(inner: &Inner, counted: bool) {
    if let Some(f) = &inner.config.before_stop {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            context::with_weak_current(inner.runtime.get(), || f())
        }));
    }
    let _ = CURRENT_POOL.try_with(|c| c.set(0));
    let mut shared = inner.shared.lock().unwrap();
    shared.num_th -= 1;
    if counted {
        shared.num_blocking_th -= 1;
    }
    if shared.num_th == 0 {
        inner.exited.notify_all();
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}
