//! `rt_runtime`: create, configure, shut down and inspect a runtime.

use crate::error::*;
use crate::guard::ffi_guard;
use crate::io::CWatch;
use crate::timer::CTimer;
use rt_core::callback::this_thread;
use rt_core::callback::ShutdownFlag;
use rt_core::callback::{Timers, Watches};
use rt_core::runtime::{Builder, Handle, Runtime};
use std::ffi::c_int;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most worker threads `rt_config.worker_threads` may ask for.
pub const RT_MAX_WORKER_THREADS: u32 = 4096;
// The builder's limit, spelled out above for cbindgen.
const _: () = assert!(RT_MAX_WORKER_THREADS as usize == rt_core::runtime::MAX_WORKER_THREADS);

/// Runtime flavor.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rt_flavor {
    /// Work-stealing worker threads run the tasks.
    RT_FLAVOR_MULTI_THREAD = 0,
    /// No worker thread: the host drives the runtime from its own thread.
    RT_FLAVOR_CURRENT_THREAD = 1,
}

/// Settings for `rt_runtime_new`. Always fill it with `rt_config_init`
/// first, then change what you need: `rt_config_init` sets `struct_size`,
/// which lets newer libraries accept configs from older headers (fields
/// are only ever added at the end, before `reserved`).
///
/// Every field has a documented range; `rt_runtime_new` returns
/// `RT_EINVAL` for a value outside it (never a crash, whatever the value).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rt_config {
    /// `sizeof(rt_config)` as the caller's header knows it (set by `rt_config_init`).
    pub struct_size: u32,
    /// Multi-thread (default) or current-thread.
    pub flavor: rt_flavor,
    /// Worker threads of a multi-thread runtime: 0 means one per CPU
    /// (default; at most `RT_MAX_WORKER_THREADS`), else 1 to
    /// `RT_MAX_WORKER_THREADS` (4096), for both flavors (a current-thread
    /// runtime starts none). If the OS refuses one of the threads,
    /// `rt_runtime_new` fails with its error (`-EAGAIN`, `-ENOMEM`).
    pub worker_threads: u32,
    /// Cap on blocking-pool threads (default 512): at least 1, any value up
    /// to `UINT32_MAX` (threads start on demand, so a large cap costs
    /// nothing until used).
    pub max_blocking_threads: u32,
    /// Idle blocking-pool threads exit after this many ms (default 10000).
    /// Any value: 0 lets a thread exit as soon as no work is queued,
    /// `UINT64_MAX` keeps idle threads until shutdown.
    pub thread_keep_alive_ms: u64,
    /// Ticks between checks of the shared queue; 0 means the flavor's
    /// default (61 multi-thread, 31 current-thread). Any value.
    pub global_queue_interval: u32,
    /// Ticks between I/O and timer polls of a busy scheduler (default 61):
    /// at least 1, any value up to `UINT32_MAX` (an idle scheduler polls
    /// whenever it waits, whatever this is).
    pub event_interval: u32,
    /// Room for future fields; set to zero by `rt_config_init`.
    pub reserved: [u64; 8],
}

/// Counters of a runtime, filled by `rt_runtime_metrics`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct rt_metrics {
    /// Worker threads (1 for a current-thread runtime).
    pub workers: u64,
    /// Tasks alive (spawned, not yet finished).
    pub tasks_alive: u64,
    /// Tasks ever spawned.
    pub tasks_spawned: u64,
    /// Task polls, all workers.
    pub polls: u64,
    /// Tasks stolen between workers.
    pub steals: u64,
    /// Local queue overflows into the shared queue.
    pub overflows: u64,
    /// Tasks scheduled from outside the runtime's threads.
    pub remote_schedules: u64,
    /// Times workers parked.
    pub parks: u64,
    /// Threads of the blocking pool, the worker threads of a multi-thread
    /// runtime included (they run on it).
    pub blocking_threads: u64,
    /// Idle threads of the blocking pool.
    pub blocking_idle_threads: u64,
    /// Blocking jobs waiting for a thread.
    pub blocking_queue_depth: u64,
    /// Timers armed in the wheel.
    pub timers: u64,
    /// File descriptors registered with the reactor.
    pub io_registrations: u64,
    /// Room for future counters.
    pub reserved: [u64; 8],
}

