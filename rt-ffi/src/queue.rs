//! `rt_queue`: a completion queue. Any thread (or runtime callback) posts
//! callbacks to it; the host drains it on its own thread (the game
//! thread), so work can run on a multi-thread runtime's workers while its
//! results land where the host wants them.
//!
//! A mutex-protected FIFO (one order for all posts, hence per-producer
//! order) and an eventfd that is readable exactly while the FIFO is
//! non-empty: written when a post finds it empty, reset when a drain
//! empties it, both under the mutex.

use crate::callback::{rt_callback, CallOnce};
use crate::error::*;
use crate::guard::{ffi_guard, ffi_guard_void};
use crate::runtime::{rt_runtime, runtime_ref};
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

/// An opaque completion queue.
pub struct rt_queue {
    entries: Mutex<VecDeque<CallOnce>>,
    /// Readable while `entries` is non-empty.
    ready: OwnedFd,
}

impl rt_queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<CallOnce>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: `ready` is an open eventfd owned by the queue; the buffer
        // is 8 readable bytes on the stack. It cannot fail with EAGAIN: the
        // counter is reset to 0 whenever the queue empties.
        unsafe { libc::write(self.ready.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn reset(&self) {
        let mut count: u64 = 0;
        // SAFETY: as in `signal`; 8 writable bytes. EAGAIN (already 0) is
        // fine: reset means "not readable".
        unsafe { libc::read(self.ready.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    /// Takes the oldest entry, resetting the fd if that empties the queue.
    fn pop(&self) -> Option<CallOnce> {
        let mut entries = self.lock();
        let entry = entries.pop_front()?;
        if entries.is_empty() {
            self.reset();
        }
        Some(entry)
    }
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
            return e;
        }
        // SAFETY: plain syscall with constant, valid flags.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return from_io(&std::io::Error::last_os_error());
        }
        let q = Box::new(rt_queue {
            entries: Mutex::new(VecDeque::new()),
            // SAFETY: `fd` was just created and is owned by nothing else.
            ready: unsafe { OwnedFd::from_raw_fd(fd) },
        });
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
        let mut entries = q.lock();
        if entries.is_empty() {
            q.signal();
        }
        entries.push_back(CallOnce::new(func, arg));
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
        let limit = if max == 0 {
            q.lock().len()
        } else {
            max as usize
        };
        let mut ran: usize = 0;
        while ran < limit {
            let Some(entry) = q.pop() else { break };
            entry.call_unmarked(0);
            ran += 1;
        }
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
            Ok(q) => q.ready.as_raw_fd(),
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
            while let Some(entry) = queue.pop() {
                entry.call_unmarked(RT_ECANCELED);
            }
        }
        // SAFETY: created by Box::into_raw in rt_queue_new, freed once; no
        // reference to it is left.
        drop(unsafe { Box::from_raw(q) });
    })
}
