//! Runtime shutdown: every future dropped exactly once, no leak, no hang.

mod support;

use rt_core::runtime::Builder;
use rt_core::sync::oneshot;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{flavors, DropCounter, Pending};

#[test]
fn shutdown_with_ten_thousand_pending_tasks() {
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..10_000 {
            let guard = DropCounter(drops.clone());
            handles.push(rt.spawn(async move {
                let _g = guard;
                if i % 2 == 0 {
                    // Some have started and are parked on a future that
                    // never completes, others never get polled at all.
                    Pending.await;
                }
                Pending.await;
            }));
        }
        // Let some of them run.
        rt.block_on(async {
            for _ in 0..50 {
                rt_core::task::yield_now().await;
            }
        });
        let start = Instant::now();
        drop(rt);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name}: shutdown hung"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            10_000,
            "{name}: each future dropped exactly once"
        );
        // Every join handle reports cancellation.
        let rt2 = Builder::new_current_thread().build().unwrap();
        for h in handles {
            assert!(h.is_finished(), "{name}");
            assert!(rt2.block_on(h).unwrap_err().is_cancelled(), "{name}");
        }
    }
}

#[test]
fn spawn_after_shutdown_returns_cancelled_handle() {
    for (name, rt) in flavors() {
        let handle = rt.handle().clone();
        drop(rt);
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(drops.clone());
        let h = handle.spawn(async move {
            let _g = guard;
            1
        });
        assert!(h.is_finished(), "{name}");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}");
        let rt2 = Builder::new_current_thread().build().unwrap();
        assert!(rt2.block_on(h).unwrap_err().is_cancelled(), "{name}");
    }
}

#[test]
fn destructors_that_spawn_during_shutdown_do_not_hang_or_leak() {
    struct SpawnOnDrop(Arc<AtomicUsize>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let d = self.0.clone();
            let guard = DropCounter(d);
            // The runtime is closing: the new task is cancelled at once.
            let h = rt_core::spawn(async move {
                let _g = guard;
            });
            assert!(h.is_finished());
        }
    }
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let s = SpawnOnDrop(drops.clone());
            rt.spawn(async move {
                let _s = s;
                Pending.await;
            });
        }
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), 100, "{name}");
    }
}

#[test]
fn wakes_after_shutdown_are_harmless() {
    for (name, rt) in flavors() {
        let mut senders = Vec::new();
        for _ in 0..1_000 {
            let (tx, rx) = oneshot::channel::<u32>();
            senders.push(tx);
            rt.spawn(async move {
                let _ = rx.await;
            });
        }
        rt.block_on(async {
            for _ in 0..20 {
                rt_core::task::yield_now().await;
            }
        });
        let t = std::thread::spawn(move || {
            for tx in senders {
                let _ = tx.send(1);
            }
        });
        drop(rt);
        t.join().unwrap();
        let _ = name;
    }
}

#[test]
fn shutdown_timeout_returns_despite_a_blocked_worker() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    rt.spawn(async move {
        started_tx.send(()).unwrap();
        // Blocks its worker thread (badly behaved task).
        let _ = rx.recv_timeout(Duration::from_secs(5));
    });
    started_rx.recv().unwrap();
    let start = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(100));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "shutdown_timeout took {took:?}"
    );
    drop(tx);
}

#[test]
fn shutdown_background_does_not_wait() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.spawn(async {
        std::thread::sleep(Duration::from_millis(300));
    });
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    rt.shutdown_background();
    assert!(start.elapsed() < Duration::from_millis(250));
}

#[test]
fn thread_hooks_and_names() {
    let starts = Arc::new(AtomicUsize::new(0));
    let stops = Arc::new(AtomicUsize::new(0));
    let (s1, s2) = (starts.clone(), stops.clone());
    let rt = Builder::new_multi_thread()
        .worker_threads(3)
        .thread_name("rt-test-worker")
        .on_thread_start(move || {
            s1.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            s2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let name = rt.block_on(rt.spawn(async { std::thread::current().name().map(str::to_owned) }));
    assert_eq!(name.unwrap().as_deref(), Some("rt-test-worker"));
    drop(rt);
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    assert_eq!(stops.load(Ordering::SeqCst), 3);
}

#[test]
fn panicking_thread_start_hook_does_not_break_the_runtime() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(|| panic!("hook panicked"))
        .build()
        .unwrap();
    assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
    let start = Instant::now();
    drop(rt);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn foreign_thread_wakes_of_detached_tasks() {
    // A wake from a thread outside the runtime races with the task running
    // to completion and being freed (its JoinHandle is gone).
    for (name, rt) in flavors() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for _ in 0..5_000 {
            let (tx, rx) = oneshot::channel::<u32>();
            senders.push(tx);
            let d = done.clone();
            drop(rt.spawn(async move {
                let _ = rx.await;
                d.fetch_add(1, Ordering::SeqCst);
            }));
        }
        let t = std::thread::spawn(move || {
            for tx in senders {
                let _ = tx.send(1);
            }
        });
        rt.block_on(async {
            while done.load(Ordering::SeqCst) < 5_000 {
                rt_core::task::yield_now().await;
            }
        });
        t.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 5_000, "{name}");
    }
}

#[test]
fn current_thread_dropped_while_another_thread_drives_it() {
    let rt = Builder::new_current_thread().build().unwrap();
    let handle = rt.handle().clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let driver = std::thread::spawn(move || {
        handle.block_on(async move {
            let guard = DropCounter(d);
            rt_core::spawn(async move {
                let _g = guard;
                Pending.await;
            });
            started_tx.send(()).unwrap();
            // Keep driving for a while.
            for _ in 0..200 {
                std::thread::sleep(Duration::from_millis(1));
                rt_core::task::yield_now().await;
            }
        });
    });
    started_rx.recv().unwrap();
    drop(rt);
    driver.join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
