//! Host-driven ticks of a current-thread runtime: `Runtime::run_for`.

use rt_core::runtime::Builder;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn runs_at_most_max_tasks_in_fifo_order_across_calls() {
    let rt = Builder::new_current_thread().build().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..100 {
        let o = order.clone();
        rt.spawn(async move { o.lock().unwrap().push(i) });
    }
    let mut total = 0;
    let mut calls = 0;
    while total < 100 {
        let n = rt.run_for(Duration::from_secs(5), 7);
        assert!(n <= 7);
        assert!(n > 0, "made no progress with work left");
        total += n;
        calls += 1;
    }
    assert_eq!(total, 100);
    assert_eq!(calls, 15);
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
    // Nothing left: returns 0 at once.
    let start = Instant::now();
    assert_eq!(rt.run_for(Duration::from_millis(200), 10), 0);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "run_for blocked with no work"
    );
}

#[test]
fn stops_when_the_time_budget_is_spent() {
    let rt = Builder::new_current_thread().build().unwrap();
    let ran = Arc::new(Mutex::new(0usize));
    for _ in 0..1_000 {
        let r = ran.clone();
        rt.spawn(async move {
            // ~1 ms of work per task.
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(1) {
                std::hint::spin_loop();
            }
            *r.lock().unwrap() += 1;
        });
    }
    let start = Instant::now();
    let n = rt.run_for(Duration::from_millis(10), usize::MAX);
    let took = start.elapsed();
    // Budget + one task, with scheduling slack for a loaded machine.
    assert!(
        (1..=11).contains(&n),
        "ran {n} one-ms tasks in a 10 ms budget"
    );
    assert!(took < Duration::from_millis(60), "took {took:?}");
    assert_eq!(*ran.lock().unwrap(), n);
    // The rest is still there and runs later, none lost.
    let mut total = n;
    while total < 1_000 {
        total += rt.run_for(Duration::from_secs(10), usize::MAX);
    }
    assert_eq!(*ran.lock().unwrap(), 1_000);
}

#[test]
fn tasks_woken_from_other_threads_run_on_the_host_thread() {
    let rt = Builder::new_current_thread().build().unwrap();
    let host = std::thread::current().id();
    let (tx, rx) = rt_core::sync::oneshot::channel::<u32>();
    let h = rt.spawn(async move { (rx.await.unwrap(), std::thread::current().id()) });
    assert_eq!(rt.run_for(Duration::from_millis(50), 100), 1); // parks on rx
    let t = std::thread::spawn(move || tx.send(9).unwrap());
    t.join().unwrap();
    assert_eq!(rt.run_for(Duration::from_millis(50), 100), 1);
    assert!(h.is_finished());
    let (v, thread) = rt.block_on(h).unwrap();
    assert_eq!(v, 9);
    assert_eq!(thread, host);
}

#[test]
fn reentrant_call_returns_zero() {
    let rt = Arc::new(Builder::new_current_thread().build().unwrap());
    let inner = Arc::new(Mutex::new(None));
    let (rt2, i2) = (rt.clone(), inner.clone());
    rt.spawn(async move {
        *i2.lock().unwrap() = Some(rt2.run_for(Duration::from_millis(10), 10));
    });
    assert_eq!(rt.run_for(Duration::from_millis(100), 10), 1);
    assert_eq!(*inner.lock().unwrap(), Some(0));
}

#[test]
#[should_panic(expected = "current-thread")]
fn multi_thread_flavor_is_refused() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.run_for(Duration::from_millis(1), 1);
}
