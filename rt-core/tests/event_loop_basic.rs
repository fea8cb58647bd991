//! `rt_core::event_loop`: ready queue, timers, limits, errors, close,
//! re-entrancy, threadsafe calls and the embedded runtime.

mod event_loop_util;

use event_loop_util::*;
use rt_core::event_loop::{Closed, EventLoop, Limits, Runner};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const NOW: Limits = Limits {
    deadline: None,
    max_callbacks: None,
    busy_poll: None,
};

#[test]
fn call_soon_runs_in_fifo_order_once() {
    let lp = new_loop();
    let log = log();
    for i in 0..100 {
        lp.call_soon(rec(&log, i)).unwrap();
    }
    assert_eq!(lp.ready_len(), 100);
    let mut run = Run::default();
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(100));
    assert_eq!(taken(&log), (0..100).collect::<Vec<_>>());
    // Nothing ready, stopping: no wait, nothing run.
    assert_eq!(lp.run_once(&mut run, true, NOW), Ok(0));
    assert_eq!(run.parks, 0);
    assert_eq!(lp.metrics().callbacks_run, 100);
}

#[test]
fn threadsafe_and_plain_calls_share_one_fifo() {
    // asyncio has one ready queue: a call_soon_threadsafe made (on another
    // thread) before a call_soon runs before it.
    let lp = std::sync::Arc::new(new_loop());
    let log = log();
    let (lp2, log2) = (lp.clone(), log.clone());
    std::thread::spawn(move || lp2.call_soon_threadsafe(rec(&log2, 1)).unwrap())
        .join()
        .unwrap();
    lp.call_soon(rec(&log, 2)).unwrap();
    lp.call_soon_threadsafe(rec(&log, 3)).unwrap();
    lp.call_soon(rec(&log, 4)).unwrap();
    let mut run = Run::default();
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(4));
    assert_eq!(taken(&log), vec![1, 2, 3, 4]);
}

#[test]
fn handles_added_while_running_wait_for_the_next_iteration() {
    let lp = new_loop();
    let log = log();
    let weak = Arc::downgrade(&lp);
    let log2 = log.clone();
    lp.call_soon(Cb::new(1, move |id| {
        log2.lock().unwrap().push(id);
        weak.upgrade().unwrap().call_soon(rec(&log2, 3)).unwrap();
    }))
    .unwrap();
    lp.call_soon(rec(&log, 2)).unwrap();
    let mut run = Run::default();
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(2));
    assert_eq!(taken(&log), vec![1, 2]);
    assert_eq!(lp.ready_len(), 1);
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(1));
    assert_eq!(taken(&log), vec![3]);
}

#[test]
fn cancelled_handles_are_skipped() {
    let lp = new_loop();
    let log = log();
    let hs: Vec<Cb> = (0..5).map(|i| rec(&log, i)).collect();
    for h in &hs {
        lp.call_soon(h.clone()).unwrap();
    }
    hs[1].cancel();
    hs[3].cancel();
    assert_eq!(lp.run_once(&mut Run::default(), false, NOW), Ok(3));
    assert_eq!(taken(&log), vec![0, 2, 4]);
}

