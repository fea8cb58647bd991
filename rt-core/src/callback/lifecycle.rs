//! The shutdown contract of a [`CallbackRuntime`]: phases, final calls,
//! waits (for the runtime's threads and for host runs on other threads),
//! and what dropping it (the C API's `rt_runtime_free`) waits for.

use super::gate::this_thread;
use super::marks::{is_in_blocking_work, is_in_blocking_work_of, is_in_callback};
use super::{CallbackRuntime, Error, InFlight, TimerCallback, WatchCallback};
use crate::runtime::Runtime;
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

pub(super) struct Life {
    pub(super) runtime: Option<Runtime>,
    pub(super) phase: Phase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Live,
    /// The first shutdown runs, on thread `on`: it makes the final calls.
    /// Later calls wait for it.
    ShuttingDown {
        on: NonZeroUsize,
    },
    /// The first shutdown returned: every final call it owed was made.
    Done,
}

/// A host run under way (see [`CallbackRuntime::host_run`]). `outer` is
/// what `HOSTING` held before it (a run refused inside a callback of
/// another run restores it).
pub(super) struct HostRun<'a> {
    host_runs: &'a std::sync::atomic::AtomicU32,
    outer: usize,
}

thread_local! {
    /// The identity ([`ShutdownFlag::identity`](super::ShutdownFlag::identity))
    /// of the runtime whose host run this thread is in (0: none). A
    /// shutdown waits for the host runs of other threads, not for this
    /// thread's own: that one runs the shutdown's caller.
    static HOSTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Drop for HostRun<'_> {
    fn drop(&mut self) {
        let _ = HOSTING.try_with(|h| h.set(self.outer));
        // The last touch of the runtime by this call: a shutdown waiting
        // for host runs may return, and the runtime be freed, right after.
        self.host_runs.fetch_sub(1, SeqCst);
    }
}

/// Ends the first shutdown, also if it unwinds: later calls never wait for
/// a shutdown that will not finish.
struct EndShutdown<'a, T: TimerCallback, W: WatchCallback>(&'a CallbackRuntime<T, W>);

impl<T: TimerCallback, W: WatchCallback> Drop for EndShutdown<'_, T, W> {
    fn drop(&mut self) {
        let rt = self.0;
        let mut life = rt.lock_life();
        life.phase = Phase::Done;
        rt.shutdown_over.notify_all();
        // The guard drops last: the runtime is not touched after the
        // unlock, so a waiter woken here may free it at once.
    }
}

