//! Host-driven mode of a current-thread [`CallbackRuntime`]: a host loop
//! (a game frame, a GUI loop) runs the runtime on its own thread
//! ([`run`](CallbackRuntime::run), [`run_budget`](CallbackRuntime::run_budget)),
//! or waits on its backend fd.

use super::lifecycle::HostRun;
use super::marks::{calls_made, is_in_callback};
use super::{CallbackRuntime, Error, TimerCallback, WatchCallback};
use crate::runtime::{Handle, RunMode, RuntimeFlavor};
use std::os::fd::RawFd;
use std::time::Duration;

impl<T: TimerCallback, W: WatchCallback> CallbackRuntime<T, W> {
    /// The handle of a live current-thread runtime, or the error to return.
    fn host_handle(&self) -> Result<&Handle, Error> {
        let handle = self.handle()?;
        if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return Err(Error::InvalidInput);
        }
        Ok(handle)
    }

    /// As `host_handle`, and refuses a call from inside a callback or on a
    /// runtime thread (the run would be re-entrant) with `WouldDeadlock`.
    /// The run is marked under way until the guard drops: a shutdown waits
    /// for it.
    fn run_handle(&self) -> Result<(&Handle, HostRun<'_>), Error> {
        let run = self.host_run()?;
        let handle = self.host_handle()?;
        if crate::runtime::is_runtime_thread() || is_in_callback() {
            return Err(Error::WouldDeadlock);
        }
        Ok((handle, run))
    }

    /// Drives a current-thread runtime on the calling thread, like libuv's
    /// `uv_run`: callbacks, timers and fd callbacks run here, in FIFO order.
    ///
    /// - [`RunMode::Default`]: runs until [`stop`](Self::stop) or until no
    ///   work is left (no live callback task, timer, fd watch, binding task
    ///   or blocking job); blocks while waiting for I/O and timers.
    ///   [`wake`](Self::wake) only makes it re-check whether work is left.
    /// - [`RunMode::Once`]: runs what is ready; if no callback ran, blocks
    ///   until at least one did, or until `wake` / `stop` (then it may
    ///   return 0). It blocks even when no work is left: a cross-thread
    ///   spawn or `wake` ends the wait.
    /// - [`RunMode::NoWait`]: polls I/O and timers without waiting, runs the
    ///   callbacks ready at that point (the ones they schedule run on the
    ///   next call) and returns; never blocks.
    ///
    /// A pending `stop` makes it return 0 at once; every return consumes
    /// pending `stop` and `wake` requests. A shutdown from another thread
    /// makes it return after the callback it runs (the shutdown waits for
    /// that, up to its timeout).
    ///
    /// Returns the number of callbacks it ran (the layer's internal steps,
    /// such as arming a timer, are not counted); `Err(InvalidInput)` on a
    /// multi-thread runtime (its workers run everything);
    /// `Err(WouldDeadlock)` from inside a callback; `Err(Shutdown)`. Call it
    /// from one thread at a time (a concurrent call returns 0).
    pub fn run(&self, mode: RunMode) -> Result<usize, Error> {
        let (handle, _run) = self.run_handle()?;
        let before = calls_made();
        // ONCE waits for a callback: the layer's own steps (arming a timer)
        // are tasks too, and do not count.
        handle.run_until(mode, || calls_made() != before);
        Ok(callbacks_since(before))
    }

    /// Runs ready work of a current-thread runtime on the calling thread for
    /// a host that drives it from its own loop (a game frame): polls I/O
    /// with a zero timeout, expires timers, then runs ready callbacks and
    /// tasks in FIFO order until `budget` has passed or `max_callbacks`
    /// tasks ran (or [`stop`](Self::stop)). Never blocks; what is left runs
    /// on the next call, in the same order. The budget is checked before
    /// each task: a call overruns it by at most one callback. Each callback
    /// is one task; the layer's own steps (arming a timer, re-checking an fd
    /// that stayed ready) are tasks too and count towards `max_callbacks`.
    ///
    /// Returns the number of callbacks it ran; errors as [`run`](Self::run).
    pub fn run_budget(&self, budget: Duration, max_callbacks: usize) -> Result<usize, Error> {
        let (handle, _run) = self.run_handle()?;
        let before = calls_made();
        handle.run_for(budget, max_callbacks);
        Ok(callbacks_since(before))
    }

    /// Makes the running [`run`](Self::run) / [`run_budget`](Self::run_budget)
    /// of a current-thread runtime return after the callback it is running
    /// (or the next call return 0 at once, if none runs now). Repeated stops
    /// before that return count once. `Err(InvalidInput)` on a multi-thread
    /// runtime; `Err(Shutdown)`. Any thread, callbacks included.
    pub fn stop(&self) -> Result<(), Error> {
        self.host_handle()?.stop();
        Ok(())
    }

    /// Wakes the thread that drives a current-thread runtime, like libuv's
    /// `uv_async_send`: a blocking `run(Once)` returns (maybe having run
    /// nothing), and [`backend_fd`](Self::backend_fd) becomes readable. A
    /// running `run(Default)` keeps running. Coalescing: wakes made before
    /// the next run returns count as one.
    ///
    /// `Err(InvalidInput)` on a multi-thread runtime. Works after shutdown
    /// too (there is nothing to wake). Takes no lock and allocates nothing
    /// (one atomic exchange, at most one `write(2)` to an eventfd): a
    /// signal handler may call it.
    pub fn wake(&self) -> Result<(), Error> {
        // No shutdown check: that could take a lock.
        if self.handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return Err(Error::InvalidInput);
        }
        self.handle.wake();
        Ok(())
    }

    /// A file descriptor for a host that waits in its own `poll` / `epoll` /
    /// `select` (like libuv's `uv_backend_fd`): readable when the
    /// current-thread runtime has work (an fd event, a timer due, a callback
    /// spawned from another thread, work left over by
    /// [`run_budget`](Self::run_budget), [`wake`](Self::wake)). Wait for it
    /// with [`backend_timeout`](Self::backend_timeout) as the timeout, then
    /// `run(NoWait)` or `run_budget`. Level-triggered: it stays readable
    /// until such a call ran the work, and a call that left nothing to do
    /// leaves it unreadable (one wake per timer deadline); a stale wake is
    /// possible (the run then returns 0). The runtime owns the fd (do not
    /// read or close it); every call returns the same fd.
    ///
    /// `Err(InvalidInput)` on a multi-thread runtime; `Err(Shutdown)`;
    /// `Err(Os(..))` if the OS refuses the timerfd behind it.
    pub fn backend_fd(&self) -> Result<RawFd, Error> {
        Ok(self.host_handle()?.backend_fd()?)
    }

    /// How long a host may wait on [`backend_fd`](Self::backend_fd) before
    /// it must run the current-thread runtime: zero if callbacks are ready
    /// now, else the time until the earliest timer deadline (deadlines
    /// round up to the runtime's 1 ms tick), `None` if no timer is armed
    /// (only an fd event or another thread can bring work). The backend fd
    /// becomes readable at that deadline, once.
    ///
    /// `Err(InvalidInput)` on a multi-thread runtime; `Err(Shutdown)`.
    pub fn backend_timeout(&self) -> Result<Option<Duration>, Error> {
        Ok(self.host_handle()?.backend_timeout())
    }
}

/// Callbacks this thread made since `before`.
fn callbacks_since(before: u64) -> usize {
    usize::try_from(calls_made().wrapping_sub(before)).unwrap_or(usize::MAX)
}
