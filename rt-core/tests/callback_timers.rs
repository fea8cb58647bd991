//! `rt_core::callback` timers with closure callbacks: order, never early,
//! stops from inside the callback and from another thread while it fires,
//! stale ids, deadlines, final calls at shutdown.

mod support;

use rt_core::callback::{CallbackRuntime, Error, Status, Stopped};
use rt_core::runtime::RunMode;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use support::callback::{self, slow_call, timer, NoWatch, Timer};

type Rt = CallbackRuntime<Timer, NoWatch>;

fn current_thread() -> Rt {
    callback::current_thread()
}

fn multi_thread(workers: usize) -> Rt {
    callback::multi_thread(workers)
}

#[test]
fn calls_run_in_deadline_order_ties_in_start_order_never_early() {
    let rt = current_thread();
    let log = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    // (name, delay ms): started out of deadline order, with ties.
    let plan = [
        ("c", 30),
        ("a", 10),
        ("b1", 20),
        ("b2", 20),
        ("a2", 10),
        ("z", 0),
    ];
    for (name, ms) in plan {
        let log = log.clone();
        rt.timer_start(
            Duration::from_millis(ms),
            None,
            timer(move |s| log.lock().unwrap().push((name, s, start.elapsed()))),
        )
        .unwrap();
    }
    assert_eq!(rt.run(RunMode::Default).unwrap(), plan.len());
    let log = log.lock().unwrap();
    let names: Vec<_> = log.iter().map(|e| e.0).collect();
    assert_eq!(names, ["z", "a", "a2", "b1", "b2", "c"]);
    for (name, status, at) in log.iter() {
        assert_eq!(*status, Status::Ok);
        let ms = plan.iter().find(|p| p.0 == *name).unwrap().1;
        assert!(
            *at >= Duration::from_millis(ms),
            "{name} ran at {at:?}, before its {ms} ms"
        );
    }
}

#[test]
fn a_repeat_never_fires_early_and_stops_from_inside_its_callback() {
    let rt = Arc::new(current_thread());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let id = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let (rt2, calls2, id2) = (rt.clone(), calls.clone(), id.clone());
    let stopped = Arc::new(Mutex::new(None));
    let stopped2 = stopped.clone();
    rt.timer_start_with(
        Duration::from_millis(5),
        Some(Duration::from_millis(5)),
        timer(move |s| {
            let mut calls = calls2.lock().unwrap();
            calls.push((s, start.elapsed()));
            if calls.len() == 4 {
                // From inside its own callback: returns at once, no further call.
                let r = rt2.timer_stop(id2.load(SeqCst) as u64);
                *stopped2.lock().unwrap() = Some(r.map_err(|e| e.to_string()));
            }
        }),
        |i| id.store(i as usize, SeqCst),
    )
    .unwrap();
    // Runs until no work is left: the stop ends the repeat.
    assert_eq!(rt.run(RunMode::Default).unwrap(), 4);
    assert_eq!(*stopped.lock().unwrap(), Some(Ok(Stopped::Done)));
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 4, "no call after the stop, no final call");
    for (n, (s, at)) in calls.iter().enumerate() {
        assert_eq!(*s, Status::Ok);
        let due = Duration::from_millis(5 * (n as u64 + 1));
        assert!(*at >= due, "call {n} at {at:?}, due {due:?}");
    }
    assert!(matches!(
        rt.timer_stop(id.load(SeqCst) as u64),
        Err(Error::NotFound)
    ));
}

