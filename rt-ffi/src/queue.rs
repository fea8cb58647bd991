//! `rt_queue`: a completion queue. Any thread (or runtime callback) posts
//! callbacks to it; the host drains it on its own thread (the game
//! thread), so work can run on a multi-thread runtime's workers while its
//! results land where the host wants them.
//!
//! The queue itself is `rt_core::callback::CompletionQueue` (a mutex FIFO
//! and an eventfd readable exactly while it is non-empty).

use crate::callback::{rt_callback, CCall};
use crate::error::*;
use crate::guard::{ffi_guard, ffi_guard_void};
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::callback::CompletionQueue;
use std::ffi::{c_int, c_void};

/// An opaque completion queue.
pub struct rt_queue {
    queue: CompletionQueue<CCall>,
}

/// Turns a C pointer into a queue reference, or `RT_EINVAL` for NULL.
///
/// # Safety
/// A non-NULL `q` points to a live queue from `rt_queue_new`.
unsafe fn queue_ref<'a>(q: *const rt_queue) -> Result<&'a rt_queue, c_int> {
    // SAFETY: forwarded from the caller.
    unsafe { q.as_ref() }.ok_or(RT_EINVAL)
}

/// Creates a completion queue and stores it in `*out`. The queue does not
/// depend on `rt` afterwards (it may outlive it); works with both flavors.
/// Its entries are not the runtime's: `rt_runtime_shutdown` leaves them
/// queued (they run in a drain, or get `RT_ECANCELED` in `rt_queue_free`).
///
/// Returns 0; `RT_EINVAL` for a NULL `rt` or `out`; `RT_ESHUTDOWN`;
/// `-errno` if the OS refuses the eventfd. Ownership: the caller owns the
/// queue and releases it with `rt_queue_free`. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_queue_new(rt: *const rt_runtime, out: *mut *mut rt_queue) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        if out.is_null() {
            return RT_EINVAL;
        }
        if let Err(e) = rt.handle() {
            return code(&e);
        }
        let q = match CompletionQueue::new() {
            Ok(queue) => Box::new(rt_queue { queue }),
            Err(e) => return from_io(&e),
        };
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(Box::into_raw(q)) };
        0
    })
}

/// Posts `fn(arg, 0)` to run in a later `rt_queue_drain`; if the queue is
/// freed first, `fn(arg, RT_ECANCELED)` runs in `rt_queue_free` instead.
/// Callbacks posted by one thread run in the order they were posted.
///
/// Returns 0, or `RT_EINVAL` for a NULL `q` or `fn` (then `fn` is never
/// called). Thread-safe: any thread, runtime callbacks and the queue's own
/// drained callbacks included. `arg` travels to the draining thread.
///
/// # Safety
/// `q` is NULL or a live queue (not freed, and not being freed).
#[no_mangle]
pub unsafe extern "C" fn rt_queue_post(
    q: *const rt_queue,
    func: rt_callback,
    arg: *mut c_void,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let q = match unsafe { queue_ref(q) } {
            Ok(q) => q,
            Err(e) => return e,
        };
        let Some(func) = func else {
            return RT_EINVAL;
        };
        q.queue.post(CCall { f: func, arg });
        0
    })
}

/// Runs queued callbacks on the calling thread, oldest first, each with
/// status 0: at most `max` of them, or with `max` 0 the ones queued when
/// the call started (callbacks they post run on a later drain). Never
/// blocks.
///
/// Returns how many ran (>= 0), or `RT_EINVAL` for NULL. Thread-safe; a
/// callback may post to or drain the same queue, and (run on the host's
/// thread, not as a runtime callback) may block or call `rt_run*`. With several threads
/// draining at once, each takes entries in queue order but they run
/// concurrently.
///
/// # Safety
/// `q` is NULL or a live queue.
#[no_mangle]
pub unsafe extern "C" fn rt_queue_drain(q: *const rt_queue, max: u32) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let q = match unsafe { queue_ref(q) } {
            Ok(q) => q,
            Err(e) => return e,
        };
        let ran = q.queue.drain(max as usize);
        c_int::try_from(ran).unwrap_or(c_int::MAX)
    })
}

/// A file descriptor that is readable exactly while the queue holds
/// callbacks, for the host's `poll`/`epoll` set. The queue owns it: do not
/// read from it or close it. Valid until `rt_queue_free`.
///
/// Returns the fd (>= 0), or `RT_EINVAL` for NULL. Thread-safe.
///
/// # Safety
/// `q` is NULL or a live queue.
#[no_mangle]
pub unsafe extern "C" fn rt_queue_fd(q: *const rt_queue) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        match unsafe { queue_ref(q) } {
            Ok(q) => q.queue.fd(),
            Err(e) => e,
        }
    })
}

/// Frees the queue: every callback still queued gets its final call
/// `fn(arg, RT_ECANCELED)` here, on the calling thread, oldest first. NULL
/// is ignored.
///
/// # Safety
/// `q` is NULL or a queue from `rt_queue_new` not yet freed; no other
/// thread uses it during or after this call (producers must be done
/// posting), and it is not called from one of this queue's callbacks.
#[no_mangle]
pub unsafe extern "C" fn rt_queue_free(q: *mut rt_queue) {
    ffi_guard_void(|| {
        if q.is_null() {
            return;
        }
        {
            // SAFETY: live until the Box below takes it back; only shared
            // references exist meanwhile (a final callback may post to it
            // through its own pointer: that entry gets its call here too).
            let queue = unsafe { &*q };
            // Final calls outside the lock, in order, made the way drains
            // make theirs (on the host's thread, not as runtime callbacks).
            queue.queue.cancel_all();
        }
        // SAFETY: created by Box::into_raw in rt_queue_new, freed once; no
        // reference to it is left.
        drop(unsafe { Box::from_raw(q) });
    })
}
