//! `rt_core::callback` with callbacks that panic (a Rust caller's bug, or a
//! binding's wrapper that let a panic through): the panic hook reports the
//! panic, and the layer's state stays as if the call had returned. A timer
//! slot is never left "running" (a stop would wait for it forever, the
//! shutdown would skip its final call), a watch's gate is never left
//! "running", a task handle always ends finished, and one callback's panic
//! never cancels another's calls. Also: a callback's `Drop` may use the
//! runtime (it never runs under one of the layer's locks).

use rt_core::callback::{CallbackRuntime, Status, Stopped, TimerCallback, WatchCallback, READABLE};
use rt_core::runtime::{Builder, RunMode};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// A timer callback: a shared closure, and an optional hook its last clone
/// runs when dropped.
#[derive(Clone)]
struct Timer {
    f: Arc<dyn Fn(Status) + Send + Sync>,
    _on_drop: Option<Arc<OnDrop>>,
}

impl TimerCallback for Timer {
    fn call(&self, status: Status) {
        (self.f)(status)
    }
}

/// Runs its closure when dropped.
struct OnDrop(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.lock().unwrap().take() {
            f()
        }
    }
}

fn timer(f: impl Fn(Status) + Send + Sync + 'static) -> Timer {
    Timer {
        f: Arc::new(f),
        _on_drop: None,
    }
}

/// A watch callback: a closure.
struct Watch(Box<dyn Fn(RawFd, u32, Status) + Send + Sync>);

impl WatchCallback for Watch {
    fn call(&self, fd: RawFd, events: u32, status: Status) {
        (self.0)(fd, events, status)
    }
}

type Rt = CallbackRuntime<Timer, Watch>;

fn multi_thread() -> Rt {
    CallbackRuntime::new(
        Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    )
}

fn current_thread() -> Rt {
    CallbackRuntime::new(Builder::new_current_thread().enable_all().build().unwrap())
}

/// Waits up to 10 s for `cond`.
fn wait_for(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Runs `f` on another thread; its result, or `None` if it did not return
/// within 10 s (it hangs: the thread is left behind).
fn within<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10)).ok()
}

/// Counts the calls of each status.
#[derive(Default)]
struct Calls {
    ok: AtomicUsize,
    cancelled: AtomicUsize,
}

impl Calls {
    fn count(&self, status: Status) -> usize {
        match status {
            Status::Ok => self.ok.fetch_add(1, SeqCst),
            Status::Cancelled => self.cancelled.fetch_add(1, SeqCst),
        }
    }
    fn ok(&self) -> usize {
        self.ok.load(SeqCst)
    }
    fn cancelled(&self) -> usize {
        self.cancelled.load(SeqCst)
    }
}

/// Shuts `rt` down (within 10 s), and checks that the one callback counted
/// in `calls` got exactly one final call.
fn shutdown_makes_one_final_call(rt: Rt, calls: &Calls) {
    assert!(within(move || rt.shutdown(Some(Duration::from_secs(10))).is_ok()).unwrap());
    assert_eq!(calls.cancelled(), 1, "exactly one final call");
}

#[test]
fn a_repeat_whose_call_panicked_keeps_its_schedule_and_can_be_stopped() {
    let rt = Arc::new(multi_thread());
    let calls = Arc::new(Calls::default());
    let c = calls.clone();
    let cb = timer(move |s| {
        if c.count(s) == 0 && s == Status::Ok {
            panic!("the first call of a repeat panics (expected in this test)");
        }
    });
    let id = rt
        .timer_start(Duration::ZERO, Some(Duration::from_millis(2)), cb)
        .unwrap();
    assert!(
        wait_for(|| calls.ok() >= 3),
        "the repeat stopped after its panicking call ({} calls)",
        calls.ok()
    );
    // The stop waits for a running call: its slot must not be stuck
    // "running" by the panic.
    let r = rt.clone();
    let stopped = within(move || r.timer_stop(id).map_err(|e| e.to_string()));
    assert_eq!(stopped, Some(Ok(Stopped::Done)), "the stop hung or failed");
    let after = calls.ok();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.ok(), after, "called after a successful stop");
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(calls.cancelled(), 0, "a stopped timer gets no final call");
}