/// An opaque runtime.
pub struct rt_runtime {
    /// The runtime (`None` once a shutdown took it) and where its shutdown
    /// stands.
    life: Mutex<Life>,
    /// Signalled when a shutdown is over (`Phase::Done`).
    shutdown_over: Condvar,
    /// Set when a shutdown starts: lets every call check for shutdown
    /// without the lock. Shared with the tasks that make C calls: none is
    /// made with status 0 once it is set.
    shut_down: ShutdownFlag,
    /// `rt_run` / `rt_run_budget` calls under way: the host thread of a
    /// current-thread runtime runs its callbacks inside them, so a
    /// shutdown waits for them like for the runtime's threads.
    host_runs: AtomicU32,
    handle: Handle,
    timers: Arc<Timers<CTimer>>,
    io: Watches<CWatch>,
}

struct Life {
    runtime: Option<Runtime>,
    phase: Phase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Live,
    /// The first `rt_runtime_shutdown` runs, on thread `on`: it makes the
    /// final calls. Later calls wait for it.
    ShuttingDown {
        on: NonZeroUsize,
    },
    /// The first shutdown returned: every final call it owed was made.
    Done,
}

/// An `rt_run*` call under way (see `rt_runtime::host_run`). `outer` is
/// what `HOSTING` held before it (a call refused inside a callback of
/// another run restores it).
pub(crate) struct HostRun<'a> {
    rt: &'a rt_runtime,
    outer: usize,
}

thread_local! {
    /// The address of the runtime whose `rt_run*` call this thread is in
    /// (0: none). A shutdown waits for the host runs of other threads, not
    /// for this thread's own: that one runs the shutdown's caller.
    static HOSTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Drop for HostRun<'_> {
    fn drop(&mut self) {
        let _ = HOSTING.try_with(|h| h.set(self.outer));
        // The last touch of the runtime by this call: a shutdown waiting
        // for host runs may return, and the runtime be freed, right after.
        self.rt.host_runs.fetch_sub(1, SeqCst);
    }
}

/// Ends the first shutdown, also if it unwinds: later calls never wait for
/// a shutdown that will not finish.
struct EndShutdown<'a>(&'a rt_runtime);

impl Drop for EndShutdown<'_> {
    fn drop(&mut self) {
        let rt = self.0;
        let mut life = rt.lock_life();
        life.phase = Phase::Done;
        rt.shutdown_over.notify_all();
        // The guard drops last: the runtime is not touched after the
        // unlock, so a waiter woken here may free it at once.
    }
}

