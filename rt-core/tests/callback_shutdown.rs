//! `rt_core::callback::CallbackRuntime`'s lifecycle and host mode with
//! closure callbacks: shutdown gives every pending callback its final
//! `Cancelled` call (tasks, timers, watches, queued blocking work), calls
//! after it are refused; host runs keep FIFO order and their budget.

mod support;

use rt_core::callback::{
    CallbackRuntime, Error, InFlight, Status, TimerCallback, WatchCallback, READABLE,
};
use rt_core::runtime::{Builder, RunMode};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use support::callback::{self, socketpair};

type Log = Arc<Mutex<Vec<(&'static str, Status)>>>;

#[derive(Clone)]
struct Timer(&'static str, Log);

impl TimerCallback for Timer {
    fn call(&self, status: Status) {
        self.1.lock().unwrap().push((self.0, status));
    }
}

struct Watch(&'static str, Log);

impl WatchCallback for Watch {
    fn call(&self, _: RawFd, events: u32, status: Status) {
        assert!(status == Status::Ok || events == 0);
        self.1.lock().unwrap().push((self.0, status));
    }
}

type Rt = CallbackRuntime<Timer, Watch>;

fn current_thread() -> Rt {
    callback::current_thread()
}

fn once(name: &'static str, log: &Log) -> impl FnOnce(Status) + Send + 'static {
    let log = log.clone();
    move |s| log.lock().unwrap().push((name, s))
}

#[test]
fn shutdown_gives_every_pending_callback_its_final_call() {
    let rt = CallbackRuntime::<Timer, Watch>::new(
        Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    );
    let log: Log = Arc::default();
    let (a, b) = socketpair();
    // Never driven: nothing runs until the shutdown.
    rt.spawn(once("task", &log), false).unwrap();
    let with_handle = rt.spawn(once("task+handle", &log), true).unwrap().unwrap();
    rt.timer_start(Duration::from_secs(60), None, Timer("timer", log.clone()))
        .unwrap();
    rt.timer_start(
        Duration::from_secs(60),
        Some(Duration::from_secs(1)),
        Timer("repeat", log.clone()),
    )
    .unwrap();
    // Ready, but never driven: no Ok call, only the final one.
    let _ = b;
    rt.watch(a.as_raw_fd(), READABLE, Watch("watch", log.clone()))
        .unwrap();
    // The pool's only thread runs the first job until released; the second
    // waits in the queue.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    rt.spawn_blocking(
        move || {
            started_tx.send(()).unwrap();
            let _ = go_rx.recv_timeout(Duration::from_secs(10));
        },
        once("blocking ran", &log),
    )
    .unwrap();
    rt.spawn_blocking(|| panic!("queued work ran"), once("blocking queued", &log))
        .unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // Released while the shutdown waits for it (no time limit).
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let _ = go_tx.send(());
    });
    rt.shutdown(None).unwrap();
    release.join().unwrap();
    let mut got = log.lock().unwrap().clone();
    got.sort_by_key(|e| e.0);
    let mut want = vec![
        ("blocking queued", Status::Cancelled),
        ("blocking ran", Status::Ok),
        ("repeat", Status::Cancelled),
        ("task", Status::Cancelled),
        ("task+handle", Status::Cancelled),
        ("timer", Status::Cancelled),
        ("watch", Status::Cancelled),
    ];
    want.sort_by_key(|e| e.0);
    assert_eq!(
        got, want,
        "each callback exactly once, with its final status"
    );
    assert!(with_handle.is_finished());
    // After it: refused, and nothing more is called.
    assert!(matches!(
        rt.spawn(once("late", &log), false),
        Err(Error::Shutdown)
    ));
    assert!(matches!(rt.handle(), Err(Error::Shutdown)));
    assert!(rt.is_shutdown());
    assert!(matches!(rt.shutdown(None), Err(Error::Shutdown)));
    assert!(matches!(rt.run(RunMode::NoWait), Err(Error::Shutdown)));
    assert_eq!(rt.metrics().workers, 1);
    drop(rt);
    assert_eq!(log.lock().unwrap().len(), want.len());
}

#[test]
fn dropping_the_runtime_cancels_what_is_pending() {
    let log: Log = Arc::default();
    let rt = current_thread();
    rt.spawn(once("task", &log), false).unwrap();
    rt.timer_start(Duration::from_secs(60), None, Timer("timer", log.clone()))
        .unwrap();
    drop(rt);
    let mut got = log.lock().unwrap().clone();
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        [("task", Status::Cancelled), ("timer", Status::Cancelled)]
    );
}

