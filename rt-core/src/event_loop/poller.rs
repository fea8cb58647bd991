//! The loop's own level-triggered epoll instance, its eventfd (the wake
//! channel of `call_soon_threadsafe` and `wake`) and precise waits.
//!
//! The instance can be [`reset`](Poller::reset): replaced, under the same
//! fd number, by a fresh one holding only the eventfd and the runtime's fd
//! (the reader / writer table then registers its live fds again). That is
//! how a registration the table can no longer reach (a "zombie": its fd
//! number was closed while the file stays open elsewhere, see `fds.rs`) is
//! dropped: `epoll_ctl` can only name a registration by an fd number that
//! still refers to its file.
//!
//! Waits use `epoll_pwait2` (Linux 5.11+, nanosecond timeout); where the
//! kernel (or a seccomp filter) refuses it with `ENOSYS`/`EPERM`, they fall
//! back to `epoll_wait` with the timeout rounded *up* to whole milliseconds,
//! so a timer is never woken for early.

use std::io;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

/// Token of the eventfd in the epoll set (never a valid fd).
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;
/// Token of the embedded runtime's backend fd.
pub(crate) const RUNTIME_TOKEN: u64 = u64::MAX - 1;

/// Events taken from the kernel per wait.
pub(crate) const MAX_EVENTS: usize = 256;

/// An epoll instance plus an eventfd registered in it.
#[derive(Debug)]
pub(crate) struct Poller {
    epoll: OwnedFd,
    eventfd: OwnedFd,
    /// `epoll_pwait2` was refused: use `epoll_wait`.
    no_pwait2: AtomicBool,
    /// The runtime's backend fd registered under [`RUNTIME_TOKEN`] (-1:
    /// none), kept for [`reset`](Poller::reset).
    runtime_fd: AtomicI32,
    /// Resets made so far, and their number at the start of the last wait.
    resets: AtomicU32,
    waited_at: AtomicU32,
    /// `epoll_ctl` calls made (tests count the syscalls of the fd table).
    #[cfg(test)]
    ctls: std::sync::atomic::AtomicUsize,
}