#[test]
fn a_stop_from_another_thread_waits_for_the_call_that_fires() {
    let rt = multi_thread(2);
    // A call long enough for the stop to arrive during it.
    let (slow, probe) = slow_call();
    let id = rt
        .timer_start(
            Duration::from_millis(1),
            Some(Duration::from_millis(1)),
            timer(move |s| slow.call(s)),
        )
        .unwrap();
    probe.entered.recv_timeout(Duration::from_secs(10)).unwrap();
    // The callback is running now, on a worker.
    let before = Instant::now();
    assert_eq!(rt.timer_stop(id).unwrap(), Stopped::Done);
    assert!(
        !probe.running.load(SeqCst),
        "the stop returned while the callback was running"
    );
    assert!(
        before.elapsed() >= Duration::from_millis(10),
        "the stop did not wait"
    );
    let n = probe.calls.load(SeqCst);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        probe.calls.load(SeqCst),
        n,
        "called after a successful stop"
    );
    assert!(matches!(rt.timer_stop(id), Err(Error::NotFound)));
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn a_stop_from_inside_another_callback_does_not_wait() {
    let rt = Arc::new(multi_thread(2));
    let (entered_tx, entered_rx) = mpsc::channel();
    let entered_tx = Mutex::new(entered_tx);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let busy = rt
        .timer_start(
            Duration::ZERO,
            Some(Duration::from_millis(1)),
            timer(move |s| {
                if s == Status::Ok {
                    let _ = entered_tx.lock().unwrap().send(());
                    let _ = release_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(10));
                }
            }),
        )
        .unwrap();
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let (res_tx, res_rx) = mpsc::channel();
    let rt2 = rt.clone();
    // Another callback (a task) stops the busy timer: it must not wait.
    rt.spawn(
        move |_| {
            let _ = res_tx.send(rt2.timer_stop(busy).map_err(|e| e.to_string()));
        },
        false,
    )
    .unwrap();
    let res = res_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(res, Ok(Stopped::StillRunning));
    release_tx.send(()).unwrap();
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn ids_deadlines_and_bad_input() {
    let rt = current_thread();
    let t = timer(|_| {});
    assert!(matches!(
        rt.timer_start(Duration::ZERO, Some(Duration::ZERO), t.clone()),
        Err(Error::InvalidInput)
    ));
    let before = rt_core::time::Instant::now();
    let id = rt
        .timer_start(Duration::from_secs(60), None, t.clone())
        .unwrap();
    let deadline = rt.timer_deadline(id).expect("a live timer has a deadline");
    assert!(deadline >= before + Duration::from_secs(60));
    assert_eq!(rt.timer_stop(id).unwrap(), Stopped::Done);
    assert_eq!(rt.timer_deadline(id), None);
    assert!(matches!(rt.timer_stop(id), Err(Error::NotFound)));
    let id2 = rt.timer_start(Duration::from_secs(60), None, t).unwrap();
    assert_ne!(id, id2, "a reused slot gets a new id");
    assert!(matches!(rt.timer_stop(0), Err(Error::NotFound)));
    assert!(matches!(rt.timer_stop(u64::MAX), Err(Error::NotFound)));
}

#[test]
fn shutdown_gives_armed_timers_one_final_call_and_stopped_ones_none() {
    for rt in [current_thread(), multi_thread(2)] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut ids = Vec::new();
        for i in 0..4 {
            let log = log.clone();
            let period = (i % 2 == 1).then(|| Duration::from_secs(1));
            ids.push(
                rt.timer_start(
                    Duration::from_secs(60),
                    period,
                    timer(move |s| log.lock().unwrap().push((i, s))),
                )
                .unwrap(),
            );
        }
        assert_eq!(rt.timer_stop(ids[2]).unwrap(), Stopped::Done);
        rt.shutdown(Some(Duration::from_secs(10))).unwrap();
        let mut log = log.lock().unwrap().clone();
        log.sort_by_key(|e| e.0);
        assert_eq!(
            log,
            [
                (0, Status::Cancelled),
                (1, Status::Cancelled),
                (3, Status::Cancelled)
            ]
        );
        assert!(matches!(
            rt.timer_start(Duration::ZERO, None, timer(|_| {})),
            Err(Error::Shutdown)
        ));
        assert!(matches!(rt.timer_stop(ids[0]), Err(Error::Shutdown)));
    }
}
