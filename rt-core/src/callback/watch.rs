//! Level-triggered fd watches on the reactor: [`CallbackRuntime::watch`],
//! [`watch_modify`](super::CallbackRuntime::watch_modify),
//! [`watch_close`](super::CallbackRuntime::watch_close) (the C API's
//! `rt_io_register` / `rt_io_modify` / `rt_io_deregister`).
//!
//! The reactor is edge-triggered underneath; watches are level-triggered:
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
//! before `watch_close` returns and before the final `Cancelled` call: the
//! caller may close the fd then, and the number may be reused.
//!
//! epoll names an fd by number and file, so an operation on a number that
//! now names another file cannot reach the old entry, and reaches another
//! entry only if that file is registered under the same number in the same
//! runtime. The registry's index by fd number catches that case: when a
//! number still held by a registration is registered again and the kernel
//! accepts it (the old file was closed without a deregister, which the
//! contract forbids), the old registration lets go of the number without
//! a system call and falls silent.

use super::gate::{ShutdownFlag, Stopped, TaskGate};
use super::marks::call_contained;
use super::registry::Registry;
use super::{Error, Status, WatchCallback, WatchId, ERROR, HUP, READABLE, WRITABLE};
use crate::io::{AsyncFd, Interest};
use crate::runtime::Handle;
use std::fmt;
use std::future::poll_fn;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// One watch: its gate, interest, callback and the reactor's view of the fd.
struct IoCtl<W: WatchCallback> {
    gate: TaskGate,
    /// The callback (the task and the final call share it through the
    /// `Arc<IoCtl>`: no allocation of its own).
    cb: W,
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

impl<W: WatchCallback> IoCtl<W> {
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
    /// at the next turn. `NotFound` once the fd is released; `Os` if the
    /// kernel refuses.
    fn rearm(&self) -> Result<(), Error> {
        let mut held = self.lock_fd();
        self.rearm_locked(&mut held)
    }