/// What one wait returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// This many events were stored.
    Events(usize),
    /// A signal interrupted the wait (`EINTR`): no events.
    Interrupted,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Poller {
    /// A new epoll instance with a non-blocking eventfd registered under
    /// [`WAKE_TOKEN`].
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain syscall with a flag argument; the result is checked.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` is a fresh fd that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        // SAFETY: plain syscall with flag arguments; the result is checked.
        let ev = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `ev` is a fresh fd that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(ev) };
        let poller = Poller {
            epoll,
            eventfd,
            no_pwait2: AtomicBool::new(false),
            runtime_fd: AtomicI32::new(-1),
            resets: AtomicU32::new(0),
            waited_at: AtomicU32::new(0),
            #[cfg(test)]
            ctls: Default::default(),
        };
        poller.ctl(
            libc::EPOLL_CTL_ADD,
            poller.eventfd.as_raw_fd(),
            libc::EPOLLIN as u32,
            WAKE_TOKEN,
        )?;
        Ok(poller)
    }

    /// Registers the embedded runtime's backend fd (readable: the runtime
    /// has work) under [`RUNTIME_TOKEN`]; [`reset`](Self::reset) keeps it.
    pub(crate) fn add_runtime(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, RUNTIME_TOKEN)?;
        self.runtime_fd.store(fd, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the epoll instance by a fresh one holding only the eventfd
    /// and the runtime's fd, under the same fd number (`dup3` swaps it
    /// atomically). Every other registration is gone afterwards: the caller
    /// registers its live fds again. On error the old instance stays.
    ///
    /// Call it on the loop's thread only, never during a [`wait`](Self::wait)
    /// (a wait in progress would go on with the old instance). A
    /// [`notify`](Self::notify) racing with it is not lost: the eventfd is
    /// in the new instance before the swap, and level-triggered.
    pub(crate) fn reset(&self) -> io::Result<()> {
        // SAFETY: plain syscall with a flag argument; the result is checked.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` is a fresh fd that nothing else owns; dropping it
        // closes it on every path below.
        let fresh = unsafe { OwnedFd::from_raw_fd(ep) };
        let add = |fd: RawFd, token: u64| {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: as in `ctl`, on the fresh instance.
            cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) })
        };
        add(self.eventfd.as_raw_fd(), WAKE_TOKEN)?;
        let rt = self.runtime_fd.load(Ordering::Relaxed);
        if rt >= 0 {
            add(rt, RUNTIME_TOKEN)?;
        }
        // SAFETY: both fds are open and ours; dup3 closes the old instance
        // and installs the fresh one under `self.epoll`'s number atomically,
        // so `self.epoll` keeps owning a valid fd (and `fresh`'s own
        // number is closed when it drops).
        cvt(unsafe { libc::dup3(fresh.as_raw_fd(), self.epoll.as_raw_fd(), libc::O_CLOEXEC) })?;
        self.resets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether [`reset`](Self::reset) replaced the instance since the last
    /// wait began: the events of that wait came from registrations that
    /// are gone.
    pub(crate) fn reset_since_wait(&self) -> bool {
        self.resets.load(Ordering::Relaxed) != self.waited_at.load(Ordering::Relaxed)
    }

    /// `epoll_ctl(op, fd)` with interest `events` (level-triggered) and
    /// user data `token`.
    pub(crate) fn ctl(
        &self,
        op: libc::c_int,
        fd: RawFd,
        events: u32,
        token: u64,
    ) -> io::Result<()> {
        #[cfg(test)]
        self.ctls.fetch_add(1, Ordering::Relaxed);
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the call (the kernel only
        // reads it; DEL ignores it); a bad `fd` is reported as an error.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Makes the eventfd readable (a pending wait returns). Safe from any
    /// thread.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. It can
        // only fail with EAGAIN when the counter is about to overflow, and
        // then the fd is readable anyway, which is all we want.
        let _ = unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Resets the eventfd (after it was reported readable).
    pub(crate) fn drain_notify(&self) {
        let mut buf: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; the fd is
        // non-blocking, so an empty counter gives EAGAIN, which is ignored.
        let _ = unsafe {
            libc::read(
                self.eventfd.as_raw_fd(),
                (&mut buf as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Waits for events for at most `timeout` (`None`: no limit; zero: a
    /// poll) and stores them in `events`.
    pub(crate) fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<Waited> {
        events.len = 0;
        self.waited_at
            .store(self.resets.load(Ordering::Relaxed), Ordering::Relaxed);
        let buf = &mut events.buf;
        // A poll needs no nanoseconds: `epoll_wait`'s 0 ms copies no
        // timespec in (a busy loop polls once per iteration).
        let rc = match timeout {
            Some(Duration::ZERO) => self.wait_epoll_wait(buf, timeout),
            _ => match self.wait_pwait2(buf, timeout) {
                Some(rc) => rc,
                None => self.wait_epoll_wait(buf, timeout),
            },
        };
        match rc {
            Ok(n) => {
                // The kernel wrote `n` (at most MAX_EVENTS) entries.
                events.len = (n as usize).min(MAX_EVENTS);
                Ok(Waited::Events(events.len))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(Waited::Interrupted),
            Err(e) => Err(e),
        }
    }

    /// `epoll_pwait2`, or `None` if the kernel refuses it (remembered).
    fn wait_pwait2(
        &self,
        events: &mut [MaybeUninit<libc::epoll_event>; MAX_EVENTS],
        timeout: Option<Duration>,
    ) -> Option<io::Result<libc::c_int>> {
        if self.no_pwait2.load(Ordering::Relaxed) {
            return None;
        }
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = match &ts {
            Some(ts) => ts as *const libc::timespec,
            None => std::ptr::null(),
        };
        // SAFETY: epoll_pwait2(epfd, events, maxevents, timeout, sigmask,
        // sigsetsize): `events` has room for MAX_EVENTS entries, `ts_ptr` is
        // null (no limit) or points to a timespec alive for the call, and a
        // null sigmask leaves the signal mask alone.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                self.epoll.as_raw_fd() as libc::c_long,
                events.as_mut_ptr().cast::<libc::epoll_event>(),
                MAX_EVENTS as libc::c_long,
                ts_ptr,
                std::ptr::null::<libc::sigset_t>(),
                0 as libc::c_long,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ENOSYS) | Some(libc::EPERM) => {
                    self.no_pwait2.store(true, Ordering::Relaxed);
                    return None;
                }
                _ => return Some(Err(err)),
            }
        }
        Some(Ok(rc as libc::c_int))
    }

    /// `epoll_wait` with the timeout rounded up to whole milliseconds.
    fn wait_epoll_wait(
        &self,
        events: &mut [MaybeUninit<libc::epoll_event>; MAX_EVENTS],
        timeout: Option<Duration>,
    ) -> io::Result<libc::c_int> {
        let ms = timeout_ms_ceil(timeout);
        // SAFETY: `events` has room for MAX_EVENTS entries for the call.
        cvt(unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr().cast::<libc::epoll_event>(),
                MAX_EVENTS as libc::c_int,
                ms,
            )
        })
    }

    /// `epoll_ctl` calls made so far (tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn ctl_calls(&self) -> usize {
        self.ctls.load(Ordering::Relaxed)
    }

    /// The kernel's registrations, as `(fd, interest)` sorted by fd, read
    /// from `/proc/self/fdinfo` (tests; the eventfd included).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn registered(&self) -> Vec<(RawFd, u32)> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.epoll.as_raw_fd()))
            .unwrap();
        let mut out = Vec::new();
        for line in info.lines().filter(|l| l.starts_with("tfd:")) {
            let mut words = line.split_whitespace();
            let (mut fd, mut events) = (None, None);
            while let Some(w) = words.next() {
                match w {
                    "tfd:" => fd = words.next().and_then(|v| v.parse().ok()),
                    "events:" => {
                        events = words.next().and_then(|v| u32::from_str_radix(v, 16).ok())
                    }
                    _ => {}
                }
            }
            out.push((fd.unwrap(), events.unwrap()));
        }
        out.sort_unstable();
        out
    }

    /// Forces the `epoll_wait` fallback (tests).
    #[cfg(test)]
    pub(crate) fn force_fallback(&self) {
        self.no_pwait2.store(true, Ordering::Relaxed);
    }
}

