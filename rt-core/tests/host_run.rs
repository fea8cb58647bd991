//! A current-thread runtime driven by a host loop: `Handle::run` modes,
//! `stop`, `wake`, and the backend fd / timeout a host waits on.

use rt_core::runtime::{Builder, RunMode, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Spawns a task that sleeps `ms` and then counts one in `count`.
fn count_after(rt: &Runtime, ms: u64, count: &Arc<AtomicUsize>) {
    let count = count.clone();
    rt.spawn(async move {
        rt_core::time::sleep(Duration::from_millis(ms)).await;
        count.fetch_add(1, SeqCst);
    });
}

/// `poll(2)` on one fd: true if readable within `timeout_ms`.
fn readable(fd: i32, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    n == 1
}

#[test]
fn nowait_runs_what_is_ready_and_never_blocks() {
    let rt = runtime();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let c = count.clone();
        rt.spawn(async move {
            c.fetch_add(1, SeqCst);
        });
    }
    // A task that never finishes keeps the runtime alive: NOWAIT must
    // still return at once.
    rt.spawn(async { rt_core::time::sleep(Duration::from_secs(3600)).await });
    let start = Instant::now();
    assert_eq!(rt.run(RunMode::NoWait), 11);
    assert_eq!(count.load(SeqCst), 10);
    assert_eq!(rt.run(RunMode::NoWait), 0);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn nowait_leaves_tasks_woken_during_the_pass_for_the_next_one() {
    let rt = runtime();
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    rt.spawn(async move {
        // Yields forever: a NOWAIT pass must not spin on it.
        loop {
            p.fetch_add(1, SeqCst);
            rt_core::task::yield_now().await;
        }
    });
    for pass in 1..=5 {
        assert_eq!(rt.run(RunMode::NoWait), 1);
        assert_eq!(polls.load(SeqCst), pass);
    }
}

#[test]
fn default_returns_when_no_work_is_left() {
    let rt = runtime();
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..20u64 {
        count_after(&rt, i, &done);
    }
    // A blocking job whose completion spawns a task: the run must wait
    // for it although no task is alive while it runs.
    let handle = rt.handle().clone();
    let d = done.clone();
    rt.handle().spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(50));
        handle.spawn(async move {
            d.fetch_add(1, SeqCst);
        });
    });
    let start = Instant::now();
    let ran = rt.run(RunMode::Default);
    assert_eq!(done.load(SeqCst), 21);
    assert!(ran >= 21, "ran {ran}");
    assert!(start.elapsed() >= Duration::from_millis(50));
    // Nothing alive: returns at once.
    assert_eq!(rt.run(RunMode::Default), 0);
}

#[test]
fn stop_from_another_thread_ends_default() {
    let rt = runtime();
    rt.spawn(async { rt_core::time::sleep(Duration::from_secs(3600)).await });
    let h = rt.handle().clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        h.stop();
    });
    let start = Instant::now();
    rt.run(RunMode::Default);
    let took = start.elapsed();
    t.join().unwrap();
    assert!(took >= Duration::from_millis(40) && took < Duration::from_secs(10));
    // The request was consumed: the task is still there, NOWAIT runs.
    assert_eq!(rt.run(RunMode::NoWait), 0);
    // A stop before the run makes it return at once, once.
    rt.handle().stop();
    rt.handle().stop();
    assert_eq!(rt.run(RunMode::Default), 0);
    let h = rt.handle().clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        h.stop();
    });
    let start = Instant::now();
    rt.run(RunMode::Default);
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "stop counted twice"
    );
    t.join().unwrap();
}

#[test]
fn stop_ends_run_for_early() {
    let rt = runtime();
    let h = rt.handle().clone();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let h = h.clone();
        let c = count.clone();
        rt.spawn(async move {
            if c.fetch_add(1, SeqCst) == 9 {
                h.stop();
            }
        });
    }
    assert_eq!(rt.run_for(Duration::from_secs(10), 1000), 10);
    assert_eq!(rt.run_for(Duration::from_secs(10), 1000), 90);
}

#[test]
fn once_blocks_until_a_task_ran() {
    let rt = runtime();
    let fired = Arc::new(AtomicUsize::new(0));
    count_after(&rt, 30, &fired);
    // First pass polls the task (it starts its sleep): one task ran.
    assert_eq!(rt.run(RunMode::Once), 1);
    let start = Instant::now();
    assert_eq!(rt.run(RunMode::Once), 1);
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(fired.load(SeqCst), 1);
}

