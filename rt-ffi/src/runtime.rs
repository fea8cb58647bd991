//! `rt_runtime`: create, configure, shut down and inspect a runtime.

use crate::error::*;
use crate::guard::ffi_guard;
use crate::io::IoRegistry;
use crate::timer::Timers;
use rt_core::runtime::{Builder, Handle, Runtime};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rt_config {
    /// `sizeof(rt_config)` as the caller's header knows it (set by `rt_config_init`).
    pub struct_size: u32,
    /// Multi-thread (default) or current-thread.
    pub flavor: rt_flavor,
    /// Worker threads of a multi-thread runtime; 0 means one per CPU (default).
    pub worker_threads: u32,
    /// Cap on blocking-pool threads (default 512).
    pub max_blocking_threads: u32,
    /// Idle blocking-pool threads exit after this many ms (default 10000).
    pub thread_keep_alive_ms: u64,
    /// Ticks between checks of the shared queue; 0 means the flavor's
    /// default (61 multi-thread, 31 current-thread).
    pub global_queue_interval: u32,
    /// Ticks between I/O and timer polls of a busy scheduler (default 61).
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
    /// `None` once shut down.
    runtime: Mutex<Option<Runtime>>,
    /// Set when `runtime` is taken: lets every call check for shutdown
    /// without the lock.
    shut_down: AtomicBool,
    handle: Handle,
    timers: Arc<Timers>,
    io: IoRegistry,
}

impl rt_runtime {
    /// The handle, or `RT_ESHUTDOWN`.
    pub(crate) fn handle(&self) -> Result<&Handle, c_int> {
        if self.is_shutdown() {
            return Err(RT_ESHUTDOWN);
        }
        Ok(&self.handle)
    }

    pub(crate) fn timers(&self) -> &Arc<Timers> {
        &self.timers
    }

    pub(crate) fn io(&self) -> &IoRegistry {
        &self.io
    }

    /// The handle without the shutdown check (it stays usable: calls on
    /// it fail or do nothing after shutdown). Lock-free, for `rt_wake`.
    pub(crate) fn raw_handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shut_down.load(Acquire)
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
/// wrong, or a value is out of range (`max_blocking_threads` or
/// `event_interval` of 0, unknown flavor); `-errno` if the OS refuses
/// threads or the epoll instance; `RT_EPANIC`.
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
        if cfg.max_blocking_threads == 0 || cfg.event_interval == 0 {
            return RT_EINVAL;
        }
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
            runtime: Mutex::new(Some(runtime)),
            shut_down: AtomicBool::new(false),
            handle,
            timers,
            io: IoRegistry::new(),
        });
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(Box::into_raw(rt)) };
        0
    })
}

/// Shuts the runtime down: no new work is accepted (later calls return
/// `RT_ESHUTDOWN`), every pending callback gets its final call with
/// `RT_ECANCELED` (on the calling thread or a runtime thread), and the
/// threads are joined, waiting at most `timeout_ms` for work that is still
/// running (negative: no limit; 0: do not wait). Idempotent.
///
/// Returns 0; `RT_EINVAL` for NULL; `RT_ETIMEDOUT` if threads were still
/// busy at the timeout (they finish in the background); `RT_ESHUTDOWN` if
/// already shut down (also while another thread's shutdown is still
/// making the final calls: that call returns once they are done). Thread-safe; may be called from inside a callback
/// (of this runtime or another). From a thread that runs a runtime's
/// callbacks (a worker, or a host inside `rt_run*`) it does not wait for
/// the threads at all (that thread must not block on a runtime's threads)
/// and returns `RT_ETIMEDOUT` if some are still finishing; from a blocking
/// pool thread (`rt_spawn_blocking` work) it does not wait for that thread.
///
/// # Safety
/// `rt` is NULL or a live runtime from `rt_runtime_new`.
#[no_mangle]
pub unsafe extern "C" fn rt_runtime_shutdown(rt: *mut rt_runtime, timeout_ms: i64) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let runtime = {
            let mut slot = rt.runtime.lock().unwrap_or_else(|e| e.into_inner());
            rt.shut_down.store(true, Release);
            slot.take()
        };
        let Some(runtime) = runtime else {
            return RT_ESHUTDOWN;
        };
        // A thread that runs a runtime (inside a callback) may not wait for
        // a runtime's threads: rt-core panics there, as Tokio does. Shut
        // down without waiting instead (RT_ETIMEDOUT if threads are left).
        let completed = match u64::try_from(timeout_ms) {
            _ if rt_core::runtime::is_runtime_thread() => {
                runtime.shutdown_timeout_completed(Duration::ZERO)
            }
            Ok(ms) => runtime.shutdown_timeout_completed(Duration::from_millis(ms)),
            Err(_) => {
                drop(runtime);
                true
            }
        };
        drop(rt.io.drain());
        if completed {
            0
        } else {
            RT_ETIMEDOUT
        }
    })
}

/// Shuts the runtime down (as `rt_runtime_shutdown` with no time limit,
/// unless already shut down; from inside a callback without waiting, its
/// threads finishing in the background) and frees it. NULL is ignored. Every handle
/// obtained from this runtime (tasks, timers, I/O ids) must no longer be
/// used with it, except `rt_task_*` on `rt_task` handles, which stay valid
/// until released.
///
/// # Safety
/// `rt` is NULL or a runtime from `rt_runtime_new` not yet freed; no other
/// thread uses it during or after this call.
#[no_mangle]
pub unsafe extern "C" fn rt_runtime_free(rt: *mut rt_runtime) {
    crate::guard::ffi_guard_void(|| {
        if rt.is_null() {
            return;
        }
        // SAFETY: created by Box::into_raw in rt_runtime_new, freed once.
        let rt = unsafe { Box::from_raw(rt) };
        if rt_core::runtime::is_runtime_thread() {
            // Inside a callback: dropping the runtime would wait for its
            // threads, which rt-core refuses there (a panic). Shut it
            // down without waiting; its threads finish in the background.
            let runtime = {
                let mut slot = rt.runtime.lock().unwrap_or_else(|e| e.into_inner());
                rt.shut_down.store(true, Release);
                slot.take()
            };
            if let Some(runtime) = runtime {
                runtime.shutdown_background();
            }
        }
        drop(rt);
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