#[test]
fn a_lone_ready_handle_runs_is_skipped_or_kept_as_in_a_batch() {
    // One ready handle is taken alone (no lock after it runs): the same
    // outcomes as a batch's.
    let lp = new_loop();
    let log = log();
    let mut run = Run::default();
    lp.call_soon(rec(&log, 1)).unwrap();
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(1));
    assert_eq!(taken(&log), vec![1]);
    // Cancelled: dropped, not run, not counted.
    let h = rec(&log, 2);
    lp.call_soon(h.clone()).unwrap();
    h.cancel();
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(0));
    assert_eq!(lp.ready_len(), 0);
    assert!(taken(&log).is_empty());
    // max_callbacks 0: it keeps its place.
    lp.call_soon(rec(&log, 3)).unwrap();
    let zero = Limits {
        max_callbacks: Some(0),
        ..NOW
    };
    assert_eq!(lp.run_once(&mut run, false, zero), Ok(0));
    assert_eq!(lp.ready_len(), 1);
    // A failing run is counted as run and returns the error; what it
    // scheduled stays queued.
    let weak = Arc::downgrade(&lp);
    let log2 = log.clone();
    lp.run_once(&mut run, false, NOW).unwrap();
    lp.call_soon(Cb::new(4, move |id| {
        log2.lock().unwrap().push(id);
        weak.upgrade().unwrap().call_soon(rec(&log2, 5)).unwrap();
    }))
    .unwrap();
    run.fail_on = Some(4);
    assert_eq!(lp.run_once(&mut run, false, NOW), Err(4));
    assert_eq!(lp.ready_len(), 1);
    run.fail_on = None;
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(1));
    assert_eq!(taken(&log), vec![3, 4, 5]);
    assert_eq!(lp.metrics().callbacks_run, 4);
}

#[test]
fn a_lone_handle_cancelled_by_a_garbage_destructor_is_skipped() {
    // A cancelled due timer is dropped (with no lock held) before the batch
    // runs; its destructor cancels the one ready handle, which must then be
    // skipped as in a batch of many (review finding).
    struct CancelOnDrop(Cb);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let lp = new_loop();
    let log = log();
    let victim = rec(&log, 1);
    let guard = CancelOnDrop(victim.clone());
    let timer = Cb::new(99, move |_| {
        let _ = &guard;
    });
    lp.call_at(now(), timer.clone()).unwrap();
    timer.cancel();
    drop(timer);
    std::thread::sleep(Duration::from_millis(2));
    lp.call_soon(victim).unwrap();
    let mut run = Run::default();
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(0));
    assert!(taken(&log).is_empty());
    assert_eq!(lp.metrics().callbacks_run, 0);
}

#[test]
fn timers_fire_by_deadline_then_insertion_order() {
    let lp = new_loop();
    let log = log();
    let base = now() + 20 * MS;
    // (id, offset µs): ties at +0 and +5 ms keep call order.
    let plan = [
        (0, 5_000),
        (1, 0),
        (2, 5_000),
        (3, 1_000),
        (4, 0),
        (5, 5_000),
        (6, 2_500),
    ];
    for (id, off) in plan {
        lp.call_at(base + off * 1_000, rec(&log, id)).unwrap();
    }
    // A deadline in the past is due in the next iteration, after call_soon
    // handles already queued (asyncio's order).
    lp.call_soon(rec(&log, 100)).unwrap();
    lp.call_at(0, rec(&log, 101)).unwrap();
    assert_eq!(lp.timers_len(), 8);
    let mut run = Run::default();
    let mut got = Vec::new();
    run_until(&lp, &mut run, 10, || {
        got.extend(taken(&log));
        got.len() == 9
    });
    assert_eq!(got, vec![100, 101, 1, 4, 3, 6, 0, 2, 5]);
    assert_eq!(lp.timers_len(), 0);
    assert_eq!(lp.metrics().timers_fired, 8);
}

#[test]
fn timers_are_never_early() {
    let lp = new_loop();
    let lateness = Arc::new(Mutex::new(Vec::new()));
    let base = now();
    let mut seed = 12345u64;
    for i in 0..300 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let when = base + (seed >> 33) % (30 * MS);
        let l = lateness.clone();
        lp.call_at(
            when,
            Cb::new(i, move |_| {
                l.lock().unwrap().push(now() as i64 - when as i64)
            }),
        )
        .unwrap();
    }
    let mut run = Run::default();
    run_until(&lp, &mut run, 20, || lateness.lock().unwrap().len() == 300);
    let l = lateness.lock().unwrap();
    assert!(
        l.iter().all(|&x| x >= 0),
        "a timer fired early: {:?}",
        l.iter().min()
    );
}

