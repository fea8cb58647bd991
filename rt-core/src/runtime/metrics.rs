//! Runtime metrics: counters the schedulers publish and
//! [`RuntimeMetrics`] reads.
//!
//! Hot counters are kept in plain fields of the worker's core and published
//! to these atomics at maintenance and park time, so reading them is cheap
//! and slightly behind.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Counters of one worker (the only writer), read from any thread.
#[derive(Debug, Default)]
pub(crate) struct WorkerMetrics {
    pub(crate) polls: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) overflows: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) local_queue_depth: AtomicU64,
}

/// The worker-local, non-atomic side of [`WorkerMetrics`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WorkerStats {
    pub(crate) polls: u64,
    pub(crate) steals: u64,
    pub(crate) overflows: u64,
    pub(crate) parks: u64,
}

impl WorkerStats {
    /// Publishes the counters.
    pub(crate) fn submit(&self, to: &WorkerMetrics, local_queue_depth: usize) {
        to.polls.store(self.polls, Relaxed);
        to.steals.store(self.steals, Relaxed);
        to.overflows.store(self.overflows, Relaxed);
        to.parks.store(self.parks, Relaxed);
        to.local_queue_depth
            .store(local_queue_depth as u64, Relaxed);
    }
}

/// Scheduler-wide counters.
#[derive(Debug, Default)]
pub(crate) struct SchedulerMetrics {
    pub(crate) remote_schedules: AtomicU64,
}

impl SchedulerMetrics {
    pub(crate) fn inc_remote_schedule(&self) {
        self.remote_schedules.fetch_add(1, Relaxed);
    }
}