impl<T: TimerCallback, W: WatchCallback> CallbackRuntime<T, W> {
    fn lock_life(&self) -> MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shuts the runtime down. From this call on no new work is accepted
    /// (calls that would add work return `Shutdown`), and no callback is
    /// called with `Ok` any more (also when this call is made from inside a
    /// callback: its other watches, timers and tasks get only their final
    /// call), except `done(Ok)` of blocking work whose `work` ran. Then:
    ///
    /// 1. Every pending callback (one that is not running now) gets its
    ///    final call before this returns, whatever `timeout`, on the
    ///    calling thread or a runtime thread: armed timers and timer calls
    ///    queued after an expiry (`Cancelled`), fd watches (`Cancelled`,
    ///    events 0), callback tasks not started (`Cancelled`), a binding's
    ///    own tasks (dropped), queued blocking work (`done(Cancelled)`;
    ///    `work` never runs), and blocking work that finished but whose
    ///    `done` had not run yet (`done(Ok)`). [`CompletionQueue`](super::CompletionQueue)
    ///    entries are not the runtime's: they stay queued.
    /// 2. It waits at most `timeout` (`None`: no limit; `Some(ZERO)`: no
    ///    wait) for the callbacks running now to return and the runtime's
    ///    threads to exit; on a current-thread runtime also for host runs
    ///    under way on other threads (they return once the callback they
    ///    run returned).
    ///
    /// Returns:
    /// - `Ok(())`: done. No callback of this runtime runs or will be
    ///   called again.
    /// - `Err(TimedOut)`: callbacks that were running (blocking their
    ///   thread) are still running; only they are outstanding. Each
    ///   finishes on its own thread, then makes there, at once, the one
    ///   final call it may still owe: a repeating timer whose callback
    ///   runs gets its final `Cancelled` call; a watch whose callback runs,
    ///   its final `Cancelled` call; a binding's task inside a poll, its
    ///   drop; blocking work inside `work`, `done(Ok)`.
    /// - `Err(Shutdown)`: an earlier call shut the runtime down. While that
    ///   shutdown is still under way this call waits for it and returns
    ///   once it returned, so its final calls are all made; but only up to
    ///   its own `timeout`: `Err(TimedOut)` if that passes first
    ///   (`Some(ZERO)`: at once), and `Err(WouldDeadlock)` at once when
    ///   called from inside a runtime callback, blocking work or on a
    ///   runtime thread (the first shutdown may be waiting for this very
    ///   thread, or be the caller of this callback).
    ///
    /// The first shutdown may be called from inside a callback (of this
    /// runtime or another). From a thread that runs a runtime's callbacks
    /// (a worker, or a host inside a host run) it makes the final calls of
    /// step 1 but does not wait in step 2: a runtime thread must not block
    /// on a runtime's threads, and its own callback counts as running; so
    /// on a multi-thread runtime the result is then `Err(TimedOut)`, as on
    /// a current-thread runtime with a host run under way on another thread
    /// (the calling thread's own run is not waited for). From this
    /// runtime's blocking work it does not wait for its own pool thread:
    /// that work counts as running (`Err(TimedOut)`; its `done(Ok)` follows
    /// once it returned). A call a runtime thread had already begun making
    /// when the shutdown began counts as running too: after `TimedOut` it
    /// may enter its callback just after the return (but no call begins
    /// later).
    pub fn shutdown(&self, timeout: Option<Duration>) -> Result<(), Error> {
        // `Some(None)`: a limit too far to represent, none.
        let deadline = timeout.map(|t| Instant::now().checked_add(t));
        let mut life = self.lock_life();
        match life.phase {
            Phase::Live => {
                let runtime = life.runtime.take();
                life.phase = Phase::ShuttingDown { on: this_thread() };
                // SeqCst: pairs with `host_run` (either a host run sees
                // the shutdown, or the shutdown sees it and waits for it).
                self.shut_down.set();
                drop(life);
                let _end = EndShutdown(self);
                self.finish_shutdown(runtime, timeout, deadline.flatten())
            }
            Phase::Done => Err(Error::Shutdown),
            Phase::ShuttingDown { on } => {
                if timeout == Some(Duration::ZERO) {
                    return Err(Error::TimedOut);
                }
                // It may be waiting for this thread: our own (re-entered
                // from one of its final calls), a callback's, a worker's,
                // blocking work's.
                if on == this_thread()
                    || is_in_callback()
                    || is_in_blocking_work()
                    || crate::runtime::is_runtime_thread()
                {
                    return Err(Error::WouldDeadlock);
                }
                while life.phase != Phase::Done {
                    life = match deadline {
                        // No limit (or one too far to represent).
                        None | Some(None) => self
                            .shutdown_over
                            .wait(life)
                            .unwrap_or_else(|e| e.into_inner()),
                        Some(Some(d)) => {
                            let now = Instant::now();
                            if now >= d {
                                return Err(Error::TimedOut);
                            }
                            self.shutdown_over
                                .wait_timeout(life, d - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        }
                    };
                }
                Err(Error::Shutdown)
            }
        }
    }

    /// [`shutdown`](Self::shutdown) for a binding whose callbacks call into
    /// its own runtime (an interpreter), those calls counted by `calls`.
    /// The gate of `calls` is closed first: no such call starts after. The
    /// outcome then tells whether one is still under way:
    /// - a runtime shut down before (`Err(Shutdown)`: a first shutdown that
    ///   timed out) is `Ok` once the calls it left running ended, waited
    ///   for if `may_wait` (else `Ok` at once) within what is left of
    ///   `timeout` (one limit for the whole call), and
    ///   `Err(TimedOut)` if one still runs;
    /// - `Err(TimedOut)` is `Ok` if `may_wait` and no call is under way
    ///   (what the layer's limit also covers, threads that only exit, is
    ///   not the binding's concern);
    /// - anything else as [`shutdown`](Self::shutdown).
    ///
    /// `may_wait` is false where the caller must not block on the calls
    /// (inside a callback, blocking work or on a runtime thread).
    pub fn shutdown_with_calls(
        &self,
        calls: &InFlight,
        timeout: Option<Duration>,
        may_wait: bool,
    ) -> Result<(), Error> {
        calls.close();
        let start = Instant::now();
        let outcome = self.shutdown(timeout);
        // One limit for both waits.
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        match outcome {
            Err(Error::Shutdown) if !may_wait || calls.wait_idle(left) => Ok(()),
            Err(Error::Shutdown) => Err(Error::TimedOut),
            Err(Error::TimedOut) if may_wait && calls.is_idle() => Ok(()),
            outcome => outcome,
        }
    }

    /// The first shutdown's work: final calls for everything pending, then
    /// the runtime's own shutdown (waiting up to `timeout` for the
    /// callbacks running).
    fn finish_shutdown(
        &self,
        runtime: Option<Runtime>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        // Timers armed or queued: their final calls now, here. From now on
        // none starts or re-arms (a repeat running now ends with its final
        // call, on its thread).
        self.timers.close();
        let completed = match (runtime, timeout) {
            (None, _) => true,
            // A thread that runs a runtime's callbacks may not wait for a
            // runtime's threads (rt-core panics there, as Tokio does):
            // shut down without waiting (TimedOut if threads are left).
            (Some(runtime), _) if crate::runtime::is_runtime_thread() => {
                runtime.shutdown_timeout_completed(Duration::ZERO)
            }
            // Waits up to the timeout; then every task not running (queued
            // callbacks, fd watches, a binding's tasks, blocking
            // completions) is cancelled here: its final call is made before
            // this returns. Queued blocking work was cancelled first thing.
            (Some(runtime), Some(timeout)) => runtime.shutdown_timeout_completed(timeout),
            (Some(runtime), None) => {
                drop(runtime);
                true
            }
        };
        self.watches.clear();
        // Called from this runtime's blocking work: that work runs (and its
        // `done(Ok)` follows it), so the shutdown is not complete.
        let own_work = is_in_blocking_work_of(self.shut_down.identity());
        // A host thread inside a host run may still be running a callback
        // of a current-thread runtime: wait for it too (it returns once it
        // sees the shutdown).
        let host_done =
            self.wait_for_host_runs(if timeout.is_none() { None } else { deadline }, false);
        if completed && host_done && !own_work {
            Ok(())
        } else {
            Err(Error::TimedOut)
        }
    }

    /// Marks a host run under way until the guard drops. Then checks for
    /// shutdown: `Shutdown` once one started.
    pub(super) fn host_run(&self) -> Result<HostRun<'_>, Error> {
        self.host_runs.fetch_add(1, SeqCst);
        let me = self.shut_down.identity();
        let outer = HOSTING.try_with(|h| h.replace(me)).unwrap_or(0);
        let run = HostRun {
            host_runs: &self.host_runs,
            outer,
        };
        if self.shut_down.is_set_seqcst() {
            return Err(Error::Shutdown);
        }
        Ok(run)
    }