impl rt_runtime {
    fn lock_life(&self) -> MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `rt_runtime_shutdown`: the first call shuts down; a call during it
    /// waits for it (up to `timeout_ms`); a call after it `RT_ESHUTDOWN`.
    fn shutdown(&self, timeout_ms: i64) -> c_int {
        let deadline = u64::try_from(timeout_ms)
            .ok()
            .map(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
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
                self.finish_shutdown(runtime, timeout_ms, deadline.flatten())
            }
            Phase::Done => RT_ESHUTDOWN,
            Phase::ShuttingDown { on } => {
                if timeout_ms == 0 {
                    return RT_ETIMEDOUT;
                }
                // It may be waiting for this thread: our own (re-entered
                // from one of its final calls), a callback's, a worker's,
                // blocking work's.
                if on == this_thread()
                    || crate::callback::is_in_callback()
                    || crate::callback::is_in_blocking_work()
                    || rt_core::runtime::is_runtime_thread()
                {
                    return RT_EDEADLK;
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
                                return RT_ETIMEDOUT;
                            }
                            self.shutdown_over
                                .wait_timeout(life, d - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        }
                    };
                }
                RT_ESHUTDOWN
            }
        }
    }

    /// The first shutdown's work: final calls for everything pending, then
    /// the runtime's own shutdown (waiting up to `timeout_ms` for the
    /// callbacks running).
    fn finish_shutdown(
        &self,
        runtime: Option<Runtime>,
        timeout_ms: i64,
        deadline: Option<Instant>,
    ) -> c_int {
        // Timers armed or queued: their final calls now, here. From now on
        // none starts or re-arms (a repeat running now ends with its final
        // call, on its thread).
        self.timers.close();
        let completed = match (runtime, u64::try_from(timeout_ms)) {
            (None, _) => true,
            // A thread that runs a runtime's callbacks may not wait for a
            // runtime's threads (rt-core panics there, as Tokio does):
            // shut down without waiting (RT_ETIMEDOUT if threads are left).
            (Some(runtime), _) if rt_core::runtime::is_runtime_thread() => {
                runtime.shutdown_timeout_completed(Duration::ZERO)
            }
            // Waits up to the timeout; then every task not running (queued
            // callbacks, fd registrations, poll tasks, blocking completions)
            // is cancelled here: its final call is made before this returns.
            // Queued blocking work was cancelled first thing.
            (Some(runtime), Ok(ms)) => {
                runtime.shutdown_timeout_completed(Duration::from_millis(ms))
            }
            (Some(runtime), Err(_)) => {
                drop(runtime);
                true
            }
        };
        self.io.clear();
        // Called from this runtime's blocking work: that work runs (and its
        // `done(arg, 0)` follows it), so the shutdown is not complete.
        let own_work = crate::callback::is_in_blocking_work_of(self.shutdown_flag().identity());
        // A host thread inside `rt_run` may still be running a callback of
        // a current-thread runtime: wait for it too (it returns once it
        // sees the shutdown).
        let host_done =
            self.wait_for_host_runs(if timeout_ms < 0 { None } else { deadline }, false);
        if completed && host_done && !own_work {
            0
        } else {
            RT_ETIMEDOUT
        }
    }

    /// Marks an `rt_run*` call under way until the guard drops. Then
    /// checks for shutdown: `RT_ESHUTDOWN` once one started.
    pub(crate) fn host_run(&self) -> Result<HostRun<'_>, c_int> {
        self.host_runs.fetch_add(1, SeqCst);
        let me = self as *const rt_runtime as usize;
        let outer = HOSTING.try_with(|h| h.replace(me)).unwrap_or(0);
        let run = HostRun { rt: self, outer };
        if self.shut_down.is_set_seqcst() {
            return Err(RT_ESHUTDOWN);
        }
        Ok(run)
    }

    /// Waits until no `rt_run*` call is under way on another thread, up to
    /// `deadline` (`None`: no limit); false if one still is. The calling
    /// thread's own run (a shutdown from one of its callbacks) is not
    /// waited for. From inside a callback (a runtime thread must not block
    /// on a runtime's threads) it does not wait unless `must_wait` (free:
    /// the runtime's memory must outlive those runs). Polls: a run that
    /// ends must not touch the runtime after its count drops (the runtime
    /// may be freed right after), so it cannot signal.
    fn wait_for_host_runs(&self, deadline: Option<Instant>, must_wait: bool) -> bool {
        let me = self as *const rt_runtime as usize;
        let own = u32::from(HOSTING.try_with(|h| h.get() == me).unwrap_or(false));
        let wait = must_wait || !crate::callback::is_in_callback();
        while self.host_runs.load(SeqCst) > own {
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// True while the calling thread is inside an `rt_run*` call of this
    /// runtime.
    fn hosted_here(&self) -> bool {
        let me = self as *const rt_runtime as usize;
        HOSTING.try_with(|h| h.get() == me).unwrap_or(false)
    }

    /// The handle, or `RT_ESHUTDOWN`.
    pub(crate) fn handle(&self) -> Result<&Handle, c_int> {
        if self.is_shutdown() {
            return Err(RT_ESHUTDOWN);
        }
        Ok(&self.handle)
    }

    pub(crate) fn timers(&self) -> &Arc<Timers<CTimer>> {
        &self.timers
    }

    pub(crate) fn io(&self) -> &Watches<CWatch> {
        &self.io
    }

    /// The handle without the shutdown check (it stays usable: calls on
    /// it fail or do nothing after shutdown). Lock-free, for `rt_wake`.
    pub(crate) fn raw_handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shut_down.is_set()
    }

    /// The flag `rt_runtime_shutdown` sets first, for tasks that may outlive
    /// this struct (`crate::calls::ShutdownFlag`).
    pub(crate) fn shutdown_flag(&self) -> ShutdownFlag {
        self.shut_down.clone()
    }
}