#[test]
fn run_budget_keeps_fifo_order_and_its_budget() {
    let rt = current_thread();
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..100 {
        let order = order.clone();
        rt.spawn(move |_| order.lock().unwrap().push(i), false)
            .unwrap();
    }
    let mut total = 0;
    let mut rounds = 0;
    while total < 100 {
        let n = rt.run_budget(Duration::from_secs(1), 10).unwrap();
        assert!(n <= 10, "ran {n} with a budget of 10");
        total += n;
        rounds += 1;
        assert!(rounds <= 20, "no progress");
    }
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
    assert_eq!(rt.run(RunMode::NoWait).unwrap(), 0);
}

#[test]
fn host_mode_rules() {
    let rt = Arc::new(current_thread());
    let log: Log = Arc::default();
    assert_eq!(rt.backend_timeout().unwrap(), None, "no timer armed");
    assert!(rt.backend_fd().unwrap() >= 0);
    rt.timer_start(Duration::from_millis(50), None, Timer("t", log.clone()))
        .unwrap();
    let timeout = rt.backend_timeout().unwrap().expect("a timer is armed");
    assert!(timeout > Duration::from_millis(40) && timeout <= Duration::from_millis(52));
    // A run from inside a callback would be re-entrant.
    let (rt2, res) = (rt.clone(), Arc::new(Mutex::new(None)));
    let res2 = res.clone();
    rt.spawn(
        move |_| {
            *res2.lock().unwrap() = Some(matches!(
                rt2.run(RunMode::NoWait),
                Err(Error::WouldDeadlock)
            ))
        },
        false,
    )
    .unwrap();
    assert_eq!(rt.run(RunMode::NoWait).unwrap(), 1);
    assert_eq!(*res.lock().unwrap(), Some(true));
    // A pending stop makes the next run return 0 at once.
    rt.stop().unwrap();
    assert_eq!(rt.run(RunMode::Default).unwrap(), 0);
    rt.wake().unwrap();
    assert_eq!(rt.run(RunMode::Default).unwrap(), 1, "the timer");
    assert_eq!(*log.lock().unwrap(), [("t", Status::Ok)]);
    // Host mode is for current-thread runtimes.
    let mt: Rt = callback::multi_thread(1);
    assert!(matches!(mt.run(RunMode::NoWait), Err(Error::InvalidInput)));
    assert!(matches!(
        mt.run_budget(Duration::ZERO, 1),
        Err(Error::InvalidInput)
    ));
    assert!(matches!(mt.wake(), Err(Error::InvalidInput)));
    assert!(matches!(mt.backend_fd(), Err(Error::InvalidInput)));
}

#[test]
fn the_layers_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Rt>();
    send_sync::<rt_core::callback::TaskHandle>();
    send_sync::<rt_core::callback::CompletionQueue<Box<dyn FnOnce(Status) + Send>>>();
    send_sync::<rt_core::callback::Error>();
}