#[test]
fn a_repeat_that_always_panics_gets_its_one_final_call_at_shutdown() {
    let rt = multi_thread();
    let calls = Arc::new(Calls::default());
    let c = calls.clone();
    let cb = timer(move |s| {
        c.count(s);
        if s == Status::Ok {
            panic!("every call of this repeat panics (expected in this test)");
        }
    });
    rt.timer_start(Duration::ZERO, Some(Duration::from_millis(3)), cb)
        .unwrap();
    assert!(
        wait_for(|| calls.ok() >= 2),
        "the repeat stopped after a panic"
    );
    shutdown_makes_one_final_call(rt, &calls);
}

#[test]
fn a_panicking_timer_on_a_current_thread_runtime_cancels_no_other_call() {
    let rt = current_thread();
    let log = Arc::new(Mutex::new(Vec::new()));
    // Both due in the same millisecond: queued for the one caller task,
    // the panicking one first.
    let l = log.clone();
    let a = timer(move |s| {
        l.lock().unwrap().push(("a", s));
        if s == Status::Ok {
            panic!("timer a panics (expected in this test)");
        }
    });
    let l = log.clone();
    let b = timer(move |s| l.lock().unwrap().push(("b", s)));
    let l = log.clone();
    let repeat = timer(move |s| l.lock().unwrap().push(("r", s)));
    let delay = Duration::from_millis(5);
    rt.timer_start(delay, None, a).unwrap();
    rt.timer_start(delay, None, b).unwrap();
    let r = rt
        .timer_start(delay, Some(Duration::from_secs(3600)), repeat)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < 3 && Instant::now() < deadline {
        rt.run(RunMode::Once).unwrap();
    }
    assert_eq!(
        *log.lock().unwrap(),
        vec![("a", Status::Ok), ("b", Status::Ok), ("r", Status::Ok)],
        "a panic in one timer's call cancelled the calls queued after it"
    );
    assert!(rt.timer_deadline(r).is_some(), "the repeat is still armed");
    assert_eq!(rt.timer_stop(r).unwrap(), Stopped::Done);
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0);
    // SAFETY: both were just created and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A pipe with a byte to read: (read end, write end).
fn readable_pipe() -> (OwnedFd, OwnedFd) {
    let (rx, tx) = pipe();
    // SAFETY: one valid byte.
    assert_eq!(
        unsafe { libc::write(tx.as_raw_fd(), b"x".as_ptr().cast(), 1) },
        1
    );
    (rx, tx)
}

#[test]
fn a_watch_whose_call_panicked_keeps_watching_and_closes() {
    let rt = Arc::new(multi_thread());
    let (rx, _tx) = readable_pipe();
    let calls = Arc::new(Calls::default());
    let c = calls.clone();
    // Leaves the byte unread: level-triggered, it is called again.
    let cb = Watch(Box::new(move |_, _, s| {
        if c.count(s) == 0 && s == Status::Ok {
            panic!("the first call of a watch panics (expected in this test)");
        }
    }));
    let id = rt.watch(rx.as_raw_fd(), READABLE, cb).unwrap();
    assert!(
        wait_for(|| calls.ok() >= 3 || calls.cancelled() > 0),
        "no call after the panic"
    );
    assert_eq!(
        (calls.ok() >= 3, calls.cancelled()),
        (true, 0),
        "the panic ended the watch"
    );
    // Its gate must not be stuck "running".
    let r = rt.clone();
    let closed = within(move || r.watch_close(id).map_err(|e| e.to_string()));
    assert_eq!(closed, Some(Ok(Stopped::Done)));
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(calls.cancelled(), 0, "a closed watch gets no final call");
}

