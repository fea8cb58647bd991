//! Helpers of the `rt_core::callback` tests: closure callbacks, callbacks
//! for the kinds a test does not use, runtimes, socketpairs.

use rt_core::callback::{CallbackRuntime, Status, TimerCallback, WatchCallback};
use rt_core::runtime::Builder;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A timer callback: a shared closure (cheap to clone, as Python's).
#[derive(Clone)]
pub struct Timer(Arc<dyn Fn(Status) + Send + Sync>);

impl TimerCallback for Timer {
    fn call(&self, status: Status) {
        (self.0)(status)
    }
}

/// A [`Timer`] calling `f`.
pub fn timer(f: impl Fn(Status) + Send + Sync + 'static) -> Timer {
    Timer(Arc::new(f))
}

/// A watch callback: a closure.
pub struct Watch(Box<dyn Fn(RawFd, u32, Status) + Send + Sync>);

impl WatchCallback for Watch {
    fn call(&self, fd: RawFd, events: u32, status: Status) {
        (self.0)(fd, events, status)
    }
}

/// A [`Watch`] calling `f`.
pub fn watch(f: impl Fn(RawFd, u32, Status) + Send + Sync + 'static) -> Watch {
    Watch(Box::new(f))
}

/// The timer callback of tests without timers.
#[derive(Clone)]
pub struct NoTimer;

impl TimerCallback for NoTimer {
    fn call(&self, _: Status) {}
}

/// The watch callback of tests without watches.
pub struct NoWatch;

impl WatchCallback for NoWatch {
    fn call(&self, _: RawFd, _: u32, _: Status) {}
}

/// A callback runtime over a current-thread runtime with every driver.
pub fn current_thread<T: TimerCallback, W: WatchCallback>() -> CallbackRuntime<T, W> {
    CallbackRuntime::new(Builder::new_current_thread().enable_all().build().unwrap())
}

/// A callback runtime over a multi-thread runtime of `workers` workers
/// with every driver.
pub fn multi_thread<T: TimerCallback, W: WatchCallback>(workers: usize) -> CallbackRuntime<T, W> {
    CallbackRuntime::new(
        Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap(),
    )
}

/// A non-blocking stream socketpair.
pub fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: both were just created and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}
