//! A `timerfd` in the reactor's epoll set.
//!
//! A host that waits in its own `poll`/`epoll` on the reactor's epoll fd
//! (`Handle::backend_fd`) must also wake when the next timer is due. The
//! runtime arms this timer to the wheel's next deadline each time the host
//! gets control back; its expiry makes the epoll fd readable. The driver
//! ignores its events (the time driver fires timers from the clock, not
//! from this fd), and re-arming resets it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A monotonic, non-blocking timerfd.
#[derive(Debug)]
pub(crate) struct HostTimer {
    fd: OwnedFd,
}

impl HostTimer {
    /// Creates a disarmed timer.
    pub(crate) fn new() -> io::Result<HostTimer> {
        // SAFETY: plain syscall with constant, valid flags.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by timerfd_create and is owned by
        // nothing else.
        Ok(HostTimer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Arms the timer to expire `after` from now (zero: at once), or
    /// disarms it (`None`).
    pub(crate) fn arm(&self, after: Option<Duration>) {
        let value = match after {
            // An all-zero it_value would disarm: expire after 1 ns instead.
            Some(d) => libc::timespec {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(d.subsec_nanos().max(u32::from(d.is_zero()))),
            },
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: `fd` is an open timerfd owned by `self`; `spec` is a valid
        // itimerspec on the stack; a NULL old_value is allowed. Failure
        // (only EINVAL for out-of-range values, excluded above) leaves the
        // old setting: at worst an early, spurious wakeup of the host.
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn readable(fd: RawFd, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    }

    #[test]
    fn arm_expire_rearm_disarm() {
        let t = HostTimer::new().unwrap();
        assert!(!readable(t.raw_fd(), 0));
        t.arm(Some(Duration::from_millis(5)));
        assert!(!readable(t.raw_fd(), 0));
        assert!(readable(t.raw_fd(), 1000));
        // Re-arming resets the expiration count.
        t.arm(Some(Duration::from_secs(60)));
        assert!(!readable(t.raw_fd(), 0));
        t.arm(Some(Duration::ZERO));
        assert!(readable(t.raw_fd(), 1000));
        t.arm(None);
        assert!(!readable(t.raw_fd(), 20));
    }
}