#[test]
fn once_is_interrupted_by_wake_and_by_cross_thread_spawn() {
    let rt = runtime();
    let h = rt.handle().clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        h.wake();
    });
    let start = Instant::now();
    assert_eq!(rt.run(RunMode::Once), 0);
    assert!(start.elapsed() >= Duration::from_millis(20));
    t.join().unwrap();
    // A wake before the call makes it return at once (not lost).
    rt.handle().wake();
    assert_eq!(rt.run(RunMode::Once), 0);

    let h = rt.handle().clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        drop(h.spawn(async {}));
    });
    assert_eq!(rt.run(RunMode::Once), 1);
    t.join().unwrap();
}

#[test]
fn backend_fd_is_readable_for_cross_thread_spawn_timer_and_io() {
    let rt = runtime();
    let fd = rt.handle().backend_fd().unwrap();
    assert!(!readable(fd, 0), "readable with nothing to do");
    assert_eq!(rt.handle().backend_timeout(), None);

    // A spawn from another thread.
    let h = rt.handle().clone();
    std::thread::spawn(move || drop(h.spawn(async {})))
        .join()
        .unwrap();
    assert!(readable(fd, 1000));
    assert_eq!(rt.handle().backend_timeout(), Some(Duration::ZERO));
    assert_eq!(rt.run(RunMode::NoWait), 1);
    assert!(!readable(fd, 0));

    // A timer, 100 ms out: always on the wheel's second level, so the wheel
    // has a cascade point before it.
    let fired = Arc::new(AtomicUsize::new(0));
    count_after(&rt, 100, &fired);
    assert_eq!(rt.run(RunMode::NoWait), 1);
    let timeout = rt.handle().backend_timeout().expect("a timer is armed");
    assert!(timeout > Duration::ZERO && timeout <= Duration::from_millis(101));
    assert!(!readable(fd, 0));
    // The fd alone wakes the host, once: at the deadline (not first at the
    // wheel's cascade point, a wakeup that would run nothing).
    let start = Instant::now();
    let mut wakeups = 0;
    while fired.load(SeqCst) == 0 {
        assert!(readable(fd, 2000), "the timer did not make the fd readable");
        rt.run(RunMode::NoWait);
        wakeups += 1;
        assert!(wakeups <= 1, "woken {wakeups} times for one timer");
    }
    assert!(start.elapsed() >= Duration::from_millis(90));
    assert!(
        !readable(fd, 0),
        "readable after the run that fired the timer"
    );

    // An I/O event: a UDP datagram to a socket a task waits on.
    let recv = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = recv.local_addr().unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let task = {
        let _enter = rt.enter();
        let sock = rt_core::net::UdpSocket::from_std(recv).unwrap();
        async move {
            let mut buf = [0u8; 16];
            let n = sock.recv(&mut buf).await.unwrap();
            g.store(n, SeqCst);
        }
    };
    rt.spawn(task);
    assert_eq!(rt.run(RunMode::NoWait), 1);
    assert!(!readable(fd, 0));
    let send = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    send.send_to(b"hello", addr).unwrap();
    assert!(
        readable(fd, 2000),
        "the datagram did not make the fd readable"
    );
    assert_eq!(rt.run(RunMode::NoWait), 1);
    assert_eq!(got.load(SeqCst), 5);
}

#[test]
fn leftover_work_and_wake_make_the_backend_fd_readable() {
    let rt = runtime();
    let fd = rt.handle().backend_fd().unwrap();
    for _ in 0..10 {
        rt.spawn(async {});
    }
    // The spawns came from outside the runtime: readable already.
    assert!(readable(fd, 0));
    assert_eq!(rt.run_for(Duration::from_secs(1), 4), 4);
    assert!(readable(fd, 0), "work left over but the fd is not readable");
    assert_eq!(rt.handle().backend_timeout(), Some(Duration::ZERO));
    assert_eq!(rt.run_for(Duration::from_secs(1), 100), 6);
    assert!(!readable(fd, 0));
    assert_eq!(rt.handle().backend_timeout(), None);

    let h = rt.handle().clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        h.wake();
        h.wake();
    });
    assert!(readable(fd, 2000));
    t.join().unwrap();
    assert_eq!(rt.run(RunMode::NoWait), 0);
    assert!(!readable(fd, 0));
}

#[test]
#[should_panic(expected = "current-thread")]
fn run_panics_on_multi_thread() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.run(RunMode::NoWait);
}

#[test]
fn default_returns_when_the_last_blocking_job_ends() {
    // No task is alive while the jobs run: the run must still wait for
    // them, and be woken when the last one ends.
    let rt = runtime();
    let h = rt.handle().clone();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(10));
        h.stop();
    });
    for _ in 0..200 {
        let start = Instant::now();
        drop(rt.handle().spawn_blocking(|| {}));
        assert_eq!(rt.run(RunMode::Default), 0);
        assert!(start.elapsed() < Duration::from_secs(5), "hung");
    }
    drop(watchdog);
}

