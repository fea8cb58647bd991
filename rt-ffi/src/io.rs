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
//! `poll(2)` decides instead; unless it refused because the fd was closed
//! behind the registration's back, which then falls silent.)
//!
//! The reactor watches the caller's fd itself (no duplicate: a registration
//! costs no fd, as with libuv). The registration uses the fd number only
//! while it holds it (`IoCtl::fd_held`, under its lock), and lets go of it
//! before `rt_io_deregister` returns and before the final `RT_ECANCELED`
//! call: the caller may close the fd then, and the number may be reused.
//!
//! epoll names an fd by number and file, so an operation on a number that
//! now names another file cannot reach the old entry, and reaches another
//! entry only if that file is registered under the same number in the same
//! runtime. The registry's index by fd number catches that case: when a
//! number still held by a registration is registered again and the kernel
//! accepts it (the old file was closed without a deregister, which the
//! contract forbids), the old registration lets go of the number without
//! a system call and falls silent.

use crate::calls::TaskGate;
use rt_core::callback::ShutdownFlag;
use crate::error::*;
use crate::guard::ffi_guard;
use crate::registry::Registry;
use crate::runtime::{live_runtime_ref, rt_runtime, runtime_ref};
use rt_core::io::{AsyncFd, Interest};
use std::ffi::{c_int, c_void};
use std::future::poll_fn;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// The runtime's shutdown flag: no call with status 0 once it is set.
    shutdown: ShutdownFlag,
    /// The reactor's view of the caller's fd (which it does not own).
    afd: AsyncFd<WatchedFd>,
    /// True while the registration may use the fd number. Every system call
    /// on the fd is made under this lock, after checking it; it turns false
    /// (for good) when the registration lets go of the number.
    fd_held: Mutex<bool>,
    /// Mirrors `!fd_held` (set under its lock) for the lock-free check
    /// before each call.
    fd_let_go: AtomicBool,
}

impl IoCtl {
    fn lock_fd(&self) -> MutexGuard<'_, bool> {
        self.fd_held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the fd off the reactor (`epoll_ctl` DEL) and lets go of its
    /// number, now: the caller may close the fd afterwards (closing it then
    /// closes the file), and no later call names the number. Idempotent.
    fn release_fd(&self) {
        let mut held = self.lock_fd();
        if self.let_go(&mut held) {
            let _ = self.afd.deregister_now();
        }
    }

    /// Marks the number let go of (`held` is this registration's fd lock);
    /// true if it was held until now.
    fn let_go(&self, held: &mut MutexGuard<'_, bool>) -> bool {
        self.fd_let_go.store(true, Ordering::Release);
        std::mem::replace(&mut **held, false)
    }

    /// Sets the reactor's interest to the current one (`epoll_ctl` MOD):
    /// the kernel checks the fd again and readiness it has now is reported
    /// at the next turn. `RT_ENOENT` once the fd is released; `-errno` if
    /// the kernel refuses.
    fn rearm(&self) -> Result<(), c_int> {
        let mut held = self.lock_fd();
        self.rearm_locked(&mut held)
    }

    /// `rearm` under the fd lock (`held`). `-EBADF` (the number is closed)
    /// or `-ENOENT` (it names a file the reactor does not know under it)
    /// mean that the caller closed the fd without a deregister: the
    /// registration lets go of the number (no system call names it again)
    /// and falls silent.
    fn rearm_locked(&self, held: &mut MutexGuard<'_, bool>) -> Result<(), c_int> {
        if !**held {
            return Err(RT_ENOENT);
        }
        let interest = to_interest(self.interest.load(Ordering::Acquire)).ok_or(RT_EINVAL)?;
        self.afd.reregister(interest).map_err(|e| {
            let code = from_io(&e);
            if (code == -libc::EBADF || code == -libc::ENOENT) && self.let_go(held) {
                self.afd.forget_closed();
            }
            code
        })
    }

    /// After a call: re-arms the level-triggered check and returns which
    /// of `acted_on` (readiness bits) the fd still has and must be kept.
    /// Normally none (the re-arm makes the kernel report what is still
    /// there); if the kernel refused the re-arm, a zero-timeout `poll(2)`
    /// decides. Nothing once the number is released (it may name another
    /// file by now).
    fn recheck(&self, acted_on: u32) -> u32 {
        let mut held = self.lock_fd();
        match self.rearm_locked(&mut held) {
            Ok(()) => 0,
            Err(_) if !*held => 0,
            Err(_) => poll_now(self.afd.as_raw_fd(), acted_on),
        }
    }