/// Turns a C pointer into a reference, or `RT_EINVAL` for NULL.
///
/// # Safety
/// A non-NULL `rt` must point to a live runtime from `rt_runtime_new`
/// (not yet freed).
pub(crate) unsafe fn runtime_ref<'a>(rt: *const rt_runtime) -> Result<&'a rt_runtime, c_int> {
    // SAFETY: forwarded from the caller.
    unsafe { rt.as_ref() }.ok_or(RT_EINVAL)
}

/// As `runtime_ref`, and `RT_ESHUTDOWN` once the runtime is shut down.
///
/// # Safety
/// As `runtime_ref`.
pub(crate) unsafe fn live_runtime_ref<'a>(rt: *const rt_runtime) -> Result<&'a rt_runtime, c_int> {
    // SAFETY: forwarded from the caller.
    let rt = unsafe { runtime_ref(rt) }?;
    if rt.is_shutdown() {
        return Err(RT_ESHUTDOWN);
    }
    Ok(rt)
}

/// Fills `*config` with the defaults. Returns 0, or `RT_EINVAL` if
/// `config` is NULL. Thread-safe.
///
/// # Safety
/// `config` is NULL or points to writable memory for an `rt_config`.
#[no_mangle]
pub unsafe extern "C" fn rt_config_init(config: *mut rt_config) -> c_int {
    ffi_guard(|| {
        if config.is_null() {
            return RT_EINVAL;
        }
        let defaults = rt_config {
            struct_size: std::mem::size_of::<rt_config>() as u32,
            flavor: rt_flavor::RT_FLAVOR_MULTI_THREAD,
            worker_threads: 0,
            max_blocking_threads: 512,
            thread_keep_alive_ms: 10_000,
            global_queue_interval: 0,
            event_interval: 61,
            reserved: [0; 8],
        };
        // SAFETY: non-NULL and, per the contract, writable.
        unsafe { config.write(defaults) };
        0
    })
}

/// Creates a runtime (with its I/O reactor, timer wheel and blocking pool)
/// and stores it in `*out`. `config` may be NULL for the defaults.
///
/// Returns 0; `RT_EINVAL` if `out` is NULL, `config->struct_size` is
/// wrong, or a field is outside its documented range (see `rt_config`:
/// `worker_threads` above `RT_MAX_WORKER_THREADS`, `max_blocking_threads`
/// or `event_interval` of 0, an unknown flavor); `-errno` if the OS
/// refuses a thread (`-EAGAIN`: too many threads, no memory for a stack;
/// the threads already started are shut down first) or the epoll
/// instance; `RT_ENOMEM` if memory runs out where it can be reported;
/// `RT_EPANIC`. On error `*out` is left as it was.
///
/// Ownership: the caller owns the runtime and must release it with
/// `rt_runtime_free`. Thread-safety: may be called from any thread.
///
/// # Safety
/// `config` is NULL or points to an `rt_config` filled by
/// `rt_config_init`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_runtime_new(
    config: *const rt_config,
    out: *mut *mut rt_runtime,
) -> c_int {
    ffi_guard(|| {
        if out.is_null() {
            return RT_EINVAL;
        }
        let mut cfg = std::mem::MaybeUninit::<rt_config>::uninit();
        let cfg = if config.is_null() {
            // SAFETY: a valid local pointer.
            unsafe { rt_config_init(cfg.as_mut_ptr()) };
            // SAFETY: just initialized.
            unsafe { cfg.assume_init() }
        } else {
            // SAFETY: non-NULL; the caller passes an initialized config. The
            // flavor field is read as a raw integer first so an invalid value
            // is refused rather than being UB.
            let raw_flavor = unsafe { std::ptr::addr_of!((*config).flavor).cast::<u32>().read() };
            if raw_flavor > 1 {
                return RT_EINVAL;
            }
            // SAFETY: as above; every field is now valid.
            let c = unsafe { config.read() };
            if c.struct_size as usize != std::mem::size_of::<rt_config>() {
                return RT_EINVAL;
            }
            c
        };
        // Ranges are checked by the builder (InvalidInput -> RT_EINVAL).
        let mut builder = match cfg.flavor {
            rt_flavor::RT_FLAVOR_MULTI_THREAD => Builder::new_multi_thread(),
            rt_flavor::RT_FLAVOR_CURRENT_THREAD => Builder::new_current_thread(),
        };
        builder
            .enable_all()
            .thread_name("rt-worker")
            .max_blocking_threads(cfg.max_blocking_threads as usize)
            .thread_keep_alive(Duration::from_millis(cfg.thread_keep_alive_ms))
            .event_interval(cfg.event_interval);
        if cfg.worker_threads > 0 {
            builder.worker_threads(cfg.worker_threads as usize);
        }
        if cfg.global_queue_interval > 0 {
            builder.global_queue_interval(cfg.global_queue_interval);
        }
        let runtime = match builder.build() {
            Ok(rt) => rt,
            Err(e) => return from_io(&e),
        };
        let handle = runtime.handle().clone();
        let timers = Timers::new(handle.clone());
        let rt = Box::new(rt_runtime {
            life: Mutex::new(Life {
                runtime: Some(runtime),
                phase: Phase::Live,
            }),
            shutdown_over: Condvar::new(),
            shut_down: ShutdownFlag::default(),
            host_runs: AtomicU32::new(0),
            handle,
            timers,
            io: Watches::default(),
        });
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(Box::into_raw(rt)) };
        0
    })
}

