//! File descriptors on the reactor: `rt_io_register`, `rt_io_modify`,
//! `rt_io_deregister`.
//!
//! The reactor is edge-triggered underneath; the C API is level-triggered:
//! after each callback the registration is re-armed (`epoll_ctl` MOD, as
//! libuv does for its level-triggered watchers), so the kernel checks the
//! fd again and readiness it still has for the interest is reported at the
//! reactor's next turn: the callback runs again after other tasks had a
//! turn. No readiness is ever lost: the readiness acted on is forgotten
//! with the driver's tick check, so an edge that arrives while the callback
//! runs is kept. (If the kernel refused the re-arm, a zero-timeout
//! `poll(2)` decides instead.)
//!
//! The reactor watches a duplicate of the caller's fd (`F_DUPFD_CLOEXEC`),
//! owned by the registration: the caller may close its fd as soon as
//! `rt_io_deregister` returns, and a reused fd number can never be confused
//! with ours. `rt_io_deregister` removes the duplicate from the reactor and
//! closes it before it returns.

use crate::calls::TaskGate;
use crate::error::*;
use crate::guard::ffi_guard;
use crate::registry::Registry;
use crate::runtime::{live_runtime_ref, rt_runtime, runtime_ref};
use rt_core::io::{AsyncFd, Interest};
use std::ffi::{c_int, c_void};
use std::future::poll_fn;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

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

/// `void (*)(void *arg, rt_fd fd, uint32_t events, int status)`.
pub type rt_io_callback =
    Option<unsafe extern "C" fn(arg: *mut c_void, fd: rt_fd, events: u32, status: c_int)>;

pub(crate) struct IoCtl {
    gate: TaskGate,
    interest: AtomicU32,
    waker: Mutex<Option<Waker>>,
    /// The reactor's view of our duplicate (declared before `dup`: on drop
    /// it leaves the reactor before the duplicate closes).
    afd: AsyncFd<WatchedFd>,
    /// Our duplicate of the caller's fd; closed by `rt_io_deregister`.
    dup: Mutex<Option<OwnedFd>>,
}

impl IoCtl {
    fn lock_dup(&self) -> std::sync::MutexGuard<'_, Option<OwnedFd>> {
        self.dup.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the duplicate out of the reactor and closes it, now: the
    /// caller's close of its own fd then really closes the file. Under the
    /// duplicate's lock: a re-arm never names a closed (maybe reused) fd.
    fn release_fd(&self) {
        let mut dup = self.lock_dup();
        let _ = self.afd.deregister_now();
        drop(dup.take());
    }

    /// Sets the reactor's interest to the current one (`epoll_ctl` MOD):
    /// the kernel checks the fd again and readiness it has now is reported
    /// at the next turn. `RT_ENOENT` once the fd is released; `-errno` if
    /// the kernel refuses.
    fn rearm(&self) -> Result<(), c_int> {
        let dup = self.lock_dup();
        if dup.is_none() {
            return Err(RT_ENOENT);
        }
        let interest = to_interest(self.interest.load(Ordering::Acquire)).ok_or(RT_EINVAL)?;
        self.afd.reregister(interest).map_err(|e| from_io(&e))
    }

    /// Keeps the task's waker for `rt_io_modify`, which wakes it in place
    /// (the slot always holds the latest one). `last` is the task's own
    /// copy of what it stored: the lock is only taken when the waker
    /// changed (in practice: on the first poll).
    fn store_waker(&self, waker: &Waker, last: &mut Option<Waker>) {
        if last.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        *last = Some(waker.clone());
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
    }
}

/// The raw number of our duplicate, for the reactor (it does not own it).
struct WatchedFd(RawFd);

impl AsRawFd for WatchedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

pub(crate) type IoRegistry = Registry<Arc<IoCtl>>;

/// Our duplicate of the caller's fd.
fn dup_fd(fd: RawFd) -> Result<OwnedFd, c_int> {
    // SAFETY: fcntl on any integer is memory-safe; an invalid fd gives EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(from_io(&std::io::Error::last_os_error()));
    }
    // SAFETY: `dup` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

