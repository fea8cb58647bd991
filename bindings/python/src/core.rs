//! INTERIM, until `rt_core::callback::CallbackRuntime` lands (callback layer
//! stage 4): the few `CallbackRuntime` methods rtpy uses today, over the
//! stage-1 hooks, with the same names and signatures, so that switching is
//! replacing the `Core` alias in `runtime.rs`. The final runtime makes the
//! complete shutdown contract (timers, watches, host runs); this one only
//! shuts the runtime down.

use rt_core::callback::{Error, OnceCallback, ShutdownFlag, TaskHandle};
use rt_core::runtime::{Handle, Runtime, RuntimeFlavor};
use std::sync::Mutex;
use std::time::Duration;

/// The counters of `Runtime.metrics()` (the C API's `rt_metrics` set).
pub(crate) struct MetricsSnapshot {
    pub workers: u64,
    pub tasks_alive: u64,
    pub tasks_spawned: u64,
    pub polls: u64,
    pub steals: u64,
    pub overflows: u64,
    pub remote_schedules: u64,
    pub parks: u64,
    pub blocking_threads: u64,
    pub blocking_idle_threads: u64,
    pub blocking_queue_depth: u64,
    pub timers: u64,
    pub io_registrations: u64,
}

/// A runtime driven through callbacks (interim subset).
pub(crate) struct Core {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
    shutdown: ShutdownFlag,
}

impl Core {
    pub(crate) fn new(runtime: Runtime) -> Core {
        Core {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            shutdown: ShutdownFlag::default(),
        }
    }

    pub(crate) fn handle(&self) -> Result<&Handle, Error> {
        if self.shutdown.is_set() {
            return Err(Error::Shutdown);
        }
        Ok(&self.handle)
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.is_set()
    }

    pub(crate) fn flavor(&self) -> RuntimeFlavor {
        self.handle.runtime_flavor()
    }

    pub(crate) fn metrics(&self) -> MetricsSnapshot {
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

    pub(crate) fn spawn(
        &self,
        cb: impl OnceCallback,
        handle: bool,
    ) -> Result<Option<TaskHandle>, Error> {
        let h = self.handle()?;
        Ok(rt_core::callback::__spawn(
            h,
            self.shutdown.clone(),
            cb,
            handle,
        ))
    }

    pub(crate) fn spawn_blocking(
        &self,
        work: impl FnOnce() + Send + 'static,
        done: impl OnceCallback,
    ) -> Result<TaskHandle, Error> {
        let h = self.handle()?;
        rt_core::callback::__spawn_blocking(h, self.shutdown.clone(), work, done)
    }

    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let runtime = {
            let mut slot = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
            if self.shutdown.is_set() {
                return Err(Error::Shutdown);
            }
            self.shutdown.set();
            slot.take()
        };
        let Some(runtime) = runtime else {
            return Err(Error::Shutdown);
        };
        if rt_core::runtime::is_runtime_thread() {
            return if runtime.shutdown_timeout_completed(Duration::ZERO) {
                Ok(())
            } else {
                Err(Error::TimedOut)
            };
        }
        match timeout {
            None => {
                drop(runtime);
                Ok(())
            }
            Some(t) if runtime.shutdown_timeout_completed(t) => Ok(()),
            Some(_) => Err(Error::TimedOut),
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.shutdown(None);
    }
}
