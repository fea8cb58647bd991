//! `rt_core::callback` tasks with closure callbacks: spawn exactly once
//! (many threads), abort vs start, join, blocking work with its `done`.

mod support;

use rt_core::callback::{CallbackRuntime, Error, Status};
use rt_core::runtime::RunMode;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use support::callback::{self, NoTimer, NoWatch};
use support::one_worker_one_blocking_thread;

type Rt = CallbackRuntime<NoTimer, NoWatch>;

fn multi_thread(workers: usize) -> Rt {
    callback::multi_thread(workers)
}

fn current_thread() -> Rt {
    callback::current_thread()
}

#[test]
fn every_spawn_from_four_threads_is_called_exactly_once() {
    const PER_THREAD: usize = 5_000;
    let rt = Arc::new(multi_thread(2));
    let ok = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(vec![0u8; 4 * PER_THREAD]));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (rt, ok, seen) = (rt.clone(), ok.clone(), seen.clone());
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let (ok, seen) = (ok.clone(), seen.clone());
                    let slot = t * PER_THREAD + i;
                    rt.spawn(
                        move |s| {
                            seen.lock().unwrap()[slot] += 1;
                            if s == Status::Ok {
                                ok.fetch_add(1, SeqCst);
                            }
                        },
                        i % 2 == 0,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.shutdown(None).unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|&n| n == 1),
        "a callback not called exactly once"
    );
    // Spawned before the shutdown, on a live multi-thread runtime: most ran;
    // those the shutdown reached first got Cancelled (counted above).
    assert!(ok.load(SeqCst) > 0);
}

#[test]
fn abort_before_start_wins_after_start_is_already() {
    let rt = current_thread();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    // Not driven yet: the task has not started.
    let task = rt
        .spawn(move |s| l.lock().unwrap().push(s), true)
        .unwrap()
        .expect("a handle was asked for");
    assert!(!task.is_finished());
    task.abort().unwrap();
    assert!(matches!(task.abort(), Err(Error::Already)));
    // The Cancelled call comes when the task is dropped: at once where the
    // task can be dropped right away, else at the scheduler's next turn.
    rt.run(RunMode::NoWait).unwrap();
    assert_eq!(*log.lock().unwrap(), [Status::Cancelled]);
    task.join(Some(Duration::ZERO)).unwrap();
    assert!(task.is_finished());
    // A task that ran: abort changes nothing.
    let l = log.clone();
    let ran = rt
        .spawn(move |s| l.lock().unwrap().push(s), true)
        .unwrap()
        .unwrap();
    assert!(matches!(
        ran.join(Some(Duration::ZERO)),
        Err(Error::TimedOut)
    ));
    rt.run(RunMode::NoWait).unwrap();
    assert!(ran.is_finished());
    assert!(matches!(ran.abort(), Err(Error::Already)));
    assert_eq!(*log.lock().unwrap(), [Status::Cancelled, Status::Ok]);
    assert!(rt.spawn(|_| {}, false).unwrap().is_none());
}

#[test]
fn join_waits_and_refuses_inside_a_callback() {
    let rt = Arc::new(multi_thread(2));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let slow = rt
        .spawn(
            move |_| {
                let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
            },
            true,
        )
        .unwrap()
        .unwrap();
    assert!(matches!(
        slow.join(Some(Duration::from_millis(20))),
        Err(Error::TimedOut)
    ));
    // From inside a callback a join that would wait is refused.
    let (res_tx, res_rx) = mpsc::channel();
    let s2 = slow.clone();
    rt.spawn(
        move |_| {
            let _ = res_tx.send(matches!(s2.join(None), Err(Error::WouldDeadlock)));
        },
        false,
    )
    .unwrap();
    assert!(res_rx.recv_timeout(Duration::from_secs(10)).unwrap());
    go_tx.send(()).unwrap();
    slow.join(Some(Duration::from_secs(10))).unwrap();
    assert!(slow.is_finished());
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn blocking_work_runs_then_done_once_and_queued_work_aborts_at_once() {
    let rt = CallbackRuntime::<NoTimer, NoWatch>::new(one_worker_one_blocking_thread());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (l1, l2) = (log.clone(), log.clone());
    // Occupies the only pool thread until told to go.
    let first = rt
        .spawn_blocking(
            move || {
                l1.lock().unwrap().push("work 1");
                started_tx.send(()).unwrap();
                let _ = go_rx.recv_timeout(Duration::from_secs(10));
            },
            move |s| {
                l2.lock().unwrap().push(if s == Status::Ok {
                    "done 1"
                } else {
                    "cancelled 1"
                })
            },
        )
        .unwrap();
    let (l3, l4) = (log.clone(), log.clone());
    let queued = rt
        .spawn_blocking(
            move || l3.lock().unwrap().push("work 2"),
            move |s| {
                l4.lock().unwrap().push(if s == Status::Ok {
                    "done 2"
                } else {
                    "cancelled 2"
                })
            },
        )
        .unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // Queued behind the first: the abort makes its Cancelled call here.
    queued.abort().unwrap();
    assert!(queued.is_finished());
    go_tx.send(()).unwrap();
    first.join(Some(Duration::from_secs(10))).unwrap();
    rt.shutdown(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(*log.lock().unwrap(), ["work 1", "cancelled 2", "done 1"]);
}