#[test]
fn a_watch_whose_final_call_panics_ends_cleanly() {
    let rt = multi_thread();
    let (rx, _tx) = pipe();
    let calls = Arc::new(Calls::default());
    let c = calls.clone();
    let cb = Watch(Box::new(move |_, _, s| {
        c.count(s);
        if s == Status::Cancelled {
            panic!("the final call panics (expected in this test)");
        }
    }));
    rt.watch(rx.as_raw_fd(), READABLE, cb).unwrap();
    assert!(within(move || rt.shutdown(Some(Duration::from_secs(10))).is_ok()).unwrap());
    assert_eq!(calls.cancelled(), 1);
}

#[test]
fn a_task_whose_final_call_panics_still_ends_finished() {
    // Never driven: the shutdown drops the task, making the final call.
    let rt = current_thread();
    let cb = |s: Status| {
        if s == Status::Cancelled {
            panic!("the final call panics (expected in this test)");
        }
    };
    let task = rt.spawn(cb, true).unwrap().unwrap();
    let _ = rt.shutdown(Some(Duration::from_secs(10)));
    assert!(task.is_finished(), "the task never finished");
    assert!(task.join(Some(Duration::from_secs(1))).is_ok());
}

#[test]
fn a_timers_callback_dropped_by_a_stop_may_use_the_runtime() {
    let rt = Arc::new(current_thread());
    let other = rt
        .timer_start(Duration::from_secs(3600), None, timer(|_| {}))
        .unwrap();
    // The callback's last clone, dropped by the stop, asks the runtime
    // about another timer (as a binding's callback object may, when it is
    // collected).
    let weak: Arc<OnceLock<Weak<Rt>>> = Arc::new(OnceLock::new());
    let w = weak.clone();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let hook = OnDrop(Mutex::new(Some(Box::new(move || {
        let rt = w.get().and_then(Weak::upgrade);
        *s.lock().unwrap() = Some(rt.map(|rt| rt.timer_deadline(other).is_some()));
    }))));
    let cb = Timer {
        f: Arc::new(|_| {}),
        _on_drop: Some(Arc::new(hook)),
    };
    let id = rt.timer_start(Duration::from_secs(3600), None, cb).unwrap();
    weak.set(Arc::downgrade(&rt)).ok().unwrap();
    let r = rt.clone();
    let stopped = within(move || r.timer_stop(id).map_err(|e| e.to_string()));
    assert_eq!(stopped, Some(Ok(Stopped::Done)), "the stop deadlocked");
    assert_eq!(*seen.lock().unwrap(), Some(Some(true)));
}

#[test]
fn a_watch_whose_every_call_panics_never_aborts_the_process() {
    let rt = multi_thread();
    let (rx, _tx) = readable_pipe();
    let calls = Arc::new(Calls::default());
    let c = calls.clone();
    let cb = Watch(Box::new(move |_, _, s| {
        c.count(s);
        panic!("every call panics, the final one too (expected in this test)");
    }));
    rt.watch(rx.as_raw_fd(), READABLE, cb).unwrap();
    assert!(wait_for(|| calls.ok() >= 2), "no call after the panic");
    shutdown_makes_one_final_call(rt, &calls);
}

#[test]
fn blocking_work_that_panics_gets_done_cancelled_outside_the_unwind() {
    let rt = multi_thread();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    // `done` panics too: made during the work's unwind, that second panic
    // would abort the process.
    let done = move |s: Status| {
        l.lock().unwrap().push(s);
        panic!("done panics (expected in this test)");
    };
    let task = rt
        .spawn_blocking(|| panic!("the work panics (expected in this test)"), done)
        .unwrap();
    assert!(task.join(Some(Duration::from_secs(10))).is_ok());
    assert_eq!(*log.lock().unwrap(), vec![Status::Cancelled]);
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}
