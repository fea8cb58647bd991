//! An asyncio-style event loop engine, generic over the handle type: the
//! Rust half of `rtpy.Loop` (issue 12), usable from Rust with closure
//! handles.
//!
//! [`EventLoop<H>`] keeps
//! - a FIFO ready queue of handles (`call_soon`);
//! - timers (`call_at`) on rt's hierarchical wheel with 1 tick = 1 µs,
//!   never handed out before their exact nanosecond deadline
//!   ([`timers`](self) module);
//! - a reader / writer table on a level-triggered epoll of its own
//!   (`add_reader`...), deregistered lazily as libuv does: removing an
//!   fd's last handle makes no syscall, the registration stays ("stale")
//!   until the fd's next event (then `EPOLL_CTL_DEL`) or its next add
//!   (then one `EPOLL_CTL_MOD`);
//! - a cross-thread queue (`call_soon_threadsafe`) whose pushes wake a
//!   blocked wait through an eventfd;
//! - an embedded current-thread rt [`Runtime`](crate::runtime::Runtime),
//!   driven in host mode through its backend fd (for
//!   [`spawn_blocking`](crate::runtime::Handle::spawn_blocking), rt tasks,
//!   timers and sockets).
//!
//! [`EventLoop::run_once`] is one iteration of asyncio's
//! `BaseEventLoop._run_once`; the embedder supplies a [`Runner`] that runs
//! a handle (the Python binding calls the callback there) and wraps the
//! blocking wait (the binding releases the GIL around it).
//!
//! Files: `clock.rs` (the monotonic ns clock), `poller.rs` (epoll, eventfd,
//! precise waits), `timers.rs`, `fds.rs`, `state_lock.rs` (the state's
//! lock), `remote.rs` (the threadsafe queue and wake protocol,
//! loom-modelled), `run.rs` (`run_once`), `stopwatch.rs` (the busy poll's
//! clock), `metrics.rs`.
//!
//! ```
//! use rt_core::event_loop::{EventLoop, Limits, LoopHandle, Runner};
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone)]
//! struct Say(Arc<Mutex<Vec<&'static str>>>, &'static str);
//! impl LoopHandle for Say {
//!     fn is_cancelled(&self) -> bool { false }
//! }
//! struct Run;
//! impl Runner<Say> for Run {
//!     type Error = ();
//!     fn run(&mut self, h: Say) -> Result<(), ()> {
//!         h.0.lock().unwrap().push(h.1);
//!         Ok(())
//!     }
//! }
//!
//! let lp = EventLoop::new().unwrap();
//! let log = Arc::new(Mutex::new(Vec::new()));
//! lp.call_at(EventLoop::<Say>::now_ns(), Say(log.clone(), "timer")).unwrap();
//! lp.call_soon(Say(log.clone(), "soon")).unwrap();
//! while log.lock().unwrap().len() < 2 {
//!     lp.run_once(&mut Run, false, Limits::default()).unwrap();
//! }
//! assert_eq!(*log.lock().unwrap(), ["soon", "timer"]);
//! assert!(lp.close().is_empty());
//! ```

mod clock;
mod fds;
mod metrics;
mod poller;
mod remote;
mod run;
mod state_lock;
mod stopwatch;
mod timers;

pub use clock::MONOTONIC_ZERO_NS;
pub use metrics::LoopMetrics;

use self::fds::{Dir, Fds};
use self::metrics::Counters;
use self::poller::Poller;
use self::remote::{Notify, Remote};
use self::state_lock::{StateGuard, StateLock};
use self::timers::Timers;
use crate::runtime::{Builder, Handle, Runtime};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Mutex;

/// A handle the loop stores and hands back to its [`Runner`]: the binding's
/// `asyncio.Handle`, or a closure in Rust.
///
/// `clone` (a reader or writer made ready by an event) and `is_cancelled`
/// may be called with the loop's lock held: they must not call the loop.
/// A handle is never dropped under the lock, so its destructor may.
pub trait LoopHandle: Clone + Send + 'static {
    /// True once cancelled: the loop drops it instead of running it.
    fn is_cancelled(&self) -> bool;

    /// A hint that the loop runs this handle soon (a few handles from
    /// now): it may start loading its memory into the cache. Handles made
    /// long ago (timers) are cold, and a batch runs them in deadline
    /// order, not in the order they were made. The default does nothing.
    #[inline]
    fn prefetch(&self) {}

    /// As [`prefetch`](Self::prefetch), for what the handle points to; the
    /// loop calls it closer to the run, when the handle itself is likely
    /// in the cache. The default does nothing.
    #[inline]
    fn prefetch_targets(&self) {}
}

