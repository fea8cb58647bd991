//! Counters of an [`EventLoop`](super::EventLoop).

/// A snapshot of an event loop's counters ([`EventLoop::metrics`](super::EventLoop::metrics)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopMetrics {
    /// `run_once` calls that got past the closed check.
    pub iterations: u64,
    /// Handles run (`Runner::run` calls), counted when an iteration's
    /// batch ends (a lone ready handle: when it is taken).
    pub callbacks_run: u64,
    /// Timers handed to the ready queue (cancelled ones not counted).
    pub timers_fired: u64,
    /// Timers stored now.
    pub timers_pending: usize,
    /// Epoll events for reader / writer fds.
    pub io_events: u64,
    /// Fds with a reader now.
    pub readers: usize,
    /// Fds with a writer now.
    pub writers: usize,
    /// Handles in the ready queue now.
    pub ready_len: usize,
    /// Nanoseconds spent in waits that could block.
    pub parked_ns: u64,
    /// `call_soon_threadsafe` calls accepted.
    pub threadsafe_calls: u64,
    /// Times the embedded runtime was run.
    pub runtime_runs: u64,
    /// Tasks the embedded runtime polled.
    pub runtime_tasks_polled: u64,
    /// Embedded runtime: tasks alive now (0 once closed).
    pub runtime_alive_tasks: usize,
    /// Embedded runtime: blocking-pool threads now.
    pub runtime_blocking_threads: usize,
    /// Embedded runtime: idle blocking-pool threads now.
    pub runtime_idle_blocking_threads: usize,
    /// Embedded runtime: blocking jobs queued, not yet started.
    pub runtime_blocking_queue_depth: usize,
}

/// The counters kept under the loop's state lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) iterations: u64,
    pub(crate) callbacks_run: u64,
    pub(crate) timers_fired: u64,
    pub(crate) io_events: u64,
    pub(crate) parked_ns: u64,
    pub(crate) runtime_runs: u64,
    pub(crate) runtime_tasks_polled: u64,
}
