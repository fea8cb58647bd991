//! `Builder`: configure and create a runtime.

use super::config::{Callback, Config};
use super::driver::{self, DriverConfig};
use super::{Handle, Runtime};
use crate::blocking::pool::{BlockingPool, PoolConfig};
use crate::scheduler::{self, current_thread, multi_thread};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`Runtime`] with custom settings.
///
/// Setters only record values; [`Builder::build`] checks them and returns
/// an [`io::Error`] of kind [`io::ErrorKind::InvalidInput`] for one out of
/// range (where Tokio's setters panic), so a bad setting from a C caller
/// or a config file never takes the process down. The limits:
///
/// | setting | accepted |
/// |---|---|
/// | `worker_threads` | 1 ..= [`MAX_WORKER_THREADS`] (checked for both flavors) |
/// | `max_blocking_threads` | >= 1 (threads start on demand: a large cap costs nothing) |
/// | `global_queue_interval` | >= 1 |
/// | `event_interval` | >= 1 |
/// | `thread_stack_size` | <= [`MAX_THREAD_STACK_SIZE`] (below the OS minimum: raised to it) |
/// | `thread_keep_alive` | any (`Duration::MAX`: idle threads never exit) |
///
/// A thread the OS refuses to start (too many threads, no memory for its
/// stack) makes `build` return that OS error; what did start is shut
/// down first.
///
/// ```
/// let rt = rt_core::runtime::Builder::new_multi_thread()
///     .worker_threads(4)
///     .thread_name("my-worker")
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
pub struct Builder {
    kind: Kind,
    worker_threads: Option<usize>,
    global_queue_interval: Option<u32>,
    event_interval: u32,
    thread_name: Arc<dyn Fn() -> String + Send + Sync>,
    thread_stack_size: Option<usize>,
    on_thread_start: Option<Callback>,
    on_thread_stop: Option<Callback>,
    disable_lifo_slot: bool,
    enable_io: bool,
    enable_time: bool,
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    CurrentThread,
    MultiThread,
}

/// Default ticks between shared-queue checks, current-thread flavor.
const CURRENT_THREAD_GLOBAL_QUEUE_INTERVAL: u32 = 31;
/// Default ticks between shared-queue checks, multi-thread flavor.
const MULTI_THREAD_GLOBAL_QUEUE_INTERVAL: u32 = 61;
/// Default ticks between driver turns.
const EVENT_INTERVAL: u32 = 61;

/// Most worker threads a multi-thread runtime may have (the idle
/// accounting packs worker counts in 16 bits; far more than any machine
/// has CPUs). The default, one per CPU, is capped to it.
pub const MAX_WORKER_THREADS: usize = 4096;

/// Largest stack size the runtime's threads may ask for (1 GiB): beyond
/// it, [`Builder::build`] refuses the setting instead of asking the OS
/// for an address range it cannot map.
pub const MAX_THREAD_STACK_SIZE: usize = 1 << 30;

impl Builder {
    /// A builder for a current-thread runtime: tasks run on the thread that
    /// calls `block_on` (or `run_for`).
    pub fn new_current_thread() -> Builder {
        Builder::new(Kind::CurrentThread)
    }

    /// A builder for a multi-thread, work-stealing runtime.
    pub fn new_multi_thread() -> Builder {
        Builder::new(Kind::MultiThread)
    }

    fn new(kind: Kind) -> Builder {
        Builder {
            kind,
            worker_threads: None,
            global_queue_interval: None,
            event_interval: EVENT_INTERVAL,
            thread_name: Arc::new(|| "rt-runtime-worker".to_string()),
            thread_stack_size: None,
            on_thread_start: None,
            on_thread_stop: None,
            disable_lifo_slot: false,
            enable_io: false,
            enable_time: false,
            max_blocking_threads: 512,
            thread_keep_alive: Duration::from_secs(10),
        }
    }

