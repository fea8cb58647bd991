//! `rt_core::callback` fd watches with closure callbacks, on socketpairs:
//! level-triggered calls, HUP, interest changes, the close guarantee, one
//! watch per fd, the final call at shutdown.

mod support;

use rt_core::callback::{
    CallbackRuntime, Error, Status, Stopped, WatchId, HUP, READABLE, WRITABLE,
};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use support::callback::{self, slow_call, socketpair, watch, NoTimer, Watch};

type Rt = CallbackRuntime<NoTimer, Watch>;

fn runtime() -> Rt {
    callback::multi_thread(2)
}

fn write(fd: &OwnedFd, data: &[u8]) {
    // SAFETY: a valid buffer of `data.len()` bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    assert_eq!(n, data.len() as isize);
}

/// Reads at most `max` bytes from `fd`; how many were read (0 at EOF or
/// when nothing is there).
fn read(fd: RawFd, max: usize) -> usize {
    let mut buf = [0u8; 64];
    // SAFETY: a valid buffer of at least `max` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), max.min(buf.len())) };
    n.max(0) as usize
}

/// Watches `fd` for `interest`; each call sends what `f` makes of it to the
/// receiver returned with the watch's id.
fn watch_calls<T: Send + 'static>(
    rt: &Rt,
    fd: RawFd,
    interest: u32,
    f: impl Fn(RawFd, u32, Status) -> T + Send + Sync + 'static,
) -> (WatchId, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let id = rt
        .watch(
            fd,
            interest,
            watch(move |fd, events, status| {
                let _ = tx.lock().unwrap().send(f(fd, events, status));
            }),
        )
        .unwrap();
    (id, rx)
}

#[test]
fn readiness_left_unread_is_reported_again_level_triggered() {
    let rt = runtime();
    let (a, b) = socketpair();
    let (id, rx) = watch_calls(&rt, a.as_raw_fd(), READABLE, |fd, events, status| {
        // One byte per call: the rest stays readable.
        let n = if status == Status::Ok { read(fd, 1) } else { 0 };
        (events, status, n)
    });
    write(&b, b"xyz");
    for _ in 0..3 {
        let (events, status, n) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(status, Status::Ok);
        assert_ne!(events & READABLE, 0);
        assert_eq!(n, 1);
    }
    // All read: no further call while nothing arrives.
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    // New data: called again.
    write(&b, b"!");
    let (events, _, n) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_ne!(events & READABLE, 0);
    assert_eq!(n, 1);
    // The peer hangs up: READABLE | HUP.
    drop(b);
    let (events, status, _) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(status, Status::Ok);
    assert_eq!(events & (READABLE | HUP), READABLE | HUP);
    assert_eq!(rt.watch_close(id).unwrap(), Stopped::Done);
    // Drain what was sent before the close: nothing after it, not even a
    // final call.
    while rx.try_recv().is_ok() {}
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
    assert!(rx.try_recv().is_err(), "a closed watch got a final call");
}

#[test]
fn modify_changes_the_interest() {
    let rt = runtime();
    let (a, _b) = socketpair();
    // Nothing to read: a READABLE watch stays silent.
    let (id, rx) = watch_calls(&rt, a.as_raw_fd(), READABLE, |_, events, status| {
        (events, status)
    });
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    // A socket is writable: level-triggered, reported (again and again).
    rt.watch_modify(id, WRITABLE).unwrap();
    let (events, status) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((events & WRITABLE, status), (WRITABLE, Status::Ok));
    let (events, _) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(events & WRITABLE, WRITABLE, "level-triggered: again");
    assert!(matches!(rt.watch_modify(id, 0), Err(Error::InvalidInput)));
    assert_eq!(rt.watch_close(id).unwrap(), Stopped::Done);
    assert!(matches!(
        rt.watch_modify(id, READABLE),
        Err(Error::NotFound)
    ));
    assert!(matches!(rt.watch_close(id), Err(Error::NotFound)));
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn close_waits_for_a_running_call_and_no_call_follows() {
    let rt = runtime();
    let (a, b) = socketpair();
    // Leaves the data unread (called again and again) and takes long
    // enough for the close to arrive during the call.
    let (slow, probe) = slow_call();
    let id = rt
        .watch(
            a.as_raw_fd(),
            READABLE,
            watch(move |_, _, status| slow.call(status)),
        )
        .unwrap();
    write(&b, b"x");
    probe.entered.recv_timeout(Duration::from_secs(10)).unwrap();
    let before = Instant::now();
    assert_eq!(rt.watch_close(id).unwrap(), Stopped::Done);
    assert!(!probe.running.load(SeqCst), "closed while the callback ran");
    assert!(
        before.elapsed() >= Duration::from_millis(10),
        "the close did not wait"
    );
    let n = probe.calls.load(SeqCst);
    // The fd is ours again: closing it is fine, and no call follows.
    drop(a);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        probe.calls.load(SeqCst),
        n,
        "called after a successful close"
    );
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn one_watch_per_fd_and_bad_input() {
    let rt = runtime();
    let (a, _b) = socketpair();
    let id = rt
        .watch(a.as_raw_fd(), READABLE, watch(|_, _, _| {}))
        .unwrap();
    match rt.watch(a.as_raw_fd(), WRITABLE, watch(|_, _, _| panic!("called"))) {
        Err(Error::Os(e)) => assert_eq!(e.raw_os_error(), Some(libc::EEXIST)),
        other => panic!("a second watch of one fd: {other:?}"),
    }
    assert!(matches!(
        rt.watch(-1, READABLE, watch(|_, _, _| {})),
        Err(Error::InvalidInput)
    ));
    assert!(matches!(
        rt.watch(a.as_raw_fd(), HUP, watch(|_, _, _| {})),
        Err(Error::InvalidInput)
    ));
    assert_eq!(rt.watch_close(id).unwrap(), Stopped::Done);
    // Closed: the fd may be watched again, under a new id.
    let id2 = rt
        .watch(a.as_raw_fd(), READABLE, watch(|_, _, _| {}))
        .unwrap();
    assert_ne!(id, id2);
    assert_eq!(rt.watch_close(id2).unwrap(), Stopped::Done);
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn shutdown_gives_an_active_watch_one_final_call() {
    let rt = runtime();
    let (a, _b) = socketpair();
    let (c, _d) = socketpair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt.watch(
        a.as_raw_fd(),
        READABLE,
        watch(move |fd, events, status| l.lock().unwrap().push((fd, events, status))),
    )
    .unwrap();
    let l = log.clone();
    let closed = rt
        .watch(
            c.as_raw_fd(),
            READABLE,
            watch(move |fd, events, status| l.lock().unwrap().push((fd, events, status))),
        )
        .unwrap();
    assert_eq!(rt.watch_close(closed).unwrap(), Stopped::Done);
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [(a.as_raw_fd(), 0, Status::Cancelled)],
        "one final call for the active watch, none for the closed one"
    );
    assert!(matches!(
        rt.watch(a.as_raw_fd(), READABLE, watch(|_, _, _| {})),
        Err(Error::Shutdown)
    ));
}
