//! A shutdown whose wait times out because every worker is blocked in a
//! task: the tasks no worker got to are cancelled by the shutting-down
//! thread before `shutdown_timeout` returns; only the blocked ones remain.

mod support;

use rt_core::runtime::Builder;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{wait_until, DropCounter, Pending};

#[test]
fn timed_out_shutdown_cancels_what_blocked_workers_left() {
    for workers in [1, 2] {
        let rt = Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicUsize::new(0));
        let blocked_drops = Arc::new(AtomicUsize::new(0));
        for n in 1..=workers {
            let (release, running) = (release.clone(), blocked.clone());
            let guard = DropCounter(blocked_drops.clone());
            drop(rt.spawn(async move {
                let _g = guard;
                running.fetch_add(1, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }));
            // One at a time: each blocks a worker of its own.
            assert!(wait_until(Duration::from_secs(5), || blocked
                .load(Ordering::SeqCst)
                >= n));
        }
        let drops = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let guard = DropCounter(drops.clone());
            drop(rt.spawn(async move {
                let _g = guard;
                Pending.await;
            }));
        }
        rt.shutdown_timeout(Duration::from_millis(50));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            100,
            "{workers} workers: queued tasks outlived the shutdown"
        );
        assert_eq!(blocked_drops.load(Ordering::SeqCst), 0, "still running");
        release.store(true, Ordering::SeqCst);
        assert!(wait_until(Duration::from_secs(5), || blocked_drops
            .load(Ordering::SeqCst)
            == workers));
    }
}
