//! A panicking task becomes a JoinError; the runtime keeps working.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::{flavors, DropCounter};

#[test]
fn panic_is_reported_and_runtime_survives() {
    for (name, rt) in flavors() {
        let err = rt
            .block_on(rt.spawn(async {
                panic!("boom in task");
            }))
            .unwrap_err();
        assert!(err.is_panic(), "{name}");
        assert!(!err.is_cancelled(), "{name}");
        assert!(err.to_string().contains("boom in task"), "{name}: {err}");
        let payload = err.into_panic();
        assert_eq!(
            *payload.downcast_ref::<&str>().unwrap(),
            "boom in task",
            "{name}"
        );

        // Many more panics, interleaved with normal tasks: all accounted for.
        let results = rt.block_on(async {
            let hs: Vec<_> = (0..1_000)
                .map(|i| {
                    rt_core::spawn(async move {
                        if i % 3 == 0 {
                            panic!("task {i}");
                        }
                        i
                    })
                })
                .collect();
            let mut out = (0, 0);
            for h in hs {
                match h.await {
                    Ok(_) => out.0 += 1,
                    Err(e) if e.is_panic() => out.1 += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            out
        });
        assert_eq!(results, (666, 334), "{name}");
        assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7, "{name}");
    }
}

#[test]
fn panic_drops_the_future_state_once() {
    for (name, rt) in flavors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(drops.clone());
        let res = rt.block_on(rt.spawn(async move {
            let _g = guard;
            rt_core::task::yield_now().await;
            panic!("after a yield");
        }));
        assert!(res.unwrap_err().is_panic(), "{name}");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[test]
fn panic_in_destructor_of_aborted_task_is_reported_as_panic() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop panicked");
        }
    }
    for (name, rt) in flavors() {
        let (tx, rx) = rt_core::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = rt_core::sync::oneshot::channel::<()>();
        let h = rt.spawn(async move {
            let _p = PanicOnDrop;
            started_tx.send(()).unwrap();
            let _ = rx.await;
        });
        rt.block_on(async {
            // Once it started, its state holds the PanicOnDrop.
            started_rx.await.unwrap();
            h.abort();
            let err = h.await.unwrap_err();
            assert!(err.is_panic(), "{name}: {err}");
        });
        drop(tx);
    }
}

#[test]
fn block_on_future_panic_propagates_and_runtime_is_reusable() {
    let rt = rt_core::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { panic!("in block_on") })
    }));
    assert!(r.is_err());
    // The core was given back: the runtime still works.
    assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
}
