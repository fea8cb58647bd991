//! Helpers of the `rt_core::callback` tests: closure callbacks, callbacks
//! for the kinds a test does not use, runtimes, socketpairs.

use rt_core::callback::{CallbackRuntime, Status, TimerCallback, WatchCallback};
use rt_core::runtime::Builder;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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

/// The body of a callback that takes a while, for a stop or close to
/// arrive during it; the test watches it through a [`SlowProbe`].
pub struct SlowCall {
    running: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    entered: Mutex<mpsc::Sender<()>>,
}

/// What a test sees of its [`SlowCall`].
pub struct SlowProbe {
    /// Set while a call runs.
    pub running: Arc<AtomicBool>,
    /// The calls made (with `Status::Ok`).
    pub calls: Arc<AtomicUsize>,
    /// A message as each call starts.
    pub entered: mpsc::Receiver<()>,
}

/// A [`SlowCall`] and its probe.
pub fn slow_call() -> (SlowCall, SlowProbe) {
    let (running, calls) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (entered_tx, entered) = mpsc::channel();
    let call = SlowCall {
        running: running.clone(),
        calls: calls.clone(),
        entered: Mutex::new(entered_tx),
    };
    let probe = SlowProbe {
        running,
        calls,
        entered,
    };
    (call, probe)
}

impl SlowCall {
    /// A call with `Status::Ok`: marks itself running, counts itself, says
    /// it entered, sleeps 50 ms, and is no longer running. Other statuses
    /// (the final call) return at once.
    pub fn call(&self, status: Status) {
        if status != Status::Ok {
            return;
        }
        self.running.store(true, SeqCst);
        self.calls.fetch_add(1, SeqCst);
        let _ = self.entered.lock().unwrap().send(());
        std::thread::sleep(Duration::from_millis(50));
        self.running.store(false, SeqCst);
    }
}