#[test]
fn a_timed_out_shutdown_leaves_only_the_running_call_whose_final_call_follows_it() {
    let rt: Rt = callback::multi_thread(1);
    let log: Log = Arc::default();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new((Some(entered_tx), go_rx)));
    let l = log.clone();
    // A repeat whose first call blocks its worker until released.
    rt.timer_start(
        Duration::ZERO,
        Some(Duration::from_millis(1)),
        Timer("repeat", l),
    )
    .unwrap();
    let g = gate.clone();
    rt.spawn(
        move |s| {
            if s == Status::Ok {
                let g = g.lock().unwrap();
                let _ = g.0.as_ref().unwrap().send(());
                let _ = g.1.recv_timeout(Duration::from_secs(10));
            }
        },
        false,
    )
    .unwrap();
    rt.timer_start(Duration::from_secs(60), None, Timer("armed", log.clone()))
        .unwrap();
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // The only worker is blocked in a callback: the shutdown times out, but
    // everything not running got its final call before it returned.
    assert!(matches!(
        rt.shutdown(Some(Duration::from_millis(50))),
        Err(Error::TimedOut)
    ));
    let at_return = log.lock().unwrap().clone();
    assert!(at_return.contains(&("armed", Status::Cancelled)));
    go_tx.send(()).unwrap();
    // A later shutdown waits for nothing more: already shut down.
    assert!(matches!(rt.shutdown(None), Err(Error::Shutdown)));
    drop(rt);
    let log = log.lock().unwrap();
    let finals = |name| {
        log.iter()
            .filter(|e| e.0 == name && e.1 == Status::Cancelled)
            .count()
    };
    assert_eq!(finals("armed"), 1);
    assert_eq!(
        finals("repeat"),
        1,
        "the repeat gets exactly one final call"
    );
    let last_repeat = log.iter().rev().find(|e| e.0 == "repeat").unwrap();
    assert_eq!(
        last_repeat.1,
        Status::Cancelled,
        "no Ok call after the final one"
    );
}

#[test]
fn a_runtime_abandoned_after_fork_refuses_work_without_calling_it() {
    let log: Log = Arc::default();
    let rt = current_thread();
    rt.abandon_after_fork();
    assert!(rt.is_shutdown());
    assert!(matches!(
        rt.spawn(once("task", &log), true),
        Err(Error::Shutdown)
    ));
    assert!(matches!(
        rt.spawn_blocking(|| {}, once("blocking", &log)),
        Err(Error::Shutdown)
    ));
    assert!(matches!(
        rt.timer_start(Duration::from_millis(1), None, Timer("timer", log.clone())),
        Err(Error::Shutdown)
    ));
    let (a, _b) = socketpair();
    assert!(matches!(
        rt.watch(a.as_raw_fd(), READABLE, Watch("watch", log.clone())),
        Err(Error::Shutdown)
    ));
    // A failed call never calls what it was handed.
    assert!(log.lock().unwrap().is_empty());
    // In a forked child the runtime is leaked (its threads are the parent's).
    std::mem::forget(rt);
}

/// A binding's calls into its own runtime (`InFlight`): the shutdown closes
/// their gate; a later shutdown waits for the ones still running, up to its
/// limit, or not at all when it may not wait.
#[test]
fn shutdown_with_calls_closes_their_gate_and_waits_for_them_later() {
    static CALLS: InFlight = InFlight::new();
    let rt = current_thread();
    let running = CALLS.enter().expect("open before the shutdown");
    let first = rt.shutdown_with_calls(&CALLS, Some(Duration::from_secs(5)), true);
    assert!(first.is_ok(), "{first:?}");
    assert!(CALLS.is_closed());
    assert!(CALLS.enter().is_none(), "a call started after the shutdown");
    // Shut down already, a call still under way: not idle within the limit.
    let again = rt.shutdown_with_calls(&CALLS, Some(Duration::from_millis(20)), true);
    assert!(matches!(again, Err(Error::TimedOut)), "{again:?}");
    // Not allowed to wait: done as far as this caller can tell.
    let no_wait = rt.shutdown_with_calls(&CALLS, Some(Duration::ZERO), false);
    assert!(no_wait.is_ok(), "{no_wait:?}");
    // The call ends on another thread while a shutdown waits for it.
    let ender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        drop(running);
    });
    let last = rt.shutdown_with_calls(&CALLS, None, true);
    assert!(last.is_ok(), "{last:?}");
    assert!(CALLS.is_idle());
    ender.join().unwrap();
}