#[derive(Clone, Copy)]
struct Cb {
    f: unsafe extern "C" fn(*mut c_void, c_int, u32, c_int),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread.
unsafe impl Send for Cb {}

impl Cb {
    fn call(self, fd: RawFd, events: u32, status: c_int) {
        // SAFETY: a C function pointer with the documented signature.
        crate::callback::in_callback(|| unsafe { (self.f)(self.arg, fd, events, status) })
    }
}

/// The final `RT_ECANCELED` call of a registration still active when its
/// task is dropped (runtime shutdown).
struct FinalCall {
    ctl: Arc<IoCtl>,
    cb: Cb,
    fd: RawFd,
}

impl Drop for FinalCall {
    fn drop(&mut self) {
        if self.ctl.gate.begin_final() {
            self.cb.call(self.fd, 0, RT_ECANCELED);
            self.ctl.gate.end();
        }
    }
}

fn to_interest(bits: u32) -> Option<Interest> {
    match (bits & RT_READABLE != 0, bits & RT_WRITABLE != 0) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

/// Level-triggered check: which of `interest` the fd reports now.
fn poll_now(fd: RawFd, interest: u32) -> u32 {
    let mut events: libc::c_short = 0;
    if interest & RT_READABLE != 0 {
        events |= libc::POLLIN;
    }
    if interest & RT_WRITABLE != 0 {
        events |= libc::POLLOUT;
    }
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return 0;
    }
    let mut out = 0;
    if pfd.revents & libc::POLLIN != 0 {
        out |= RT_READABLE;
    }
    if pfd.revents & libc::POLLOUT != 0 {
        out |= RT_WRITABLE;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0 {
        out |= RT_HUP;
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        out |= RT_ERROR;
    }
    out
}

/// The task of one registration: waits for readiness in the current
/// interest, makes the call, then re-arms the level-triggered check.
async fn serve(ctl: Arc<IoCtl>, cb: Cb, fd: RawFd, final_call: FinalCall) {
    let _final = final_call;
    // True right after a call: readiness that is still set then is only
    // acted on after other tasks had a turn.
    let mut called = false;
    // The waker last stored in `ctl.waker`.
    let mut stored_waker: Option<Waker> = None;
    loop {
        let (mut rguard, mut wguard) = (None, None);
        let ready = poll_fn(|cx| {
            let just_called = std::mem::take(&mut called);
            ctl.store_waker(cx.waker(), &mut stored_waker);
            let want = ctl.interest.load(Ordering::Acquire);
            let mut got = 0;
            if want & RT_READABLE != 0 {
                match ctl.afd.poll_read_ready(cx) {
                    Poll::Ready(Ok(g)) => {
                        got |= RT_READABLE | hup_err(g.ready().is_read_closed(), g.ready());
                        rguard = Some(g);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            if want & RT_WRITABLE != 0 {
                match ctl.afd.poll_write_ready(cx) {
                    Poll::Ready(Ok(g)) => {
                        got |= RT_WRITABLE | hup_err(g.ready().is_write_closed(), g.ready());
                        wguard = Some(g);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            if got == 0 {
                return Poll::Pending;
            }
            if just_called {
                // Still ready right after a call: yield first (the guards
                // drop and keep the readiness).
                rguard = None;
                wguard = None;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Some(got))
        })
        .await;
        let Some(events) = ready else {
            // The reactor shut down: the final call follows.
            return;
        };
        if !ctl.gate.begin() {
            return;
        }
        cb.call(fd, events, 0);
        if !ctl.gate.end() {
            return;
        }
        // Level-triggered: the kernel checks the fd again, so readiness it
        // still has comes back at the reactor's next turn; the readiness we
        // acted on is forgotten (unless an edge arrived meanwhile: the tick
        // check keeps that one). Without the re-arm, a `poll(2)` decides
        // which readiness is still there.
        let held = if rguard.is_some() { RT_READABLE } else { 0 }
            | if wguard.is_some() { RT_WRITABLE } else { 0 };
        let still = match ctl.rearm() {
            // Released meanwhile (deregistered): the fd number may be reused
            // already, ask nothing; the task is cancelled.
            Ok(()) | Err(RT_ENOENT) => 0,
            Err(_) => poll_now(ctl.afd.as_raw_fd(), held),
        };
        if still & RT_READABLE == 0 {
            if let Some(g) = rguard.as_mut() {
                g.clear_ready();
            }
        }
        if still & RT_WRITABLE == 0 {
            if let Some(g) = wguard.as_mut() {
                g.clear_ready();
            }
        }
        called = true;
    }
}

/// `RT_HUP` / `RT_ERROR` for a direction's readiness.
fn hup_err(closed: bool, ready: rt_core::io::Ready) -> u32 {
    (if closed { RT_HUP } else { 0 }) | if ready.is_error() { RT_ERROR } else { 0 }
}

/// Registers `fd` with the reactor: `cb(arg, fd, events, 0)` runs on a
/// runtime thread whenever `fd` is ready for `interest` (`RT_READABLE`
/// and/or `RT_WRITABLE`); `events` holds what is ready, plus `RT_HUP` /
/// `RT_ERROR` when the fd reports them. Level-triggered, like `epoll`'s
/// default and libuv's `uv_poll`: a callback that leaves data unread is
/// called again. `fd` must be non-blocking; the caller keeps owning it and
/// must deregister it before closing it.
///
/// A registration still active at shutdown gets one final call with
/// `RT_ECANCELED` (events 0); a deregistered one gets none.
///
/// Returns 0 and the id in `*out`; `RT_EINVAL` for NULL `rt`/`cb`/`out`,
/// a negative fd, or an interest without `RT_READABLE`/`RT_WRITABLE`;
/// `-errno` if the kernel refuses the fd (`-EBADF` for a closed one,
/// `-EPERM` for a regular file); `RT_ESHUTDOWN`. On error `cb` is never
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
        let (Some(f), false, true, Some(reactor_interest)) =
            (cb, out.is_null(), fd >= 0, to_interest(interest))
        else {
            return RT_EINVAL;
        };
        let handle = match rt.handle() {
            Ok(h) => h,
            Err(e) => return e,
        };
        let watched = match dup_fd(fd) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let afd = {
            let _enter = handle.enter();
            match AsyncFd::with_interest(WatchedFd(watched.as_raw_fd()), reactor_interest) {
                Ok(afd) => afd,
                Err(e) => return from_io(&e),
            }
        };
        let cb = Cb { f, arg };
        let ctl = Arc::new(IoCtl {
            gate: TaskGate::default(),
            interest: AtomicU32::new(interest),
            waker: Mutex::new(None),
            afd,
            dup: Mutex::new(Some(watched)),
        });
        let id = rt.io().insert(ctl.clone());
        // Before the task exists: its first callback may use the id.
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(id) };
        // Built outside the future: a task dropped before its first poll
        // (shutdown right away) still makes the final call.
        let final_call = FinalCall {
            ctl: ctl.clone(),
            cb,
            fd,
        };
        let join = handle.spawn(serve(ctl.clone(), cb, fd, final_call));
        // (A shutdown racing with this call drops the task at once: the
        // registration then got its final RT_ECANCELED call; a success.)
        ctl.gate.set_task(join.abort_handle());
        0
    })
}

/// Changes a registration's interest (`RT_READABLE` and/or
/// `RT_WRITABLE`); readiness the fd has for the new interest is reported
/// at the reactor's next turn. Returns 0; `RT_ENOENT` for an unknown or
/// deregistered id; `RT_EINVAL` for NULL or an empty interest;
/// `RT_ESHUTDOWN`; `-errno` if the kernel refuses the change (the new
/// interest is recorded anyway). Thread-safe.
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
        if to_interest(interest).is_none() {
            return RT_EINVAL;
        }
        if rt.is_shutdown() {
            return RT_ESHUTDOWN;
        }
        let Some(ctl) = rt.io().get(id) else {
            return RT_ENOENT;
        };
        ctl.interest.store(interest, Ordering::Release);
        // The reactor watches the new interest; readiness the fd has for it
        // now is reported at its next turn.
        let status = match ctl.rearm() {
            Ok(()) => 0,
            Err(e) => e,
        };
        let waker = ctl.waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = waker {
            w.wake();
        }
        status
    })
}

/// Deregisters. After it returns 0 the callback is not running on any
/// other thread and will not be called again (no `RT_ECANCELED` either),
/// so `arg` may be freed and the fd closed; called from inside the
/// registration's own callback it returns at once and no further call
/// happens. The reactor has let go of the fd when it returns: closing it
/// then closes the file (the peer sees EOF at once).
///
/// Returns 0; `RT_ENOENT` for an unknown or already deregistered id;
/// `RT_EDEADLK` when called from inside another runtime callback while
/// this registration's callback runs on another thread: deregistered (no
/// further call starts) but that call may still be finishing, so `arg`
/// must not be freed yet; `RT_EINVAL` for NULL; `RT_ESHUTDOWN`.
/// Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_io_deregister(rt: *const rt_runtime, id: rt_io_id) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { live_runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        match rt.io().remove(id) {
            Some(ctl) => {
                let stopped = ctl.gate.stop_and_cancel();
                if stopped != crate::calls::Stopped::Already {
                    // Off the reactor and our duplicate closed before we
                    // return: the caller may close its fd and see it closed.
                    ctl.release_fd();
                }
                stopped.to_status()
            }
            None => RT_ENOENT,
        }
    })
}
