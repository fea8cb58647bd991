//! File descriptors on the reactor: `rt_io_register`, `rt_io_modify`,
//! `rt_io_deregister`. The level-triggered watching over the
//! edge-triggered reactor, the stop guarantee and the fd-number ownership
//! rules are `rt_core::callback`'s (`watch.rs`); this is their C face.

use crate::callback::{status_code, stopped_code};
use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{rt_runtime, runtime_ref};
use rt_core::callback::{Status, WatchCallback};
use std::ffi::{c_int, c_void};
use std::os::unix::io::RawFd;

/// A file descriptor (`int` on POSIX; the header defines it per platform).
pub type rt_fd = c_int;

/// An I/O registration id: generational, so a stale id gives `RT_ENOENT`.
pub type rt_io_id = u64;

/// Interest / event bit: readable.
pub const RT_READABLE: u32 = 1;
/// Interest / event bit: writable.
pub const RT_WRITABLE: u32 = 2;
/// Event bit: the peer hung up (or the read/write half closed).
pub const RT_HUP: u32 = 4;
/// Event bit: an error is pending on the fd.
pub const RT_ERROR: u32 = 8;

// The layer's bits are the C values.
const _: () = assert!(
    RT_READABLE == rt_core::callback::READABLE
        && RT_WRITABLE == rt_core::callback::WRITABLE
        && RT_HUP == rt_core::callback::HUP
        && RT_ERROR == rt_core::callback::ERROR
);

/// `void (*)(void *arg, rt_fd fd, uint32_t events, int status)`.
pub type rt_io_callback =
    Option<unsafe extern "C" fn(arg: *mut c_void, fd: rt_fd, events: u32, status: c_int)>;

/// The C callback of a registration and its argument.
pub(crate) struct CWatch {
    f: unsafe extern "C" fn(*mut c_void, c_int, u32, c_int),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread.
unsafe impl Send for CWatch {}
// SAFETY: as above; a shared `CWatch` is only read.
unsafe impl Sync for CWatch {}

impl WatchCallback for CWatch {
    fn call(&self, fd: RawFd, events: u32, status: Status) {
        // SAFETY: a C function pointer with the documented signature.
        unsafe { (self.f)(self.arg, fd, events, status_code(status)) }
    }
}

/// Registers `fd` with the reactor: `cb(arg, fd, events, 0)` runs on a
/// runtime thread whenever `fd` is ready for `interest` (`RT_READABLE`
/// and/or `RT_WRITABLE`); `events` holds what is ready, plus `RT_HUP` /
/// `RT_ERROR` when the fd reports them. Level-triggered, like `epoll`'s
/// default and libuv's `uv_poll`: a callback that leaves data unread is
/// called again. `fd` must be non-blocking.
///
/// Ownership, as with libuv's `uv_poll`: the caller keeps owning `fd` and
/// closes it itself; the runtime never closes it and keeps no duplicate (a
/// registration costs no file descriptor). The runtime uses the fd number
/// from this call until `rt_io_deregister` returns or the final
/// `RT_ECANCELED` call starts: close `fd` only after one of these (from
/// inside the callback: after `rt_io_deregister` returned there). Once
/// deregistered, the number may be reused and registered again; the old
/// id stays stale (`RT_ENOENT`).
///
/// One registration per fd: registering an fd that is registered with
/// this runtime already gives `-EEXIST` (change the interest with
/// `rt_io_modify`; a `dup` of the fd is another fd and may be registered).
///
/// Closing `fd` while it is registered breaks this contract; the effects
/// are bounded. The kernel drops a closed fd from the reactor, so the
/// callback stops being called, unless another descriptor keeps the file
/// open (`dup`, `fork`): then that file's readiness may still be reported
/// under the old number (which may name another file by then) until the
/// runtime notices, at the registration's next re-arm or when the number
/// is registered again. From then on the old registration is silent, and
/// neither it nor its `rt_io_deregister` (still needed: it returns 0)
/// touches the fd number or another registration.
///
/// A registration still active at shutdown gets one final call with
/// `RT_ECANCELED` (events 0); a deregistered one gets none. No call with
/// status 0 starts once the runtime's shutdown has begun (also when this
/// callback itself called `rt_runtime_shutdown`).
///
/// Returns 0 and the id in `*out`; `RT_EINVAL` for NULL `rt`/`cb`/`out`,
/// a negative fd, or an interest without `RT_READABLE`/`RT_WRITABLE`;
/// `-EEXIST` if `fd` is registered already; `-errno` if the kernel refuses
/// the fd (`-EBADF` for a closed one, `-EPERM` for a regular file);
/// `RT_ESHUTDOWN` once shutdown has begun. A call racing the shutdown
/// returns `RT_ESHUTDOWN`, or 0 and the registration gets its final
/// `RT_ECANCELED` call (maybe before this returns). On error `cb` is never
/// called. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_io_register(
    rt: *const rt_runtime,
    fd: rt_fd,
    interest: u32,
    cb: rt_io_callback,
    arg: *mut c_void,
    out: *mut rt_io_id,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let (Some(f), false) = (cb, out.is_null()) else {
            return RT_EINVAL;
        };
        // (A negative fd or an interest without RT_READABLE / RT_WRITABLE:
        // RT_EINVAL, checked before the shutdown, from the layer.)
        // The id goes to `*out` before the task exists: its first callback
        // may use it.
        let out = |id| {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(id) }
        };
        status(rt.watch_with(fd, interest, CWatch { f, arg }, out))
    })
}

/// Changes a registration's interest (`RT_READABLE` and/or
/// `RT_WRITABLE`); readiness the fd has for the new interest is reported
/// at the reactor's next turn. Returns 0; `RT_ENOENT` for an unknown or
/// deregistered id, or a registration whose fd was closed without a
/// deregister (see `rt_io_register`; `-EBADF` when that shows now);
/// `RT_EINVAL` for NULL or an empty interest; `RT_ESHUTDOWN` once shutdown
/// has begun (also when racing it); `-errno` if the kernel refuses the
/// change (the new interest is recorded anyway). Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_io_modify(rt: *const rt_runtime, id: rt_io_id, interest: u32) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        // (Released by a racing shutdown's final call, or the entry taken
        // by it: RT_ESHUTDOWN.)
        status(rt.watch_modify(id, interest))
    })
}

/// Deregisters. After it returns 0 the callback is not running on any
/// other thread and will not be called again (no `RT_ECANCELED` either),
/// so `arg` may be freed and the fd closed; called from inside the
/// registration's own callback it returns at once and no further call
/// happens. The reactor has let go of the fd when it returns (`epoll_ctl`
/// DEL): the runtime never uses the fd number again, and closing the fd
/// then closes the file (the peer sees EOF at once).
///
/// Returns 0; `RT_ENOENT` for an unknown or already deregistered id;
/// `RT_EDEADLK` when called from inside another runtime callback while
/// this registration's callback runs on another thread: deregistered (no
/// further call starts; the runtime let go of the fd) but that call may
/// still be finishing, so `arg` must not be freed yet (nor the fd closed,
/// if that call uses it); `RT_EINVAL` for NULL;
/// `RT_ESHUTDOWN` once shutdown has begun, also when racing it (a
/// registration still active then gets its final `RT_ECANCELED` call).
/// Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_io_deregister(rt: *const rt_runtime, id: rt_io_id) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        // (A racing shutdown took the entry, or claimed its final call:
        // RT_ESHUTDOWN rather than RT_ENOENT.)
        match rt.watch_close(id) {
            Ok(stopped) => stopped_code(stopped),
            Err(e) => code(&e),
        }
    })
}
