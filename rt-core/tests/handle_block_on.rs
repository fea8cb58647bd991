//! `Handle::block_on` from outside the runtime's threads, before and after
//! a shutdown, adapted from Tokio's `rt_handle_block_on.rs`.

mod support;

use rt_core::runtime::{Builder, Handle, Runtime};
use rt_core::sync::mpsc;
use rt_core::task::spawn_blocking;
use std::time::Duration;
use support::with_deadline;

fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current_thread",
            Builder::new_current_thread().enable_all().build().unwrap(),
        ),
        (
            "multi_thread_1",
            Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi_thread_4",
            Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ]
}

/// Runs `f` under each runtime's `enter`, then again after its shutdown.
fn with_runtimes(f: impl Fn(&str)) {
    for (name, rt) in runtimes() {
        let _enter = rt.enter();
        f(name);
        rt.shutdown_timeout(Duration::from_secs(1000));
        f(name);
    }
}

#[test]
fn runtime_independent_futures() {
    with_deadline("independent_futures", 60, || {
        with_runtimes(|name| {
            assert_eq!(Handle::current().block_on(async { 1 }), 1, "{name}");
            let (tx, mut rx) = mpsc::channel(1024);
            Handle::current().block_on(tx.send(42)).unwrap();
            assert_eq!(Handle::current().block_on(rx.recv()), Some(42), "{name}");
            let (tx, mut rx) = mpsc::unbounded_channel();
            tx.send(7).unwrap();
            assert_eq!(Handle::current().block_on(rx.recv()), Some(7), "{name}");
        });
    });
}

#[test]
fn spawn_blocking_under_enter() {
    with_deadline("spawn_blocking_under_enter", 60, || {
        for (name, rt) in runtimes() {
            let _enter = rt.enter();
            let answer = Handle::current()
                .block_on(spawn_blocking(|| {
                    std::thread::sleep(Duration::from_millis(20));
                    42
                }))
                .unwrap();
            assert_eq!(answer, 42, "{name}");
            // Started before the shutdown: continues and delivers.
            let join = spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(100));
                43
            });
            rt.shutdown_timeout(Duration::from_secs(1000));
            assert_eq!(Handle::current().block_on(join).unwrap(), 43, "{name}");
            // After the shutdown: cancelled.
            let err = Handle::current()
                .block_on(spawn_blocking(|| 44))
                .unwrap_err();
            assert!(err.is_cancelled(), "{name}");
        }
    });
}

#[test]
fn sleep_through_handle_block_on_multi_thread() {
    with_deadline("sleep_handle_block_on", 30, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let _enter = rt.enter();
        Handle::current().block_on(rt_core::time::sleep(Duration::from_millis(20)));
    });
}

#[test]
fn spawn_after_runtime_dropped() {
    for (name, rt) in runtimes() {
        let handle = rt.block_on(async { Handle::current() });
        let jh1 = handle.spawn(std::future::pending::<()>());
        drop(rt);
        let jh2 = handle.spawn(std::future::pending::<()>());
        let other = Builder::new_current_thread().build().unwrap();
        assert!(other.block_on(jh1).unwrap_err().is_cancelled(), "{name}");
        assert!(other.block_on(jh2).unwrap_err().is_cancelled(), "{name}");
    }
}

#[test]
fn nesting_block_on_panics_with_tokio_message() {
    for (name, rt) in runtimes() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                Handle::current().block_on(async {});
            })
        }));
        let err = r.unwrap_err();
        let msg = err
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap();
        assert!(
            msg.contains(
                "Cannot start a runtime from within a runtime. This happens because a function \
                 (like `block_on`) attempted to block the current thread while the thread is \
                 being used to drive asynchronous tasks."
            ),
            "{name}: {msg}"
        );
    }
}