/// Runs the handles of [`EventLoop::run_once`].
pub trait Runner<H> {
    /// The error `run` may stop an iteration with.
    type Error;

    /// Runs one ready handle (the binding calls Python here). No lock of the
    /// loop is held: it may call any method of the loop, re-entrantly.
    /// `Err` ends the iteration: the handles not yet run keep their place
    /// at the head of the ready queue.
    fn run(&mut self, h: H) -> Result<(), Self::Error>;

    /// Wraps a wait that may block (the binding releases the GIL around
    /// `wait`). `wait` must be called exactly once. Waits with a zero
    /// timeout go through [`poll`](Self::poll) instead. The default just
    /// calls it.
    fn park(&mut self, wait: &mut dyn FnMut()) {
        wait()
    }

    /// Wraps a wait with a zero timeout (a poll: it never blocks). `poll`
    /// must be called exactly once. The default just calls it; the Python
    /// binding lets other threads take the GIL around it, as asyncio's
    /// loop does around its `select()` in every iteration.
    fn poll(&mut self, poll: &mut dyn FnMut()) {
        poll()
    }
}

/// Names a timer of one loop, for [`EventLoop::cancel_timer`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey(timers::Key);

/// Bounds on one [`EventLoop::run_once`] call.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// A time of the loop's clock ([`EventLoop::now_ns`], not raw
    /// `CLOCK_MONOTONIC`: see [`MONOTONIC_ZERO_NS`]): the wait does
    /// not go past it, and no further handle is started once it has passed
    /// (at least one ready handle runs, as with asyncio's `_run_once`).
    pub deadline: Option<u64>,
    /// Run at most this many handles; the rest keep their place at the head
    /// of the ready queue.
    pub max_callbacks: Option<usize>,
    /// How a busy iteration (handles ready, not stopping) may skip its
    /// poll of epoll; `None`: never, every iteration polls (asyncio's rule).
    pub busy_poll: Option<BusyPoll>,
}

/// When a busy iteration skips its poll ([`Limits::busy_poll`]): for at
/// most `max_skips` iterations in a row after a wait that found no event
/// (`max_skips_after_events` after one that found events), and only within
/// `interval_ns` of that wait.
///
/// A loop kept busy by callbacks alone (a chain of `call_soon`s) then makes
/// one `epoll_wait` every `max_skips + 1` iterations instead of one per
/// iteration (Tokio's scheduler polls its driver every 61 ticks for the
/// same reason). I/O (or the embedded runtime's work) that becomes ready
/// meanwhile is noticed at most `max_skips` iterations and `interval_ns`
/// late (plus the handle running then): the time is read in every
/// skipping iteration, as a handle that runs long may follow short ones (a
/// task's first steps). Once a poll finds events, the loop polls in every
/// iteration again with `max_skips_after_events` 0 (asyncio's rule), so a
/// loop with I/O going on adds no latency to it; with 1, the iteration
/// right after such a poll may skip its own (a request read by one
/// iteration and answered by the task step of the next makes one poll, not
/// two), and I/O is then noticed at most one iteration late. Threadsafe
/// calls and due timers are taken in every iteration either way.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BusyPoll {
    /// Busy iterations in a row that may skip the poll after a wait that
    /// found no event.
    pub max_skips: u32,
    /// The same after a wait that found events (at most `max_skips`).
    pub max_skips_after_events: u32,
    /// No poll is skipped this many ns after the last wait.
    pub interval_ns: u64,
}

/// The loop was closed ([`EventLoop::close`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Event loop is closed")
    }
}

impl std::error::Error for Closed {}

impl From<Closed> for io::Error {
    fn from(c: Closed) -> io::Error {
        io::Error::other(c)
    }
}

/// The state behind the loop's lock (never held while a handle runs, the
/// runtime runs, or the loop waits).
struct State<H> {
    ready: VecDeque<H>,
    /// An empty queue kept for the batch swap of `run_once`.
    spare: VecDeque<H>,
    timers: Timers<H>,
    fds: Fds<H>,
    closed: bool,
    counters: Counters,
}

/// The blocking-pool cap of the embedded runtime: `min(32, cpus + 4)`, as
/// asyncio's default `ThreadPoolExecutor`.
pub fn default_blocking_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