    /// True while the registration holds the fd number (lock-free: a let
    /// go that completed before this call is always seen).
    fn holds_fd(&self) -> bool {
        !self.fd_let_go.load(Ordering::Acquire)
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

/// The caller's fd number, for the reactor (neither owns it).
struct WatchedFd(RawFd);

impl AsRawFd for WatchedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

pub(crate) type IoRegistry = Registry<Arc<IoCtl>>;

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
        // Off the reactor first: the final call may close the fd.
        self.ctl.release_fd();
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
        // Once shutdown has begun (maybe by this very callback, the last
        // time round: its worker would go on running tasks until it notices)
        // the only call left is the final one.
        if ctl.shutdown.is_set() {
            return;
        }
        if !ctl.holds_fd() {
            // The caller closed the fd without a deregister (a re-arm failed
            // on it, or its number was registered again): readiness of the
            // old file (still open elsewhere) must not be reported under a
            // number that may name another file. Silent until the deregister
            // cancels this task or shutdown drops it.
            std::future::pending::<()>().await;
        }
        if !ctl.gate.begin() {
            return;
        }
        cb.call(fd, events, 0);
        if !ctl.gate.end() || ctl.shutdown.is_set() {
            return;
        }
        // Level-triggered: the kernel checks the fd again, so readiness it
        // still has comes back at the reactor's next turn; the readiness we
        // acted on is forgotten (unless an edge arrived meanwhile: the tick
        // check keeps that one). Without the re-arm, a `poll(2)` decides
        // which readiness is still there. Released meanwhile (deregistered):
        // the number may be reused already, nothing is asked.
        let acted_on = if rguard.is_some() { RT_READABLE } else { 0 }
            | if wguard.is_some() { RT_WRITABLE } else { 0 };
        let still = ctl.recheck(acted_on);
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
        let (Some(f), false, true, Some(reactor_interest)) =
            (cb, out.is_null(), fd >= 0, to_interest(interest))
        else {
            return RT_EINVAL;
        };
        let handle = match rt.handle() {
            Ok(h) => h,
            Err(e) => return e,
        };
        // A registration that still holds this number. The kernel decides
        // below: the same file is still registered (`-EEXIST`, the old one
        // stays), or the number names another file now (its fd was closed
        // without a deregister): then the old registration lets go of the
        // number, under its lock, so none of its later calls (a re-arm, its
        // deregister) can reach the new entry.
        let prev = rt.io().get_by_key(fd);
        let prev_held = prev.as_ref().map(|p| (p, p.lock_fd()));
        let afd = {
            let _enter = handle.enter();
            match AsyncFd::with_interest(WatchedFd(fd), reactor_interest) {
                Ok(afd) => afd,
                Err(e) => return from_io(&e),
            }
        };
        if let Some((prev, mut held)) = prev_held {
            if prev.let_go(&mut held) {
                prev.afd.forget_closed();
            }
        }
        let cb = Cb { f, arg };
        let ctl = Arc::new(IoCtl {
            gate: TaskGate::default(),
            interest: AtomicU32::new(interest),
            waker: Mutex::new(None),
            shutdown: rt.shutdown_flag(),
            afd,
            fd_held: Mutex::new(true),
            fd_let_go: AtomicBool::new(false),
        });
        let id = rt.io().insert(fd, ctl.clone());
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
        if to_interest(interest).is_none() {
            return RT_EINVAL;
        }
        if rt.is_shutdown() {
            return RT_ESHUTDOWN;
        }
        let Some(ctl) = rt.io().get(id) else {
            return gone_or_shutdown(rt, RT_ENOENT);
        };
        ctl.interest.store(interest, Ordering::Release);
        // The reactor watches the new interest; readiness the fd has for it
        // now is reported at its next turn. (Released by a racing shutdown's
        // final call: RT_ESHUTDOWN.)
        let status = match ctl.rearm() {
            Ok(()) => 0,
            Err(e) => gone_or_shutdown(rt, e),
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
        let rt = match unsafe { live_runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        // (A racing shutdown took the entry, or claimed its final call:
        // RT_ESHUTDOWN rather than RT_ENOENT.)
        match rt.io().remove(id) {
            Some(ctl) => {
                let stopped = ctl.gate.stop_and_cancel();
                if stopped != crate::calls::Stopped::Already {
                    // Off the reactor before we return: the caller may close
                    // its fd and see it closed.
                    ctl.release_fd();
                }
                gone_or_shutdown(rt, stopped.to_status())
            }
            None => gone_or_shutdown(rt, RT_ENOENT),
        }
    })
}
