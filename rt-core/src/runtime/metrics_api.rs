//! `RuntimeMetrics`: read-only counters of a runtime.

use super::Handle;
use std::sync::atomic::Ordering::Relaxed;

/// A view of a runtime's counters. Worker counters are published by the
/// workers at their periodic maintenance and when they park, so they can
/// lag by a few dozen polls.
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    handle: Handle,
}

impl RuntimeMetrics {
    pub(crate) fn new(handle: Handle) -> RuntimeMetrics {
        RuntimeMetrics { handle }
    }

    /// Worker threads (1 for a current-thread runtime: the driving thread).
    pub fn num_workers(&self) -> usize {
        self.handle.inner.worker_metrics().len()
    }

    /// Tasks spawned and not yet completed.
    pub fn num_alive_tasks(&self) -> usize {
        self.handle.inner.num_alive_tasks()
    }

    /// Tasks ever spawned.
    pub fn spawned_tasks_count(&self) -> u64 {
        self.handle.inner.spawned_tasks_count()
    }

    /// Entries in the shared (inject) queue now.
    pub fn global_queue_depth(&self) -> usize {
        self.handle.inner.global_queue_depth()
    }

    /// Tasks scheduled from outside the runtime's threads (through the
    /// shared queue).
    pub fn remote_schedule_count(&self) -> u64 {
        self.handle
            .inner
            .scheduler_metrics()
            .remote_schedules
            .load(Relaxed)
    }

    /// Threads of the blocking pool (multi-thread workers included).
    pub fn num_blocking_threads(&self) -> usize {
        self.handle.inner.blocking_spawner().num_threads()
    }

    /// Idle threads of the blocking pool.
    pub fn num_idle_blocking_threads(&self) -> usize {
        self.handle.inner.blocking_spawner().num_idle_threads()
    }

    /// `spawn_blocking` closures waiting for a thread.
    pub fn blocking_queue_depth(&self) -> usize {
        self.handle.inner.blocking_spawner().queue_depth()
    }

    /// Timers waiting in the wheel (0 without `enable_time`).
    pub fn num_timers(&self) -> usize {
        self.handle
            .inner
            .driver()
            .time
            .as_ref()
            .map_or(0, |t| t.num_timers())
    }

    /// I/O resources registered with the reactor (0 without `enable_io`).
    pub fn num_io_registrations(&self) -> usize {
        self.handle
            .inner
            .driver()
            .io
            .as_ref()
            .map_or(0, |io| io.num_registrations())
    }

    /// Task polls by worker `worker`.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_poll_count(&self, worker: usize) -> u64 {
        self.handle.inner.worker_metrics()[worker]
            .polls
            .load(Relaxed)
    }

    /// Tasks stolen by worker `worker` from others.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_steal_count(&self, worker: usize) -> u64 {
        self.handle.inner.worker_metrics()[worker]
            .steals
            .load(Relaxed)
    }

    /// Times worker `worker`'s local queue overflowed into the shared one.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_overflow_count(&self, worker: usize) -> u64 {
        self.handle.inner.worker_metrics()[worker]
            .overflows
            .load(Relaxed)
    }

    /// Times worker `worker` parked.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_park_count(&self, worker: usize) -> u64 {
        self.handle.inner.worker_metrics()[worker]
            .parks
            .load(Relaxed)
    }

    /// Entries in worker `worker`'s local queue when it last published.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_local_queue_depth(&self, worker: usize) -> usize {
        self.handle.inner.worker_metrics()[worker]
            .local_queue_depth
            .load(Relaxed) as usize
    }
}
