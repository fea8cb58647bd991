//! Abort before the first poll, while pending, after completion.

mod support;

use rt_core::sync::oneshot;
use rt_core::task::yield_now;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use support::{flavors, DropCounter, Pending};

#[test]
fn abort_before_first_poll() {
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let polled = Arc::new(AtomicBool::new(false));
        let guard = DropCounter(drops.clone());
        let p = polled.clone();
        // Spawned from outside: on a current-thread runtime it waits in the
        // queue until block_on runs; a multi-thread worker may run it first.
        let h = rt.spawn(async move {
            let _g = guard;
            p.store(true, Ordering::SeqCst);
        });
        h.abort();
        let res = rt.block_on(h);
        match res {
            Err(e) => {
                assert!(e.is_cancelled(), "{name}: {e}");
                assert!(
                    !polled.load(Ordering::SeqCst),
                    "{name}: cancelled task was polled"
                );
            }
            // On the multi-thread flavor a worker may have run it first.
            Ok(()) => assert!(polled.load(Ordering::SeqCst), "{name}"),
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "{name}: future dropped once"
        );
    }
}

#[test]
fn abort_before_first_poll_current_thread_is_always_cancelled() {
    let rt = rt_core::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCounter(drops.clone());
    let h = rt.spawn(async move {
        let _g = guard;
        panic!("must never run");
    });
    h.abort();
    let err = rt.block_on(h).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn abort_while_pending() {
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(drops.clone());
        let (started_tx, started_rx) = oneshot::channel();
        let h = rt.spawn(async move {
            let _g = guard;
            let _ = started_tx.send(());
            Pending.await;
        });
        rt.block_on(async {
            started_rx.await.unwrap();
            assert!(!h.is_finished());
            h.abort();
            let err = h.await.unwrap_err();
            assert!(err.is_cancelled(), "{name}");
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[test]
fn abort_after_completion_keeps_output() {
    for (name, rt) in flavors() {
        rt.block_on(async {
            let h = rt_core::spawn(async { 42 });
            while !h.is_finished() {
                yield_now().await;
            }
            h.abort();
            assert_eq!(h.await.unwrap(), 42, "{name}");
        });
    }
}

#[test]
fn abort_handle_cancels_and_outlives_join_handle() {
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(drops.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let h = rt.spawn(async move {
            let _g = guard;
            let _ = rx.await;
        });
        let abort = h.abort_handle();
        let abort2 = abort.clone();
        assert_eq!(abort.id(), h.id());
        drop(h); // detach
        abort2.abort();
        // Wait until the runtime dropped the future.
        rt.block_on(async {
            while !abort.is_finished() {
                yield_now().await;
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}");
        assert!(tx.send(()).is_err(), "{name}: receiver must be gone");
    }
}

#[test]
fn self_abort_stops_at_next_await() {
    for (name, rt) in flavors() {
        let reached = Arc::new(AtomicBool::new(false));
        let r = reached.clone();
        let (tx, rx) = oneshot::channel();
        let h = rt.spawn(async move {
            let me = rx.await.unwrap();
            rt_core::task::AbortHandle::abort(&me);
            yield_now().await;
            r.store(true, Ordering::SeqCst);
        });
        tx.send(h.abort_handle()).unwrap();
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{name}");
        assert!(
            !reached.load(Ordering::SeqCst),
            "{name}: ran past the await after abort"
        );
    }
}

#[test]
fn many_concurrent_aborts_drop_each_future_once() {
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2_000)
            .map(|i| {
                let guard = DropCounter(drops.clone());
                rt.spawn(async move {
                    let _g = guard;
                    for _ in 0..(i % 5) {
                        yield_now().await;
                    }
                    i
                })
            })
            .collect();
        let aborters: Vec<_> = handles
            .iter()
            .step_by(2)
            .map(|h| h.abort_handle())
            .collect();
        let t = std::thread::spawn(move || {
            for a in aborters {
                a.abort();
            }
        });
        let (mut ok, mut cancelled) = (0, 0);
        rt.block_on(async {
            for h in handles {
                match h.await {
                    Ok(_) => ok += 1,
                    Err(e) if e.is_cancelled() => cancelled += 1,
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        });
        t.join().unwrap();
        assert_eq!(ok + cancelled, 2_000, "{name}");
        assert!(ok >= 1_000, "{name}: only aborted tasks may be cancelled");
        assert_eq!(drops.load(Ordering::SeqCst), 2_000, "{name}");
    }
}
