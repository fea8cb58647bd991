//! Cooperative scheduling: a task that never stops yielding, or loops on
//! always-ready channels, cannot starve the others.

mod support;

use rt_core::runtime::Runtime;
use rt_core::sync::mpsc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::flavors;

/// Runs `f` on its own thread; fails the test if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("starved: did not finish in time")
}

fn run_with_hog(
    name: &'static str,
    rt: Runtime,
    hog: impl std::future::Future<Output = ()> + Send + 'static,
    stop: Arc<AtomicBool>,
) {
    let done = within(Duration::from_secs(30), move || {
        rt.spawn(hog);
        let done = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let hs: Vec<_> = (0..1_000)
                .map(|_| {
                    let d = done.clone();
                    rt_core::spawn(async move {
                        rt_core::task::yield_now().await;
                        d.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        stop.store(true, Ordering::SeqCst);
        done.load(Ordering::SeqCst)
    });
    assert_eq!(done, 1_000, "{name}");
}

#[test]
fn yield_now_loop_does_not_starve_others() {
    for (name, rt) in flavors() {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let hog = async move {
            while !s.load(Ordering::SeqCst) {
                rt_core::task::yield_now().await;
            }
        };
        run_with_hog(name, rt, hog, stop);
    }
}

#[test]
fn always_ready_channel_loop_is_preempted_by_budget() {
    for (name, rt) in flavors() {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // Never awaits anything that is not ready: only the budget makes it
        // yield.
        let hog = async move {
            let (tx, mut rx) = mpsc::channel::<u32>(1);
            while !s.load(Ordering::SeqCst) {
                tx.send(1).await.unwrap();
                rx.recv().await.unwrap();
            }
        };
        run_with_hog(name, rt, hog, stop);
    }
}

#[test]
fn consume_budget_yields_in_cpu_loops() {
    for (name, rt) in flavors() {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let hog = async move {
            while !s.load(Ordering::SeqCst) {
                rt_core::task::consume_budget().await;
            }
        };
        run_with_hog(name, rt, hog, stop);
    }
}