#[test]
fn run_until_waits_for_progress_but_not_past_a_wake() {
    let rt = runtime();
    let fired = Arc::new(AtomicUsize::new(0));
    count_after(&rt, 30, &fired);
    // The first pass only starts the sleep: no progress yet, keep waiting.
    let start = Instant::now();
    let f = fired.clone();
    assert_eq!(
        rt.handle().run_until(RunMode::Once, || f.load(SeqCst) > 0),
        2
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    // A pending wake ends the wait even without progress.
    rt.spawn(async { rt_core::time::sleep(Duration::from_secs(3600)).await });
    rt.handle().wake();
    let start = Instant::now();
    assert_eq!(rt.handle().run_until(RunMode::Once, || false), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// A host that waits on the backend fd with `backend_timeout` wakes exactly
/// once per timer deadline: the timeout is the time to the earliest
/// deadline (not to a cascade point of the wheel before it), the fd becomes
/// readable then and not before, and a run that consumed all the work
/// leaves it unreadable.
#[test]
fn the_host_wakes_once_per_timer_deadline() {
    let rt = runtime();
    let fd = rt.handle().backend_fd().unwrap();
    // Timer ticks count from the runtime's start: 40 ms in, a 50 ms timer
    // is due at tick 90, in the wheel's second level, whose slot is
    // processed at tick 64, 24 ms before the deadline.
    std::thread::sleep(Duration::from_millis(40));
    let fired = Arc::new(AtomicUsize::new(0));
    let armed = Instant::now();
    for ms in [50, 120, 200] {
        count_after(&rt, ms, &fired);
    }
    assert_eq!(rt.run(RunMode::NoWait), 3);
    assert!(!readable(fd, 0), "readable after a run with nothing left");
    let timeout = rt.handle().backend_timeout().expect("timers are armed");
    let left = Duration::from_millis(50).saturating_sub(armed.elapsed());
    // The deadline rounds up to the next 1 ms tick.
    assert!(
        timeout + Duration::from_millis(1) >= left && timeout <= left + Duration::from_millis(1),
        "backend_timeout {timeout:?} for a timer due in {left:?}"
    );
    let mut wakeups = Vec::new();
    while fired.load(SeqCst) < 3 && armed.elapsed() < Duration::from_secs(5) {
        let timeout = rt.handle().backend_timeout().expect("timers are armed");
        let ms = i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap();
        // Wait as a host does: the fd, with the timeout as a bound. Only
        // the fd counts as a wakeup; the bound must not be needed.
        let woke = readable(fd, ms + 1000);
        let before = fired.load(SeqCst);
        let ran = rt.run(RunMode::NoWait);
        wakeups.push((armed.elapsed(), woke, ran, fired.load(SeqCst) - before));
        assert!(
            !readable(fd, 0),
            "readable after a run that consumed all the work: {wakeups:?}"
        );
    }
    assert_eq!(fired.load(SeqCst), 3, "{wakeups:?}");
    // At most one wakeup per deadline, none before the first deadline, and
    // every one fires a timer. (A host descheduled past a later deadline
    // may fire two timers in one wakeup.)
    assert!(wakeups.len() <= 3, "{wakeups:?}");
    for (i, &(at, woke, ran, fired)) in wakeups.iter().enumerate() {
        assert!(woke && ran >= 1 && fired >= 1, "wakeup {i}: {wakeups:?}");
        assert!(
            at >= Duration::from_millis(50),
            "woken before the deadline: {wakeups:?}"
        );
    }
    assert_eq!(rt.handle().backend_timeout(), None);
}

#[test]
fn run_for_runs_one_ready_task_even_with_no_budget_left() {
    let rt = runtime();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let c = count.clone();
        rt.spawn(async move {
            c.fetch_add(1, SeqCst);
        });
    }
    // A budget spent before any task could run (a zero budget, or a driver
    // poll that took longer than the budget) still runs one task per call.
    assert_eq!(rt.run_for(Duration::ZERO, 1000), 1);
    assert_eq!(count.load(SeqCst), 1);
    assert_eq!(rt.run_for(Duration::ZERO, 0), 0, "max_tasks 0 runs none");
    assert_eq!(rt.run_for(Duration::ZERO, 1000), 1);
    assert_eq!(rt.run_for(Duration::from_secs(10), 1000), 1);
    assert_eq!(rt.run_for(Duration::ZERO, 1000), 0, "nothing ready");
    assert_eq!(count.load(SeqCst), 3);
}