    /// Worker threads of a multi-thread runtime (default: the number of
    /// CPUs, at most [`MAX_WORKER_THREADS`]). The current-thread flavor
    /// starts none, but `build` checks the value all the same.
    ///
    /// `build` returns `InvalidInput` unless `1 <= n <= MAX_WORKER_THREADS`.
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        self.worker_threads = Some(n);
        self
    }

    /// Ticks between checks of the shared queue before the local one
    /// (default 31 for current-thread, 61 for multi-thread).
    ///
    /// `build` returns `InvalidInput` for 0.
    pub fn global_queue_interval(&mut self, n: u32) -> &mut Self {
        self.global_queue_interval = Some(n);
        self
    }

    /// Ticks between driver turns (I/O and timers) of a busy scheduler
    /// (default 61).
    ///
    /// `build` returns `InvalidInput` for 0.
    pub fn event_interval(&mut self, n: u32) -> &mut Self {
        self.event_interval = n;
        self
    }

    /// Name of the runtime's threads.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.thread_name = Arc::new(move || name.clone());
        self
    }

    /// A function naming each new runtime thread.
    pub fn thread_name_fn<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.thread_name = Arc::new(f);
        self
    }

    /// Stack size of the runtime's threads (default: the standard
    /// library's, 2 MiB). A size below the OS minimum is raised to it; the
    /// stack must hold the deepest poll of the tasks (and blocking
    /// closures): an overflow aborts the process, as on any thread.
    ///
    /// `build` returns `InvalidInput` above [`MAX_THREAD_STACK_SIZE`].
    pub fn thread_stack_size(&mut self, size: usize) -> &mut Self {
        self.thread_stack_size = Some(size);
        self
    }

    /// Runs on each runtime thread after it starts.
    pub fn on_thread_start<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Runs on each runtime thread before it exits.
    pub fn on_thread_stop<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// Turns off the LIFO slot of the multi-thread scheduler (every task
    /// goes through the FIFO queues).
    pub fn disable_lifo_slot(&mut self) -> &mut Self {
        self.disable_lifo_slot = true;
        self
    }

    /// Enables the I/O driver (mio reactor): needed by `net` and `io`.
    pub fn enable_io(&mut self) -> &mut Self {
        self.enable_io = true;
        self
    }

    /// Enables the time driver (timer wheel): needed by `time`.
    pub fn enable_time(&mut self) -> &mut Self {
        self.enable_time = true;
        self
    }

    /// Enables every driver (I/O and time).
    pub fn enable_all(&mut self) -> &mut Self {
        self.enable_io().enable_time()
    }

    /// Cap on the blocking pool's threads for `spawn_blocking` (default
    /// 512); further calls queue. The multi-thread workers do not count.
    /// Threads start on demand, so a large cap costs nothing until used.
    ///
    /// `build` returns `InvalidInput` for 0.
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Self {
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits
    /// (default 10 s). Any value: zero lets a thread exit as soon as the
    /// queue is empty, `Duration::MAX` keeps idle threads until shutdown.
    pub fn thread_keep_alive(&mut self, duration: Duration) -> &mut Self {
        self.thread_keep_alive = duration;
        self
    }

    /// Creates the runtime.
    ///
    /// # Errors
    /// `InvalidInput` for a setting out of range (see the table on
    /// [`Builder`]); the OS error if the reactor or a worker thread cannot
    /// be created.
    pub fn build(&mut self) -> io::Result<Runtime> {
        self.check()?;
        let (park, driver_handle) = driver::create(DriverConfig {
            enable_io: self.enable_io,
            enable_time: self.enable_time,
        })?;
        let pool = BlockingPool::new(PoolConfig {
            thread_name: self.thread_name.clone(),
            stack_size: self.thread_stack_size,
            after_start: self.on_thread_start.clone(),
            before_stop: self.on_thread_stop.clone(),
            max_blocking_threads: self.max_blocking_threads,
            keep_alive: self.thread_keep_alive,
        });
        match self.kind {
            Kind::CurrentThread => {
                let config = self.config(CURRENT_THREAD_GLOBAL_QUEUE_INTERVAL);
                let handle = current_thread::Handle::new(
                    park,
                    driver_handle,
                    pool.spawner().clone(),
                    config,
                );
                let handle = Handle {
                    inner: scheduler::Handle::CurrentThread(handle),
                };
                Ok(Runtime::new(handle, pool))
            }
            Kind::MultiThread => {
                let size = self.worker_threads.unwrap_or_else(default_worker_threads);
                let config = self.config(MULTI_THREAD_GLOBAL_QUEUE_INTERVAL);
                let (handle, bodies) =
                    multi_thread::create(size, park, driver_handle, pool.spawner().clone(), config);
                let handle = Handle {
                    inner: scheduler::Handle::MultiThread(handle),
                };
                let spawner = pool.spawner().clone();
                // If a thread cannot be created, dropping the runtime shuts
                // down what did start.
                let runtime = Runtime::new(handle, pool);
                for body in bodies {
                    spawner.spawn_mandatory(body)?;
                }
                Ok(runtime)
            }
        }
    }

    /// Checks every setting against its documented range.
    fn check(&self) -> io::Result<()> {
        fn invalid(what: &str) -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::InvalidInput, what))
        }
        if let Some(n) = self.worker_threads {
            if n == 0 || n > MAX_WORKER_THREADS {
                return invalid("worker_threads must be between 1 and MAX_WORKER_THREADS (4096)");
            }
        }
        if self.max_blocking_threads == 0 {
            return invalid("max_blocking_threads must be at least 1");
        }
        if self.global_queue_interval == Some(0) {
            return invalid("global_queue_interval must be at least 1");
        }
        if self.event_interval == 0 {
            return invalid("event_interval must be at least 1");
        }
        if self
            .thread_stack_size
            .is_some_and(|s| s > MAX_THREAD_STACK_SIZE)
        {
            return invalid("thread_stack_size must be at most MAX_THREAD_STACK_SIZE (1 GiB)");
        }
        Ok(())
    }

    fn config(&self, default_global_queue_interval: u32) -> Config {
        Config {
            global_queue_interval: self
                .global_queue_interval
                .unwrap_or(default_global_queue_interval),
            event_interval: self.event_interval,
            disable_lifo_slot: self.disable_lifo_slot,
        }
    }
}

fn default_worker_threads() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_WORKER_THREADS);
            CACHED.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("kind", &self.kind)
            .field("worker_threads", &self.worker_threads)
            .field("global_queue_interval", &self.global_queue_interval)
            .field("event_interval", &self.event_interval)
            .field("thread_stack_size", &self.thread_stack_size)
            .field("disable_lifo_slot", &self.disable_lifo_slot)
            .field("enable_io", &self.enable_io)
            .field("enable_time", &self.enable_time)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("thread_keep_alive", &self.thread_keep_alive)
            .finish_non_exhaustive()
    }
}