/// An asyncio-style event loop over handles of type `H`; see the
/// [module documentation](self).
///
/// `Send + Sync`: the state sits behind a mutex that is uncontended on the
/// loop's own thread and never held while a handle runs (or behind the
/// embedder's own lock: [`with_outside_lock`](Self::with_outside_lock)).
pub struct EventLoop<H: LoopHandle> {
    state: StateLock<State<H>>,
    remote: Remote<H>,
    poller: Poller,
    /// When the last wait of `run_once` (blocking or a zero-timeout poll)
    /// returned, or 0 if no busy iteration may skip its poll after it
    /// ([`BusyPoll`]).
    last_wait_ns: AtomicU64,
    /// A `stopwatch::Stamp` taken with `last_wait_ns`.
    last_wait_stamp: AtomicU64,
    /// Whether that wait found events.
    last_wait_found: AtomicBool,
    /// Busy iterations that skipped their poll since the last wait.
    busy_skips: AtomicU32,
    /// The embedded runtime; taken (and shut down) by `close`.
    runtime: Mutex<Option<Runtime>>,
    rt_handle: Handle,
}

struct Wake<'a>(&'a Poller);

impl Notify for Wake<'_> {
    fn notify(&self) {
        self.0.notify()
    }
}

impl<H: LoopHandle> EventLoop<H> {
    /// A new loop: an epoll instance, an eventfd, and a current-thread
    /// runtime with I/O and time enabled and a blocking pool of
    /// [`default_blocking_threads`] threads.
    pub fn new() -> io::Result<EventLoop<H>> {
        EventLoop::build(StateLock::new)
    }

    /// As [`new`](Self::new), for an embedder whose every call into the
    /// loop already holds one lock of its own (Python's GIL, for the Python
    /// binding): the loop's state is then guarded by that lock instead of a
    /// mutex, which saves two atomic operations per call and per iteration
    /// (see `state_lock.rs`).
    ///
    /// # Safety
    /// Every call of this loop's methods, from every thread, must be made
    /// while holding one and the same lock of the caller's, whose release
    /// and acquisition synchronise (a mutex's or the GIL's do). Exempt:
    /// [`call_soon_threadsafe`](Self::call_soon_threadsafe),
    /// [`wake`](Self::wake), [`runtime`](Self::runtime) and the drop.
    /// [`run_once`](Self::run_once) may let the lock go only within
    /// [`Runner::park`] and [`Runner::poll`] (the loop then holds nothing).
    /// A method called re-entrantly where the documentation forbids it (from
    /// a handle's `clone` or `is_cancelled`) panics instead of
    /// deadlocking.
    pub unsafe fn with_outside_lock() -> io::Result<EventLoop<H>> {
        // SAFETY: the caller's promise is `StateLock::outside`'s.
        EventLoop::build(|st| unsafe { StateLock::outside(st) })
    }

    fn build(state: impl FnOnce(State<H>) -> StateLock<State<H>>) -> io::Result<EventLoop<H>> {
        let poller = Poller::new()?;
        let runtime = Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(default_blocking_threads())
            .build()?;
        let rt_handle = runtime.handle().clone();
        let registered = rt_handle.backend_fd().and_then(|fd| poller.add_runtime(fd));
        if let Err(e) = registered {
            // Never wait (nor panic, in an async context) in an error path.
            runtime.shutdown_background();
            return Err(e);
        }
        Ok(EventLoop {
            state: state(State {
                ready: VecDeque::new(),
                spare: VecDeque::new(),
                timers: Timers::new(clock::now_ns()),
                fds: Fds::new(),
                closed: false,
                counters: Counters::default(),
            }),
            last_wait_ns: AtomicU64::new(0),
            last_wait_stamp: AtomicU64::new(0),
            last_wait_found: AtomicBool::new(false),
            busy_skips: AtomicU32::new(0),
            remote: Remote::new(),
            poller,
            runtime: Mutex::new(Some(runtime)),
            rt_handle,
        })
    }

    /// `CLOCK_MONOTONIC` in nanoseconds (the clock of Python's
    /// `time.monotonic()`) plus [`MONOTONIC_ZERO_NS`]: the clock of every
    /// deadline of this module.
    pub fn now_ns() -> u64 {
        clock::now_ns()
    }