/// Shuts the runtime down. From this call on no new work is accepted
/// (calls that would add work return `RT_ESHUTDOWN`), and no callback is
/// called with status 0 any more (also when this call is made from inside
/// a callback: its other registrations, timers and tasks get only their
/// final call), except `done(arg, 0)` of blocking work whose `work` ran.
/// Then:
///
/// 1. Every pending callback (one that is not running now) gets its final
///    call before this returns, whatever `timeout_ms`, on the calling
///    thread or a runtime thread: armed timers and timer calls queued
///    after an expiry (`RT_ECANCELED`), fd registrations (`RT_ECANCELED`,
///    events 0), `rt_spawn` callbacks not started (`RT_ECANCELED`), poll
///    tasks (their `drop`), queued blocking work (`done(arg,
///    RT_ECANCELED)`; `work` never runs), and blocking work that finished
///    but whose `done` had not run yet (`done(arg, 0)`). `rt_queue`
///    entries are not the runtime's: they stay queued until drained or
///    `rt_queue_free`.
/// 2. It waits at most `timeout_ms` (negative: no limit; 0: no wait) for
///    the callbacks running now to return and the runtime's threads to
///    exit; on a current-thread runtime also for `rt_run` /
///    `rt_run_budget` calls under way on other threads (they return once
///    the callback they run returned).
///
/// Returns:
/// - 0: done. No callback of this runtime runs or will be called again;
///   every `arg` may be freed.
/// - `RT_ETIMEDOUT`: callbacks that were running (blocking their thread)
///   are still running; only they are outstanding. Each finishes on its
///   own thread, then makes there, at once, the one final call it may
///   still owe: a repeating timer whose callback runs gets its final
///   `RT_ECANCELED` call; an fd registration whose callback runs, its
///   final `RT_ECANCELED` call; a poll task inside `poll`, its `drop`;
///   blocking work inside `work`, `done(arg, 0)`. Until then their `arg`
///   must stay valid, also after `rt_runtime_free` (which waits only for
///   the callback an `rt_run` call runs); every other callback has had
///   its final call.
/// - `RT_ESHUTDOWN`: an earlier call shut the runtime down. While that
///   shutdown is still under way (making its final calls, waiting for its
///   timeout) this call waits for it and returns once it returned, so its
///   final calls are all made; but only up to its own `timeout_ms`:
///   `RT_ETIMEDOUT` if that passes first (0: at once, no wait), and
///   `RT_EDEADLK` at once when called from inside a runtime callback,
///   blocking work (`rt_spawn_blocking`'s `work`) or on a runtime thread
///   (the first shutdown may be waiting for this very thread, or be the
///   caller of this callback).
/// - `RT_EINVAL` for NULL.
///
/// Thread-safe. The first shutdown may be called from inside a callback
/// (of this runtime or another). From a thread that runs a runtime's
/// callbacks (a worker, or a host inside `rt_run*`) it makes the final
/// calls of step 1 but does not wait in step 2: a runtime thread must not
/// block on a runtime's threads, and its own callback counts as running;
/// so on a multi-thread runtime the result is then `RT_ETIMEDOUT`, as on a
/// current-thread runtime with an `rt_run*` call under way on another
/// thread (the calling thread's own `rt_run*` is not waited for). From
/// this runtime's blocking work it does not wait for its own pool thread:
/// that work counts as running (`RT_ETIMEDOUT`; its `done(arg, 0)` follows
/// once it returned). A call a runtime thread had already begun making
/// when the shutdown began counts as running too: after `RT_ETIMEDOUT` it
/// may enter its callback just after the return (but no call begins
/// later).
///
/// # Safety
/// `rt` is NULL or a live runtime from `rt_runtime_new`.
#[no_mangle]
pub unsafe extern "C" fn rt_runtime_shutdown(rt: *mut rt_runtime, timeout_ms: i64) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt.shutdown(timeout_ms),
            Err(e) => e,
        }
    })
}