#[test]
fn cancel_timer_removes_at_once() {
    let lp = new_loop();
    let log = log();
    let k1 = lp.call_at(now() + 5 * MS, rec(&log, 1)).unwrap();
    let k2 = lp.call_at(now() + 5 * MS, rec(&log, 2)).unwrap();
    let k3 = lp
        .call_at(now() + 30 * 3_600_000 * MS, rec(&log, 3))
        .unwrap(); // beyond the wheel (30 h)
    assert_eq!(lp.timers_len(), 3);
    assert_eq!(lp.cancel_timer(k1).map(|h| h.id()), Some(1));
    assert!(lp.cancel_timer(k1).is_none());
    assert_eq!(lp.cancel_timer(k3).map(|h| h.id()), Some(3));
    assert_eq!(lp.timers_len(), 1);
    let mut run = Run::default();
    run_until(&lp, &mut run, 10, || lp.timers_len() == 0);
    assert_eq!(taken(&log), vec![2]);
    // A fired timer's key is stale.
    assert!(lp.cancel_timer(k2).is_none());

    // A timer cancelled through its flag (asyncio's TimerHandle.cancel
    // without removal) is dropped, not run.
    let h = rec(&log, 4);
    lp.call_at(now(), h.clone()).unwrap();
    h.cancel();
    lp.run_once(&mut run, false, within(5)).unwrap();
    lp.run_once(&mut run, false, within(5)).unwrap();
    assert!(taken(&log).is_empty());
    assert_eq!(lp.timers_len(), 0);
}

#[test]
fn cancel_timer_is_constant_time() {
    // 200k timers cancelled in an order unrelated to their deadlines: with
    // an O(n) removal this would take minutes.
    let lp = new_loop();
    let base = now();
    let n = 200_000u64;
    let keys: Vec<_> = (0..n)
        .map(|i| {
            lp.call_at(base + (i * 7919 % n + 1) * 1_000_000, Cb::new(0, |_| {}))
                .unwrap()
        })
        .collect();
    assert_eq!(lp.timers_len(), n as usize);
    let start = Instant::now();
    let mut order: Vec<usize> = (0..n as usize).collect();
    order.sort_by_key(|&i| (i * 104_729) % n as usize);
    for i in order {
        assert!(lp.cancel_timer(keys[i]).is_some());
    }
    let took = start.elapsed();
    assert_eq!(lp.timers_len(), 0);
    assert!(took < Duration::from_secs(5), "{n} cancels took {took:?}");
}

#[test]
fn max_callbacks_keeps_the_rest_in_place() {
    let lp = new_loop();
    let log = log();
    for i in 0..10 {
        lp.call_soon(rec(&log, i)).unwrap();
    }
    let mut run = Run::default();
    let lim = Limits {
        deadline: None,
        max_callbacks: Some(3),
        busy_poll: None,
    };
    assert_eq!(lp.run_once(&mut run, false, lim), Ok(3));
    assert_eq!(taken(&log), vec![0, 1, 2]);
    assert_eq!(lp.ready_len(), 7);
    lp.call_soon(rec(&log, 10)).unwrap();
    assert_eq!(lp.run_once(&mut run, false, lim), Ok(3));
    assert_eq!(taken(&log), vec![3, 4, 5]);
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(5));
    assert_eq!(taken(&log), vec![6, 7, 8, 9, 10]);
    let zero = Limits {
        deadline: None,
        max_callbacks: Some(0),
        busy_poll: None,
    };
    lp.call_soon(rec(&log, 11)).unwrap();
    assert_eq!(lp.run_once(&mut run, false, zero), Ok(0));
    assert_eq!(lp.ready_len(), 1);
}