    #[inline]
    fn lock(&self) -> StateGuard<'_, State<H>> {
        self.state.lock()
    }

    /// The lock, or `Closed` (`h`, if any, is dropped by the caller after
    /// the guard).
    #[inline]
    fn lock_open(&self) -> Result<StateGuard<'_, State<H>>, Closed> {
        let st = self.lock();
        if st.closed {
            Err(Closed)
        } else {
            Ok(st)
        }
    }

    /// Appends `h` to the ready queue (it runs in the next iteration if
    /// added while one runs). Loop thread (or under the caller's own
    /// exclusion); other threads use
    /// [`call_soon_threadsafe`](Self::call_soon_threadsafe).
    pub fn call_soon(&self, h: H) -> Result<(), Closed> {
        let mut st = self.lock_open()?;
        // One FIFO with `call_soon_threadsafe`, as asyncio's single ready
        // queue: threadsafe calls made before this one go ahead of it.
        if self.remote.may_have_pending() {
            self.remote.drain_into(&mut st.ready);
        }
        st.ready.push_back(h);
        Ok(())
    }

    /// `call_soon` from any thread: queues `h` and wakes a waiting loop.
    pub fn call_soon_threadsafe(&self, h: H) -> Result<(), Closed> {
        self.remote.push(h, &Wake(&self.poller)).map_err(|_| Closed)
    }

    /// Schedules `h` to be made ready once [`now_ns`](Self::now_ns) `>=
    /// when_ns` (never before; a past `when_ns` is due in the next
    /// iteration). Timers due together become ready by deadline, ties in
    /// call order (to the µs; within one µs, in call order).
    pub fn call_at(&self, when_ns: u64, h: H) -> Result<TimerKey, Closed> {
        let mut st = self.lock_open()?;
        Ok(TimerKey(st.timers.insert_at(clock::now_ns, when_ns, h)))
    }

    /// Removes a timer that has not fired, in O(1) (O(log n) for timers
    /// more than ~19 hours away), and returns its handle for the caller to
    /// drop; `None` if it fired, was cancelled, or the loop closed.
    pub fn cancel_timer(&self, key: TimerKey) -> Option<H> {
        self.lock().timers.remove(key.0)
    }

    fn add(&self, fd: RawFd, dir: Dir, h: H) -> io::Result<Option<H>> {
        let res = {
            let mut st = self.lock_open()?;
            let st = &mut *st;
            st.fds.add(&self.poller, fd, dir, h)
        };
        // On error `h` is dropped here, with no lock held (a handle's
        // destructor may call back into the loop).
        res.map_err(|(e, _h)| e)
    }

    fn remove(&self, fd: RawFd, dir: Dir) -> Option<H> {
        let mut st = self.lock();
        let st = &mut *st;
        st.fds.remove(&self.poller, fd, dir)
    }

    /// Makes `h` ready whenever `fd` is readable (level-triggered: again
    /// each iteration while it stays readable). Returns the reader it
    /// replaces. Always one `epoll_ctl` (two when the fd number was closed
    /// and reused since it was registered), even for an fd still armed from
    /// an earlier handle. An `epoll_ctl` error (`EPERM` for a regular file,
    /// `EBADF`) comes back and leaves the table unchanged; a closed loop
    /// gives an error displaying "Event loop is closed".
    pub fn add_reader(&self, fd: RawFd, h: H) -> io::Result<Option<H>> {
        self.add(fd, Dir::Read, h)
    }

    /// Removes the reader of `fd`; `None` if it had none. Removing an fd's
    /// last handle makes no syscall: its epoll registration stays armed
    /// ("stale") until its next event disarms it or an add re-arms it, so
    /// closing the fd right after is fine (a registration a `dup` keeps
    /// alive is dropped when it fires).
    pub fn remove_reader(&self, fd: RawFd) -> Option<H> {
        self.remove(fd, Dir::Read)
    }

    /// Makes `h` ready whenever `fd` is writable; as
    /// [`add_reader`](Self::add_reader).
    pub fn add_writer(&self, fd: RawFd, h: H) -> io::Result<Option<H>> {
        self.add(fd, Dir::Write, h)
    }

    /// Removes the writer of `fd`; `None` if it had none (lazily, as
    /// [`remove_reader`](Self::remove_reader)).
    pub fn remove_writer(&self, fd: RawFd) -> Option<H> {
        self.remove(fd, Dir::Write)
    }

    /// Whether `fd` has a reader.
    pub fn has_reader(&self, fd: RawFd) -> bool {
        self.lock().fds.has(fd, Dir::Read)
    }

    /// Whether `fd` has a writer.
    pub fn has_writer(&self, fd: RawFd) -> bool {
        self.lock().fds.has(fd, Dir::Write)
    }

    /// Makes a waiting [`run_once`](Self::run_once) return, or the next one
    /// not block. Any thread.
    pub fn wake(&self) {
        self.remote.wake(&Wake(&self.poller));
    }

    /// Handles in the ready queue (not counting threadsafe calls not yet
    /// drained).
    pub fn ready_len(&self) -> usize {
        self.lock().ready.len()
    }

    /// Timers stored.
    pub fn timers_len(&self) -> usize {
        self.lock().timers.len()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the loop and returns every handle it still holds (ready,
    /// timers, threadsafe queue, readers, writers) for the caller to drop.
    /// Further calls fail with [`Closed`]; a second `close` returns nothing.
    /// (Called from a handle that [`run_once`](Self::run_once) runs, the
    /// handles of that batch not run yet are dropped by `run_once`.)
    /// The runtime is shut down in the background: its tasks are cancelled,
    /// running blocking jobs finish on their own.
    pub fn close(&self) -> Vec<H> {
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            if st.closed {
                return out;
            }
            st.closed = true;
            let st = &mut *st;
            out.extend(st.ready.drain(..));
            out.extend(st.spare.drain(..));
            st.timers.drain_all(&mut out);
            st.fds.drain_all(&self.poller, &mut out);
        }
        out.extend(self.remote.close());
        let rt = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rt) = rt {
            rt.shutdown_background();
        }
        out
    }

    /// The embedded runtime's handle (for `spawn_blocking`, rt tasks...);
    /// `Err(Closed)` once closed.
    pub fn runtime(&self) -> Result<Handle, Closed> {
        match &*self.runtime.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(_) => Ok(self.rt_handle.clone()),
            None => Err(Closed),
        }
    }

    /// Calls `f` with every handle the loop holds right now (ready,
    /// timers, readers, writers, threadsafe queue), for a garbage
    /// collector's traversal (the Python binding's `__traverse__`: an
    /// unclosed loop whose handles refer back to it is collected as
    /// asyncio's is). Never blocks: a part whose lock is held elsewhere is
    /// skipped, and so are the handles of a batch [`run_once`](Self::run_once)
    /// is running; a partial visit only makes handles look referenced from
    /// outside. `f` must not call the loop.
    ///
    /// A garbage collector traverses an object more than once per
    /// collection, and a binding that visits what handles refer to (rather
    /// than the handles) needs each pass to see the same parts. That holds
    /// when every taker of the loop's locks holds the collector's own lock
    /// too (Python's GIL, in rtpy): during a collection the locks are then
    /// free, or held throughout by the collecting thread itself.
    pub fn visit_handles(&self, f: &mut dyn FnMut(&H)) {
        if let Some(st) = self.state.try_lock() {
            st.ready.iter().chain(st.spare.iter()).for_each(&mut *f);
            st.timers.for_each(f);
            st.fds.for_each(f);
        }
        self.remote.try_for_each(f);
    }

    /// A snapshot of the loop's counters.
    pub fn metrics(&self) -> LoopMetrics {
        let mut m = {
            let st = self.lock();
            let c = &st.counters;
            LoopMetrics {
                iterations: c.iterations,
                callbacks_run: c.callbacks_run,
                timers_fired: c.timers_fired,
                timers_pending: st.timers.len(),
                io_events: c.io_events,
                readers: st.fds.readers(),
                writers: st.fds.writers(),
                ready_len: st.ready.len(),
                parked_ns: c.parked_ns,
                runtime_runs: c.runtime_runs,
                runtime_tasks_polled: c.runtime_tasks_polled,
                ..LoopMetrics::default()
            }
        };
        m.threadsafe_calls = self.remote.calls();
        if let Ok(h) = self.runtime() {
            let rm = h.metrics();
            m.runtime_alive_tasks = rm.num_alive_tasks();
            m.runtime_blocking_threads = rm.num_blocking_threads();
            m.runtime_idle_blocking_threads = rm.num_idle_blocking_threads();
            m.runtime_blocking_queue_depth = rm.blocking_queue_depth();
        }
        m
    }
}

impl<H: LoopHandle> Drop for EventLoop<H> {
    fn drop(&mut self) {
        // Never wait for blocking jobs in a destructor.
        let rt = self
            .runtime
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rt) = rt {
            rt.shutdown_background();
        }
    }
}

impl<H: LoopHandle> fmt::Debug for EventLoop<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("EventLoop")
            .field("ready", &st.ready.len())
            .field("timers", &st.timers)
            .field("fds", &st.fds)
            .field("closed", &st.closed)
            .field("remote", &self.remote)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct H;
    impl LoopHandle for H {
        fn is_cancelled(&self) -> bool {
            false
        }
    }

    #[test]
    fn event_loop_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<EventLoop<H>>();
        check::<TimerKey>();
    }

    #[test]
    fn closed_displays_like_asyncio() {
        assert_eq!(Closed.to_string(), "Event loop is closed");
        let e: io::Error = Closed.into();
        assert_eq!(e.to_string(), "Event loop is closed");
    }

    #[test]
    fn blocking_cap() {
        let n = default_blocking_threads();
        assert!((5..=32).contains(&n));
    }
}