    /// Waits until no host run is under way on another thread, up to
    /// `deadline` (`None`: no limit); false if one still is. The calling
    /// thread's own run (a shutdown from one of its callbacks) is not
    /// waited for. From inside a callback (a runtime thread must not block
    /// on a runtime's threads) it does not wait unless `must_wait` (free:
    /// the runtime's memory must outlive those runs). Polls: a run that
    /// ends must not touch the runtime after its count drops (the runtime
    /// may be freed right after), so it cannot signal.
    fn wait_for_host_runs(&self, deadline: Option<Instant>, must_wait: bool) -> bool {
        let own = u32::from(self.hosted_here());
        let wait = must_wait || !is_in_callback();
        while self.host_runs.load(SeqCst) > own {
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// True while the calling thread is inside a host run of this runtime.
    fn hosted_here(&self) -> bool {
        let me = self.shut_down.identity();
        HOSTING.try_with(|h| h.get() == me).unwrap_or(false)
    }

    /// Prepares the runtime to be freed by a caller that owns it through a
    /// raw pointer (the C API's `rt_runtime_free`): shuts it down without a
    /// time limit (waiting for another thread's shutdown under way), then
    /// waits for host runs on other threads. False when it must not be
    /// freed (leak it instead): another shutdown is under way and this
    /// thread cannot wait for it, or this thread is inside a host run of
    /// this runtime (the caller broke its contract).
    #[doc(hidden)]
    pub fn prepare_free(&self) -> bool {
        if matches!(self.shutdown(None), Err(Error::WouldDeadlock)) || self.hosted_here() {
            return false;
        }
        // After a shutdown that timed out (or made from a runtime thread,
        // which does not wait), a host thread may still be inside a run, in
        // a callback: it returns once that returns. Also from inside another
        // runtime's callback: the memory must outlive it.
        self.wait_for_host_runs(None, true);
        true
    }
}

/// Dropping shuts the runtime down without a time limit (the
/// [`shutdown`](CallbackRuntime::shutdown) contract; a shutdown under way
/// on another thread is waited for) and waits for host runs still under
/// way on other threads (after a shutdown that timed out, the callback
/// they run must return first). Callbacks still running after a timed-out
/// shutdown may outlive it.
impl<T: TimerCallback, W: WatchCallback> Drop for CallbackRuntime<T, W> {
    fn drop(&mut self) {
        // No host run of this thread can be under way (it borrows the
        // runtime), nor a shutdown on another thread.
        let _ = self.shutdown(None);
        self.wait_for_host_runs(None, true);
    }
}
