//! `Builder`: configure and create a runtime.

use super::config::{Callback, Config};
use super::driver::{self, DriverConfig};
use super::threads::ThreadGroup;
use super::{Handle, Runtime};
use crate::scheduler::{self, current_thread, multi_thread};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Builds a [`Runtime`] with custom settings.
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
        }
    }

    /// Worker threads of a multi-thread runtime (default: the number of
    /// CPUs). Ignored by the current-thread flavor.
    ///
    /// # Panics
    /// If `n` is zero.
    #[track_caller]
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        assert!(n > 0, "worker threads cannot be set to 0");
        self.worker_threads = Some(n);
        self
    }

    /// Ticks between checks of the shared queue before the local one
    /// (default 31 for current-thread, 61 for multi-thread).
    ///
    /// # Panics
    /// If `n` is zero.
    #[track_caller]
    pub fn global_queue_interval(&mut self, n: u32) -> &mut Self {
        assert!(n > 0, "global_queue_interval must be greater than 0");
        self.global_queue_interval = Some(n);
        self
    }

    /// Ticks between driver turns (I/O and timers) of a busy scheduler
    /// (default 61).
    ///
    /// # Panics
    /// If `n` is zero.
    #[track_caller]
    pub fn event_interval(&mut self, n: u32) -> &mut Self {
        assert!(n > 0, "event_interval must be greater than 0");
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

    /// Stack size of the runtime's threads.
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

    /// Creates the runtime.
    pub fn build(&mut self) -> io::Result<Runtime> {
        let driver = driver::create(&DriverConfig::default())?;
        match self.kind {
            Kind::CurrentThread => {
                let config = self.config(CURRENT_THREAD_GLOBAL_QUEUE_INTERVAL);
                let handle = current_thread::Handle::new(driver, config);
                Ok(Runtime::new(
                    Handle {
                        inner: scheduler::Handle::CurrentThread(handle),
                    },
                    None,
                ))
            }
            Kind::MultiThread => self.build_multi_thread(driver),
        }
    }

    fn build_multi_thread(&mut self, driver: Box<dyn super::park::Park>) -> io::Result<Runtime> {
        let size = self.worker_threads.unwrap_or_else(default_worker_threads);
        let config = self.config(MULTI_THREAD_GLOBAL_QUEUE_INTERVAL);
        let (handle, bodies) = multi_thread::create(size, driver, config.clone());
        let rt_handle = Handle {
            inner: scheduler::Handle::MultiThread(handle.clone()),
        };
        let mut threads = ThreadGroup::new();
        for body in bodies {
            let mut builder = std::thread::Builder::new().name((self.thread_name)());
            if let Some(size) = self.thread_stack_size {
                builder = builder.stack_size(size);
            }
            let (start, stop) = (
                config.on_thread_start.clone(),
                config.on_thread_stop.clone(),
            );
            let spawned = threads.spawn(builder, move || {
                if let Some(f) = &start {
                    f();
                }
                body();
                if let Some(f) = &stop {
                    f();
                }
            });
            if let Err(e) = spawned {
                // Workers that did start must not wait forever for the
                // missing ones: shut down, and let them stop.
                handle.shutdown();
                return Err(e);
            }
        }
        Ok(Runtime::new(rt_handle, Some(threads)))
    }

    fn config(&self, default_global_queue_interval: u32) -> Config {
        Config {
            global_queue_interval: self
                .global_queue_interval
                .unwrap_or(default_global_queue_interval),
            event_interval: self.event_interval,
            disable_lifo_slot: self.disable_lifo_slot,
            on_thread_start: self.on_thread_start.clone(),
            on_thread_stop: self.on_thread_stop.clone(),
        }
    }
}

fn default_worker_threads() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
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
            .finish_non_exhaustive()
    }
}