#[test]
fn deadline_stops_the_batch_and_caps_the_wait() {
    let lp = new_loop();
    let log = log();
    for i in 0..20 {
        let log = log.clone();
        lp.call_soon(Cb::new(i, move |id| {
            std::thread::sleep(Duration::from_millis(2));
            log.lock().unwrap().push(id);
        }))
        .unwrap();
    }
    let mut run = Run::default();
    let n = lp.run_once(&mut run, false, within(5)).unwrap();
    assert!((1..20).contains(&n), "ran {n}");
    assert_eq!(taken(&log), (0..n as u32).collect::<Vec<_>>());
    assert_eq!(lp.ready_len(), 20 - n);
    // A past deadline still runs one handle (progress), as asyncio would.
    let past = Limits {
        deadline: Some(now() - 1),
        max_callbacks: None,
        busy_poll: None,
    };
    assert_eq!(lp.run_once(&mut run, false, past), Ok(1));
    lp.run_once(&mut run, false, NOW).unwrap();
    assert_eq!(lp.ready_len(), 0);

    // Only a far timer: the wait ends at the deadline.
    lp.call_at(now() + 10_000 * MS, Cb::new(0, |_| {})).unwrap();
    let start = Instant::now();
    assert_eq!(lp.run_once(&mut run, false, within(30)), Ok(0));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(30), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn err_mid_batch_puts_the_rest_back_in_order() {
    let lp = new_loop();
    let log = log();
    let weak = Arc::downgrade(&lp);
    for i in 0..5 {
        if i == 1 {
            let (log, weak) = (log.clone(), weak.clone());
            lp.call_soon(Cb::new(1, move |id| {
                log.lock().unwrap().push(id);
                weak.upgrade().unwrap().call_soon(rec(&log, 9)).unwrap();
            }))
            .unwrap();
        } else {
            lp.call_soon(rec(&log, i)).unwrap();
        }
    }
    let mut run = Run {
        fail_on: Some(2),
        ..Run::default()
    };
    assert_eq!(lp.run_once(&mut run, false, NOW), Err(2));
    assert_eq!(taken(&log), vec![0, 1, 2]);
    assert_eq!(lp.ready_len(), 3);
    run.fail_on = None;
    assert_eq!(lp.run_once(&mut run, false, NOW), Ok(3));
    assert_eq!(taken(&log), vec![3, 4, 9]);
}

#[test]
fn close_returns_every_handle() {
    let lp = new_loop();
    let log = log();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    use std::os::fd::AsRawFd;
    lp.call_soon(rec(&log, 1)).unwrap();
    lp.call_soon(rec(&log, 2)).unwrap();
    lp.call_at(now() + 1_000 * MS, rec(&log, 3)).unwrap();
    lp.call_at(now() + 2_000 * MS, rec(&log, 4)).unwrap();
    lp.call_at(u64::MAX, rec(&log, 5)).unwrap();
    lp.call_soon_threadsafe(rec(&log, 6)).unwrap();
    lp.add_reader(a.as_raw_fd(), rec(&log, 7)).unwrap();
    lp.add_writer(a.as_raw_fd(), rec(&log, 8)).unwrap();
    lp.add_writer(b.as_raw_fd(), rec(&log, 9)).unwrap();
    let mut ids: Vec<u32> = lp.close().iter().map(Cb::id).collect();
    ids.sort();
    assert_eq!(ids, (1..=9).collect::<Vec<_>>());
    assert!(taken(&log).is_empty());
    assert!(lp.is_closed());
    assert_eq!(lp.call_soon(rec(&log, 0)), Err(Closed));
    assert_eq!(lp.call_soon_threadsafe(rec(&log, 0)), Err(Closed));
    assert!(lp.call_at(0, rec(&log, 0)).is_err());
    let e = lp.add_reader(a.as_raw_fd(), rec(&log, 0)).unwrap_err();
    assert_eq!(e.to_string(), "Event loop is closed");
    assert!(!lp.has_reader(a.as_raw_fd()));
    assert!(lp.remove_writer(b.as_raw_fd()).is_none());
    assert!(lp.runtime().is_err());
    assert_eq!(lp.run_once(&mut Run::default(), false, NOW), Ok(0));
    assert!(lp.close().is_empty());
    let m = lp.metrics();
    assert_eq!(
        (m.ready_len, m.timers_pending, m.readers, m.writers),
        (0, 0, 0, 0)
    );
}

#[test]
fn runner_may_call_the_loop_reentrantly() {
    let lp = new_loop();
    let log = log();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    use std::os::fd::AsRawFd;
    let fd = a.as_raw_fd();
    let weak = Arc::downgrade(&lp);
    let log2 = log.clone();
    lp.call_soon(Cb::new(1, move |_| {
        let lp = weak.upgrade().unwrap();
        lp.call_soon(rec(&log2, 10)).unwrap();
        lp.call_soon_threadsafe(rec(&log2, 11)).unwrap();
        let k = lp.call_at(now() + 1_000 * MS, rec(&log2, 12)).unwrap();
        assert_eq!(lp.cancel_timer(k).map(|h| h.id()), Some(12));
        lp.add_reader(fd, rec(&log2, 13)).unwrap();
        assert!(lp.has_reader(fd));
        assert!(lp.remove_reader(fd).is_some());
        assert_eq!(lp.ready_len(), 1);
        let _ = lp.metrics();
        lp.wake();
        // A nested iteration runs what is ready now (10, and 11 once
        // drained), not the rest of the outer batch.
        let n = lp.run_once(&mut Run::default(), true, NOW).unwrap();
        assert_eq!(n, 2);
        log2.lock().unwrap().push(1);
    }))
    .unwrap();
    lp.call_soon(rec(&log, 2)).unwrap();
    assert_eq!(lp.run_once(&mut Run::default(), false, NOW), Ok(2));
    assert_eq!(taken(&log), vec![10, 11, 1, 2]);
    drop(b);
}

#[test]
fn threadsafe_calls_from_four_threads_wake_the_loop() {
    let lp = new_loop();
    let count = Arc::new(AtomicUsize::new(0));
    const PER: usize = 500;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (lp, count) = (lp.clone(), count.clone());
            std::thread::spawn(move || {
                for i in 0..PER {
                    let c = count.clone();
                    lp.call_soon_threadsafe(Cb::new(t, move |_| {
                        c.fetch_add(1, Ordering::SeqCst);
                    }))
                    .unwrap();
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    // No timers and no deadline: each wait is unbounded, so only the
    // pushes' wakes end it. A watchdog fails the test instead of hanging.
    let (done_tx, done_rx) = mpsc::channel();
    let lp2 = lp.clone();
    let c2 = count.clone();
    let driver = std::thread::spawn(move || {
        let mut run = Run::default();
        while c2.load(Ordering::SeqCst) < 4 * PER {
            lp2.run_once(&mut run, false, NOW).unwrap();
        }
        done_tx.send(run.parks).unwrap();
    });
    let parks = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a threadsafe call did not wake the loop");
    driver.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 4 * PER);
    assert_eq!(lp.metrics().threadsafe_calls, (4 * PER) as u64);
    eprintln!("threadsafe: {parks} parks for {} calls", 4 * PER);
}

#[test]
fn wake_ends_a_blocking_wait() {
    let lp = new_loop();
    let lp2 = lp.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut run = Run::default();
        let r = lp2.run_once(&mut run, false, NOW);
        tx.send((r, run.parks)).unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    lp.wake();
    let (r, parks) = rx.recv_timeout(Duration::from_secs(30)).expect("wake lost");
    assert_eq!((r, parks), (Ok(0), 1));
    t.join().unwrap();
    // A wake with no waiter makes the next wait not block.
    lp.wake();
    let start = Instant::now();
    assert_eq!(lp.run_once(&mut Run::default(), false, NOW), Ok(0));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn embedded_runtime_runs_blocking_jobs_and_tasks() {
    let lp = new_loop();
    let log = log();
    let rt = lp.runtime().unwrap();
    // A blocking job reports back through call_soon_threadsafe.
    let (lp2, log2) = (lp.clone(), log.clone());
    rt.spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(10));
        lp2.call_soon_threadsafe(rec(&log2, 1)).unwrap();
    });
    // An rt task with an rt timer: only the loop drives the runtime.
    let (lp3, log3) = (lp.clone(), log.clone());
    rt.spawn(async move {
        rt_core::time::sleep(Duration::from_millis(30)).await;
        lp3.call_soon(rec(&log3, 2)).unwrap();
    });
    let mut run = Run::default();
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "runtime not driven: {got:?}"
        );
        // No loop timers, no deadline: only the runtime's fd / timeout can
        // end the wait.
        lp.run_once(&mut run, false, NOW).unwrap();
        got.extend(taken(&log));
    }
    got.sort();
    assert_eq!(got, vec![1, 2]);
    let m = lp.metrics();
    assert!(m.runtime_runs > 0 && m.runtime_tasks_polled > 0, "{m:?}");
    lp.close();
}

