//! Work stealing: tasks queued on a busy worker are run by the others.

use rt_core::runtime::Builder;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn tasks_spawned_on_a_blocked_worker_are_stolen() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let (d, t) = (done.clone(), threads.clone());
    let (spawner_thread, finished) = rt
        .block_on(rt.spawn(async move {
            for _ in 0..1_000 {
                let (d, t) = (d.clone(), t.clone());
                rt_core::spawn(async move {
                    t.lock().unwrap().insert(std::thread::current().id());
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
            // Block this worker: its queue can only drain if another worker
            // steals. The newest task sits in the LIFO slot, taken only once
            // this worker looks stuck (see the test below): wait for the
            // other 999.
            let deadline = Instant::now() + Duration::from_secs(20);
            while d.load(Ordering::SeqCst) < 999 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            (std::thread::current().id(), d.load(Ordering::SeqCst))
        }))
        .unwrap();
    assert!(
        finished >= 999,
        "only {finished} tasks ran while their worker was blocked"
    );
    {
        // Not held while the last task may still run (it takes this lock).
        let threads = threads.lock().unwrap();
        assert!(
            threads.iter().any(|t| *t != spawner_thread),
            "no task ran on another worker"
        );
    }
    // Let the LIFO task finish too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while done.load(Ordering::SeqCst) < 1_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(done.load(Ordering::SeqCst), 1_000);
    let m = rt.metrics();
    // Metrics are published at maintenance/park: give the workers a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let steals = loop {
        let s: u64 = (0..m.num_workers()).map(|w| m.worker_steal_count(w)).sum();
        if s > 0 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(steals > 0, "steal counter never moved");
}

#[test]
fn local_queue_overflow_goes_to_global_queue() {
    // One worker spawns far more than its 256-slot local queue holds while
    // blocked; the excess must still all run. (A single worker: with a
    // second one stealing as fast as the first spawns, the queue may never
    // fill, and nothing would be counted.)
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    rt.block_on(rt.spawn(async move {
        let hs: Vec<_> = (0..5_000)
            .map(|_| {
                let d = d.clone();
                rt_core::spawn(async move {
                    d.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    }))
    .unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 5_000);
    let m = rt.metrics();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let overflows: u64 = (0..m.num_workers())
            .map(|w| m.worker_overflow_count(w))
            .sum();
        if overflows > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no overflow counted after 5,000 local spawns"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn all_workers_take_part() {
    let rt = Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let t = threads.clone();
    rt.block_on(async move {
        let hs: Vec<_> = (0..200)
            .map(|_| {
                let t = t.clone();
                rt_core::spawn(async move {
                    t.lock().unwrap().insert(std::thread::current().id());
                    // Occupy the worker so the others must pick up the rest.
                    std::thread::sleep(Duration::from_millis(2));
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    assert!(
        threads.lock().unwrap().len() >= 2,
        "work did not spread over the workers"
    );
}

/// A task that a task spawns (or wakes) just before it blocks its thread
/// (a C callback that sleeps: no `block_in_place`) sits in that worker's
/// LIFO slot. Another worker takes it long before the block ends.
#[test]
fn a_lifo_task_escapes_a_blocked_worker() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let block = Duration::from_millis(500);
    for round in 0..3 {
        for wake in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel();
            rt.block_on(rt.spawn(async move {
                let start = Instant::now();
                if wake {
                    // Woken rather than spawned: the wake goes to the slot.
                    let (otx, orx) = rt_core::sync::oneshot::channel::<()>();
                    rt_core::spawn(async move {
                        orx.await.unwrap();
                        tx.send(start.elapsed()).unwrap();
                    });
                    // Let the child wait first (its spawn went to the slot).
                    rt_core::task::yield_now().await;
                    otx.send(()).unwrap();
                } else {
                    rt_core::spawn(async move {
                        tx.send(start.elapsed()).unwrap();
                    });
                }
                std::thread::sleep(block);
            }))
            .unwrap();
            let ran_after = rx.recv().unwrap();
            assert!(
                ran_after < block / 2,
                "round {round}, wake {wake}: the LIFO task ran {ran_after:?} after its \
                 worker blocked for {block:?}"
            );
        }
        // Let both workers go idle before the next round.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a parked worker waits for while the only running worker blocks.
#[derive(Clone, Copy, Debug)]
enum Wait {
    Timer,
    Readable,
}

/// The runtime is idle, then one worker leaves its park (its own driver
/// turn, or a spawn from outside) and its task blocks the thread (a C
/// callback that sleeps). A timer or an fd that becomes due meanwhile must
/// not wait for the block: the other worker, parked, takes over the
/// drivers.
#[test]
fn drivers_stay_attended_while_a_worker_blocks() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let block = Duration::from_millis(400);
    for round in 0..2 {
        for wait in [Wait::Timer, Wait::Readable] {
            for timer_woken_blocker in [false, true] {
                // Both workers parked.
                std::thread::sleep(Duration::from_millis(20));
                let (tx, rx) = std::sync::mpsc::channel();
                let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
                ours.set_nonblocking(true).unwrap();
                let start = Instant::now();
                let waiter = rt.spawn(async move {
                    match wait {
                        Wait::Timer => rt_core::time::sleep(Duration::from_millis(40)).await,
                        Wait::Readable => {
                            let s = rt_core::net::UnixStream::from_std(ours).unwrap();
                            s.readable().await.unwrap();
                        }
                    }
                    tx.send(start.elapsed()).unwrap();
                });
                let blocker = rt.spawn(async move {
                    if timer_woken_blocker {
                        rt_core::time::sleep(Duration::from_millis(10)).await;
                    }
                    std::thread::sleep(block);
                });
                if let Wait::Readable = wait {
                    std::thread::sleep(Duration::from_millis(40));
                    std::io::Write::write_all(&mut theirs, b"x").unwrap();
                }
                let ran_after = rx.recv().unwrap();
                // Due 40 ms after the start; served within about 10 ms
                // (two watching parks), with room for a loaded machine.
                assert!(
                    ran_after < Duration::from_millis(150),
                    "round {round}, {wait:?}, timer-woken blocker {timer_woken_blocker}: \
                     the waiter ran {ran_after:?} after the start (due at 40 ms), while a \
                     worker blocked for {block:?}"
                );
                rt.block_on(waiter).unwrap();
                rt.block_on(blocker).unwrap();
            }
        }
    }
}