/// Shuts the runtime down (as `rt_runtime_shutdown` with no time limit)
/// and frees it. NULL is ignored. If another thread's `rt_runtime_shutdown`
/// is under way, it waits for that call to return first (any time limit
/// that call has still applies to the callbacks running: see
/// `rt_runtime_shutdown` for what may be outstanding after
/// `RT_ETIMEDOUT`). Called from inside another runtime's callback it does
/// not wait for this runtime's threads: they finish in the background. It also waits for `rt_run` / `rt_run_budget` calls
/// still under way on other threads (after a shutdown that timed out, the
/// callback they run must return first). Every handle obtained from this
/// runtime (tasks, timers, I/O ids) must no longer be used with it, except
/// `rt_task_*` on `rt_task` handles, which stay valid until released.
///
/// # Safety
/// `rt` is NULL or a runtime from `rt_runtime_new` not yet freed. No call
/// on it may start during or after this one (a concurrent
/// `rt_runtime_shutdown` that already started is waited for), and it is
/// not called from inside one of the runtime's callbacks (callbacks still
/// running after a timed-out shutdown must not use `rt` once it is freed).
#[no_mangle]
pub unsafe extern "C" fn rt_runtime_free(rt: *mut rt_runtime) {
    crate::guard::ffi_guard_void(|| {
        // SAFETY: forwarded from the caller.
        let Ok(runtime) = (unsafe { runtime_ref(rt) }) else {
            return;
        };
        if runtime.shutdown(-1) == RT_EDEADLK || runtime.hosted_here() {
            // Another shutdown is under way and this thread cannot wait
            // for it, or this thread is inside `rt_run` of this runtime
            // (the contract was broken): leak rather than free the
            // runtime under it.
            return;
        }
        // After a shutdown that timed out (or made from a runtime thread,
        // which does not wait), a host thread may still be inside
        // `rt_run`, in a callback: it returns once that returns. Also from
        // inside another runtime's callback: the memory must outlive it.
        runtime.wait_for_host_runs(None, true);
        // SAFETY: created by Box::into_raw in rt_runtime_new, freed once;
        // the shutdown above returned, so no call of ours uses it any more.
        drop(unsafe { Box::from_raw(rt) });
    })
}

/// Copies the runtime's counters into `*out`. Works after shutdown too (the
/// counters are then final). Returns 0 or `RT_EINVAL` for NULL.
/// Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_runtime_metrics(rt: *const rt_runtime, out: *mut rt_metrics) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        if out.is_null() {
            return RT_EINVAL;
        }
        let m = rt.handle.metrics();
        let workers = m.num_workers();
        let sum = |f: &dyn Fn(usize) -> u64| (0..workers).map(f).sum::<u64>();
        let metrics = rt_metrics {
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
            reserved: [0; 8],
        };
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(metrics) };
        0
    })
}
