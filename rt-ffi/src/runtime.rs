//! `rt_runtime`: create, configure, shut down and inspect a runtime. The
//! runtime is `rt_core::callback::CallbackRuntime` (its lifecycle, the
//! shutdown contract, the host runs); this is its C face: `rt_config` ->
//! `Builder`, the codes, the pointer ownership.

use crate::error::*;
use crate::guard::ffi_guard;
use crate::io::CWatch;
use crate::timer::CTimer;
use rt_core::callback::CallbackRuntime;
use rt_core::runtime::Builder;
use std::ffi::c_int;
use std::time::Duration;

/// The most worker threads `rt_config.worker_threads` may ask for.
pub const RT_MAX_WORKER_THREADS: u32 = 4096;
// The builder's limit, spelled out above for cbindgen.
const _: () = assert!(RT_MAX_WORKER_THREADS as usize == rt_core::runtime::MAX_WORKER_THREADS);

/// Runtime flavor.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rt_flavor {
    /// Work-stealing worker threads run the tasks. A callback that blocks
    /// its thread (sleeps, waits) holds up only its own worker: timers, fd
    /// watches and queued callbacks go on running on the others (delayed by
    /// about 10 ms at most, when another worker is idle).
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

/// The C API's runtime: the callback layer with C timers and C watches.
pub(crate) type Runtime = CallbackRuntime<CTimer, CWatch>;

/// An opaque runtime.
pub struct rt_runtime {
    rt: Runtime,
}

/// Turns a C pointer into a reference to its runtime, or `RT_EINVAL` for
/// NULL.
///
/// # Safety
/// A non-NULL `rt` must point to a live runtime from `rt_runtime_new`
/// (not yet freed).
pub(crate) unsafe fn runtime_ref<'a>(rt: *const rt_runtime) -> Result<&'a Runtime, c_int> {
    // SAFETY: forwarded from the caller.
    unsafe { rt.as_ref() }.map(|r| &r.rt).ok_or(RT_EINVAL)
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
        let rt = Box::new(rt_runtime {
            rt: CallbackRuntime::new(runtime),
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
            Ok(rt) => {
                status(rt.shutdown(u64::try_from(timeout_ms).ok().map(Duration::from_millis)))
            }
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
        // Shuts down without limit and waits for `rt_run` calls on other
        // threads. False: another shutdown is under way and this thread
        // cannot wait for it, or this thread is inside `rt_run` of this
        // runtime (the contract was broken): leak rather than free the
        // runtime under it.
        if !runtime.prepare_free() {
            return;
        }
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
        let m = rt.metrics();
        let metrics = rt_metrics {
            workers: m.workers,
            tasks_alive: m.tasks_alive,
            tasks_spawned: m.tasks_spawned,
            polls: m.polls,
            steals: m.steals,
            overflows: m.overflows,
            remote_schedules: m.remote_schedules,
            parks: m.parks,
            blocking_threads: m.blocking_threads,
            blocking_idle_threads: m.blocking_idle_threads,
            blocking_queue_depth: m.blocking_queue_depth,
            timers: m.timers,
            io_registrations: m.io_registrations,
            reserved: [0; 8],
        };
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(metrics) };
        0
    })
}