/// A timeout in whole milliseconds for `epoll_wait`, rounded up (never
/// early); `-1` for no limit; capped at `i32::MAX`.
pub(crate) fn timeout_ms_ceil(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// The events buffer of [`Poller::wait`]: room for [`MAX_EVENTS`], left
/// uninitialised (the loop makes one per iteration: no 3 KiB memset); it
/// derefs to the events the last wait stored.
pub(crate) struct Events {
    buf: [MaybeUninit<libc::epoll_event>; MAX_EVENTS],
    /// How many entries of `buf` the kernel wrote in the last wait.
    len: usize,
}

impl Deref for Events {
    type Target = [libc::epoll_event];

    fn deref(&self) -> &[libc::epoll_event] {
        // SAFETY: the first `len` entries were written by the kernel in the
        // last wait (`len` is 0 before one, and never above MAX_EVENTS).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast(), self.len) }
    }
}

/// An events buffer for [`Poller::wait`].
pub(crate) fn events_buf() -> Events {
    Events {
        // SAFETY: an array of `MaybeUninit` needs no initialisation (the
        // idiom of `MaybeUninit`'s documentation); `[MaybeUninit::uninit();
        // N]` was compiled to a memset of the 3 KiB.
        buf: unsafe {
            MaybeUninit::<[MaybeUninit<libc::epoll_event>; MAX_EVENTS]>::uninit().assume_init()
        },
        len: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn rounds_up_to_ms() {
        assert_eq!(timeout_ms_ceil(None), -1);
        assert_eq!(timeout_ms_ceil(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms_ceil(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms_ceil(Some(Duration::from_micros(1_500))), 2);
        assert_eq!(timeout_ms_ceil(Some(Duration::from_millis(3))), 3);
        assert_eq!(
            timeout_ms_ceil(Some(Duration::from_secs(u64::MAX))),
            i32::MAX
        );
    }

    fn check_wait(p: &Poller) {
        let mut ev = events_buf();
        assert_eq!(
            p.wait(&mut ev, Some(Duration::ZERO)).unwrap(),
            Waited::Events(0)
        );
        let t = Instant::now();
        assert_eq!(
            p.wait(&mut ev, Some(Duration::from_micros(1_500))).unwrap(),
            Waited::Events(0)
        );
        assert!(t.elapsed() >= Duration::from_micros(1_500));
        p.notify();
        p.notify();
        assert_eq!(p.wait(&mut ev, None).unwrap(), Waited::Events(1));
        assert_eq!({ ev[0].u64 }, WAKE_TOKEN);
        p.drain_notify();
        assert_eq!(
            p.wait(&mut ev, Some(Duration::ZERO)).unwrap(),
            Waited::Events(0)
        );
    }

    #[test]
    fn waits_and_wakes() {
        check_wait(&Poller::new().unwrap());
    }

    #[test]
    fn fallback_waits_and_wakes() {
        let p = Poller::new().unwrap();
        p.force_fallback();
        check_wait(&p);
    }
}