    /// `rearm` under the fd lock (`held`). `EBADF` (the number is closed)
    /// or `ENOENT` (it names a file the reactor does not know under it)
    /// mean that the caller closed the fd without a deregister: the
    /// registration lets go of the number (no system call names it again)
    /// and falls silent.
    fn rearm_locked(&self, held: &mut MutexGuard<'_, bool>) -> Result<(), Error> {
        if !**held {
            return Err(Error::NotFound);
        }
        let interest =
            to_interest(self.interest.load(Ordering::Acquire)).ok_or(Error::InvalidInput)?;
        self.afd.reregister(interest).map_err(|e| {
            let closed = matches!(e.raw_os_error(), Some(libc::EBADF | libc::ENOENT));
            if closed && self.let_go(held) {
                self.afd.forget_closed();
            }
            Error::from(e)
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

    /// Keeps the task's waker for `watch_modify`, which wakes it in place
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

impl<W: WatchCallback> IoCtl<W> {
    /// Makes one call, marked as a runtime callback. A call that panics
    /// counts as returned (see `call_contained`): its gate is ended and the
    /// watch goes on; no final call is made during an unwind.
    fn call(&self, fd: RawFd, events: u32, status: Status) {
        call_contained(|| self.cb.call(fd, events, status))
    }
}

/// The final `Cancelled` call of a watch still active when its task is
/// dropped (runtime shutdown).
struct FinalCall<W: WatchCallback> {
    ctl: Arc<IoCtl<W>>,
    fd: RawFd,
}

impl<W: WatchCallback> Drop for FinalCall<W> {
    fn drop(&mut self) {
        // Off the reactor first: the final call may close the fd.
        self.ctl.release_fd();
        if self.ctl.gate.begin_final() {
            self.ctl.call(self.fd, 0, Status::Cancelled);
            self.ctl.gate.end();
        }
    }
}

fn to_interest(bits: u32) -> Option<Interest> {
    match (bits & READABLE != 0, bits & WRITABLE != 0) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

/// Level-triggered check: which of `interest` the fd reports now.
fn poll_now(fd: RawFd, interest: u32) -> u32 {
    let mut events: libc::c_short = 0;
    if interest & READABLE != 0 {
        events |= libc::POLLIN;
    }
    if interest & WRITABLE != 0 {
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
        out |= READABLE;
    }
    if pfd.revents & libc::POLLOUT != 0 {
        out |= WRITABLE;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0 {
        out |= HUP;
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        out |= ERROR;
    }
    out
}

/// The task of one watch: waits for readiness in the current interest,
/// makes the call, then re-arms the level-triggered check.
async fn serve<W: WatchCallback>(ctl: Arc<IoCtl<W>>, fd: RawFd, final_call: FinalCall<W>) {
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
            if want & READABLE != 0 {
                match ctl.afd.poll_read_ready(cx) {
                    Poll::Ready(Ok(g)) => {
                        got |= READABLE | hup_err(g.ready().is_read_closed(), g.ready());
                        rguard = Some(g);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            if want & WRITABLE != 0 {
                match ctl.afd.poll_write_ready(cx) {
                    Poll::Ready(Ok(g)) => {
                        got |= WRITABLE | hup_err(g.ready().is_write_closed(), g.ready());
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
            // (close) cancels this task or shutdown drops it.
            std::future::pending::<()>().await;
        }
        if !ctl.gate.begin() {
            return;
        }
        ctl.call(fd, events, Status::Ok);
        if !ctl.gate.end() || ctl.shutdown.is_set() {
            return;
        }
        // Level-triggered: the kernel checks the fd again, so readiness it
        // still has comes back at the reactor's next turn; the readiness we
        // acted on is forgotten (unless an edge arrived meanwhile: the tick
        // check keeps that one). Without the re-arm, a `poll(2)` decides
        // which readiness is still there. Released meanwhile (deregistered):
        // the number may be reused already, nothing is asked.
        let acted_on = if rguard.is_some() { READABLE } else { 0 }
            | if wguard.is_some() { WRITABLE } else { 0 };
        let still = ctl.recheck(acted_on);
        if still & READABLE == 0 {
            if let Some(g) = rguard.as_mut() {
                g.clear_ready();
            }
        }
        if still & WRITABLE == 0 {
            if let Some(g) = wguard.as_mut() {
                g.clear_ready();
            }
        }
        called = true;
    }
}

/// `HUP` / `ERROR` for a direction's readiness.
fn hup_err(closed: bool, ready: crate::io::Ready) -> u32 {
    (if closed { HUP } else { 0 }) | if ready.is_error() { ERROR } else { 0 }
}

/// A runtime's fd watches: generational ids, and an index by fd number.
pub(crate) struct Watches<W: WatchCallback> {
    registry: Registry<Arc<IoCtl<W>>>,
}

impl<W: WatchCallback> fmt::Debug for Watches<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watches").finish_non_exhaustive()
    }
}

impl<W: WatchCallback> Default for Watches<W> {
    fn default() -> Self {
        Watches {
            registry: Registry::new(),
        }
    }
}

impl<W: WatchCallback> Watches<W> {
    /// Watches `fd` on `handle`'s reactor (see
    /// [`CallbackRuntime::watch`](super::CallbackRuntime::watch)); `on_id`
    /// gets the id before the watch's task exists (its first call may use
    /// the id). The caller checked the input (a non-negative fd, an
    /// interest with `READABLE` / `WRITABLE`) and that the runtime is not
    /// shut down.
    pub(crate) fn watch(
        &self,
        handle: &Handle,
        shutdown: ShutdownFlag,
        fd: RawFd,
        interest: u32,
        cb: W,
        on_id: impl FnOnce(WatchId),
    ) -> Result<WatchId, Error> {
        let reactor_interest = to_interest(interest).ok_or(Error::InvalidInput)?;
        // A watch that still holds this number. The kernel decides below:
        // the same file is still registered (`EEXIST`, the old one stays),
        // or the number names another file now (its fd was closed without a
        // close of the watch): then the old watch lets go of the number,
        // under its lock, so none of its later calls (a re-arm, its close)
        // can reach the new entry.
        let prev = self.registry.get_by_key(fd);
        let prev_held = prev.as_ref().map(|p| (p, p.lock_fd()));
        let afd = {
            let _enter = handle.enter();
            AsyncFd::with_interest(WatchedFd(fd), reactor_interest)?
        };
        if let Some((prev, mut held)) = prev_held {
            if prev.let_go(&mut held) {
                prev.afd.forget_closed();
            }
        }
        let ctl = Arc::new(IoCtl {
            gate: TaskGate::default(),
            cb,
            interest: AtomicU32::new(interest),
            waker: Mutex::new(None),
            shutdown,
            afd,
            fd_held: Mutex::new(true),
            fd_let_go: AtomicBool::new(false),
        });
        let id = self.registry.insert(fd, ctl.clone());
        // Before the task exists: its first callback may use the id.
        on_id(id);
        // Built outside the future: a task dropped before its first poll
        // (shutdown right away) still makes the final call.
        let final_call = FinalCall {
            ctl: ctl.clone(),
            fd,
        };
        let join = handle.spawn(serve(ctl.clone(), fd, final_call));
        // (A shutdown racing with this call drops the task at once: the
        // watch then got its final Cancelled call; a success.)
        ctl.gate.set_task(join.abort_handle());
        Ok(id)
    }

    /// Changes watch `id`'s interest (see
    /// [`CallbackRuntime::watch_modify`](super::CallbackRuntime::watch_modify));
    /// the caller checked that `interest` has `READABLE` / `WRITABLE`.
    pub(crate) fn modify(&self, id: WatchId, interest: u32) -> Result<(), Error> {
        let ctl = self.registry.get(id).ok_or(Error::NotFound)?;
        ctl.interest.store(interest, Ordering::Release);
        // The reactor watches the new interest; readiness the fd has for it
        // now is reported at its next turn.
        let status = ctl.rearm();
        let waker = ctl.waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = waker {
            w.wake();
        }
        status
    }

    /// Closes watch `id` (see
    /// [`CallbackRuntime::watch_close`](super::CallbackRuntime::watch_close)).
    pub(crate) fn close(&self, id: WatchId) -> Result<Stopped, Error> {
        let ctl = self.registry.remove(id).ok_or(Error::NotFound)?;
        let stopped = ctl.gate.stop_and_cancel().ok_or(Error::NotFound)?;
        // Off the reactor before we return: the caller may close its fd and
        // see it closed.
        ctl.release_fd();
        Ok(stopped)
    }

    /// Forgets every watch (shutdown: their tasks are dropped with the
    /// runtime, which makes their final calls).
    pub(crate) fn clear(&self) {
        drop(self.registry.drain());
    }
}