#[test]
fn the_loop_is_usable_through_a_trait_object_runner() {
    // Runner is object-safe enough for `&mut dyn` use by embedders.
    let lp = new_loop();
    let log = log();
    lp.call_soon(rec(&log, 1)).unwrap();
    let mut run = Run::default();
    let r: &mut dyn Runner<Cb, Error = u32> = &mut run;
    struct Fwd<'a>(&'a mut dyn Runner<Cb, Error = u32>);
    impl Runner<Cb> for Fwd<'_> {
        type Error = u32;
        fn run(&mut self, h: Cb) -> Result<(), u32> {
            self.0.run(h)
        }
    }
    assert_eq!(lp.run_once(&mut Fwd(r), false, NOW), Ok(1));
    assert_eq!(taken(&log), vec![1]);
    let _: Option<EventLoop<Cb>> = None;
}

/// Calls into the loop when dropped (as a Python handle's destructor may).
struct OnDrop(std::sync::Weak<EventLoop<Cb>>, Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(lp) = self.0.upgrade() {
            let _ = lp.ready_len();
            let _ = lp.timers_len();
            let _ = lp.remove_reader(0);
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn handles_are_dropped_with_no_lock_held() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lp = new_loop();
        let drops = Arc::new(AtomicUsize::new(0));
        let hook = |id| {
            let d = OnDrop(Arc::downgrade(&lp), drops.clone());
            Cb::new(id, move |_| {
                let _ = &d;
            })
        };
        // Refused by epoll.
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        use std::os::fd::AsRawFd;
        assert!(lp.add_reader(file.as_raw_fd(), hook(1)).is_err());
        // Cancelled: a ready handle, a due timer.
        let h = hook(2);
        lp.call_soon(h.clone()).unwrap();
        h.cancel();
        drop(h);
        let h = hook(3);
        lp.call_at(0, h.clone()).unwrap();
        h.cancel();
        drop(h);
        // A timer cancelled by key, dropped by the caller.
        let k = lp.call_at(u64::MAX, hook(4)).unwrap();
        drop(lp.cancel_timer(k));
        // Run handles (dropped after running).
        lp.call_soon(hook(5)).unwrap();
        let mut run = Run::default();
        for _ in 0..3 {
            lp.run_once(&mut run, false, within(5)).unwrap();
        }
        // Refused after close; then everything close returned.
        lp.call_soon(hook(6)).unwrap();
        let rest = lp.close();
        assert!(lp.call_soon(hook(7)).is_err());
        assert!(lp.call_soon_threadsafe(hook(8)).is_err());
        drop(rest);
        tx.send(drops.load(Ordering::SeqCst)).unwrap();
    });
    let drops = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("deadlock: a handle was dropped under the loop's lock");
    assert_eq!(drops, 8);
}

#[test]
fn a_threadsafe_call_during_the_wait_runs_in_that_iteration() {
    let lp = new_loop();
    let log = log();
    let (lp2, log2) = (lp.clone(), log.clone());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        lp2.call_soon_threadsafe(rec(&log2, 1)).unwrap();
    });
    let (tx, rx) = mpsc::channel();
    let lp3 = lp.clone();
    std::thread::spawn(move || {
        let mut run = Run::default();
        let r = lp3.run_once(&mut run, false, NOW);
        tx.send((r, run.parks)).unwrap();
    });
    let got = rx.recv_timeout(Duration::from_secs(30)).expect("wake lost");
    assert_eq!(got, (Ok(1), 1));
    assert_eq!(taken(&log), vec![1]);
    t.join().unwrap();
}
