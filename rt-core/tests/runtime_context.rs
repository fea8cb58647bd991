//! The runtime context seen by blocking code and by nested runtimes, as in
//! Tokio: `spawn_blocking` closures run inside their runtime's context;
//! `block_in_place` leaves the runtime for its closure (so it may
//! `block_on` another runtime) and comes back afterwards, also when the
//! closure panics; dropping a runtime where blocking is not allowed panics
//! with a clear message (`shutdown_background` is allowed there).

mod support;

use rt_core::net::{TcpListener, UdpSocket};
use rt_core::runtime::{Builder, Handle, Runtime};
use rt_core::task::{block_in_place, spawn_blocking};
use rt_core::time::sleep;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use support::{flavors_with_drivers, with_deadline};

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

const DROP_MSG: &str = "Cannot drop a runtime in a context where blocking is not allowed";

// ---------------------------------------------------------------------------
// spawn_blocking runs inside the runtime's context
// ---------------------------------------------------------------------------

/// Tokio: `spawn`, `sleep` and a socket created inside a `spawn_blocking`
/// closure belong to the closure's runtime.
#[test]
fn spawn_blocking_closure_has_the_runtime_context() {
    for (name, rt) in flavors_with_drivers(2) {
        let v = rt.block_on(async {
            let (task, timer, udp, tcp) = spawn_blocking(|| {
                let task = rt_core::spawn(async { 5 });
                let timer = sleep(Duration::from_millis(5));
                let udp =
                    UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
                let std_tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                std_tcp.set_nonblocking(true).unwrap();
                let tcp = TcpListener::from_std(std_tcp).unwrap();
                (task, timer, udp, tcp)
            })
            .await
            .unwrap();
            timer.await;
            // The socket works on this runtime's reactor.
            let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            peer.send_to(b"hi", udp.local_addr().unwrap())
                .await
                .unwrap();
            let mut buf = [0u8; 4];
            let n = udp.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"hi");
            drop(tcp);
            task.await.unwrap()
        });
        assert_eq!(v, 5, "{name}");
    }
}

/// `Handle::current().block_on` (and `Handle::current()` itself) inside a
/// `spawn_blocking` closure, as Tokio allows.
#[test]
fn block_on_the_current_handle_inside_spawn_blocking() {
    for (name, rt) in flavors_with_drivers(2) {
        let v = rt.block_on(async {
            spawn_blocking(|| {
                let handle = Handle::current();
                handle.block_on(async {
                    sleep(Duration::from_millis(2)).await;
                    rt_core::spawn(async { 7 }).await.unwrap()
                })
            })
            .await
            .unwrap()
        });
        assert_eq!(v, 7, "{name}");
    }
}

/// A blocking closure spawned through a handle from outside the runtime
/// also runs in the runtime's context.
#[test]
fn spawn_blocking_from_a_handle_outside_the_runtime() {
    let rt = multi_thread(1);
    let join = rt.handle().spawn_blocking(|| Handle::try_current().is_ok());
    assert!(rt.block_on(join).unwrap());
}

// ---------------------------------------------------------------------------
// block_in_place leaves the runtime for its closure
// ---------------------------------------------------------------------------

/// On a worker: the closure may `block_on` another runtime (of either
/// flavor), and the current runtime is still the worker's afterwards.
#[test]
fn block_on_another_runtime_inside_block_in_place_on_a_worker() {
    with_deadline("block_in_place_worker", 30, || {
        let outer = multi_thread(2);
        let v = outer.block_on(outer.spawn(async {
            let a = block_in_place(|| {
                // The runtime stays current for the closure.
                let spawned = rt_core::spawn(async { 100 });
                let timer = sleep(Duration::from_millis(1));
                let std_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let udp = UdpSocket::from_std(std_udp).unwrap();
                let handle = Handle::current();
                let z = handle.block_on(async move {
                    timer.await;
                    drop(udp);
                    spawned.await.unwrap()
                });
                assert_eq!(z, 100);
                let inner = current_thread();
                let x = inner.block_on(async {
                    sleep(Duration::from_millis(2)).await;
                    rt_core::spawn(async { 1 }).await.unwrap()
                });
                let inner = multi_thread(1);
                let y = inner.block_on(async { rt_core::spawn(async { 2 }).await.unwrap() });
                x + y
            });
            // Back in the outer runtime.
            let b = rt_core::spawn(async { 10 }).await.unwrap();
            a + b
        }));
        assert_eq!(v.unwrap(), 13);
    });
}

/// On the thread inside a multi-thread runtime's `block_on` (no core to
/// hand off): the closure still leaves the runtime, as in Tokio.
#[test]
fn block_on_another_runtime_inside_block_in_place_on_the_block_on_thread() {
    with_deadline("block_in_place_block_on_thread", 30, || {
        let outer = multi_thread(1);
        let v = outer.block_on(async {
            let a = block_in_place(|| {
                let inner = current_thread();
                inner.block_on(async { rt_core::spawn(async { 1 }).await.unwrap() })
            });
            // The outer runtime's `Handle::block_on` too.
            let b = block_in_place(|| Handle::current().block_on(async { 2 }));
            a + b
        });
        assert_eq!(v, 3);
    });
}

/// The runtime state comes back after the closure, also when it panics:
/// a nested `block_on` is refused again.
#[test]
fn block_in_place_restores_the_runtime_after_a_panic() {
    let outer = multi_thread(2);
    let join = outer.spawn(async {
        let r = catch_unwind(AssertUnwindSafe(|| block_in_place(|| panic!("boom"))));
        assert!(r.is_err());
        assert!(rt_core::runtime::is_runtime_thread());
        let nested = catch_unwind(AssertUnwindSafe(|| {
            current_thread().block_on(async {});
        }));
        let msg = panic_message(&*nested.unwrap_err());
        assert!(
            msg.contains("Cannot start a runtime from within a runtime"),
            "{msg}"
        );
        rt_core::spawn(async { 4 }).await.unwrap()
    });
    assert_eq!(outer.block_on(join).unwrap(), 4);
    let v = outer.block_on(async {
        let r = catch_unwind(AssertUnwindSafe(|| block_in_place(|| panic!("boom"))));
        assert!(r.is_err());
        rt_core::runtime::is_runtime_thread()
    });
    assert!(v);
}

// ---------------------------------------------------------------------------
// Dropping a runtime where blocking is not allowed
// ---------------------------------------------------------------------------

/// Tokio panics with a clear message when a runtime is dropped from inside
/// an asynchronous context (a task or a `block_on`), for both flavors of
/// the dropped runtime.
#[test]
fn dropping_a_runtime_inside_a_task_panics() {
    with_deadline("drop_in_task", 30, || {
        let outer = multi_thread(2);
        for (name, inner) in flavors_with_drivers(1) {
            let err = outer
                .block_on(outer.spawn(async move { drop(inner) }))
                .unwrap_err();
            assert!(err.is_panic(), "{name}");
            let msg = panic_message(&*err.into_panic());
            assert!(msg.contains(DROP_MSG), "{name}: {msg}");
        }
        // The outer runtime still works.
        assert_eq!(outer.block_on(outer.spawn(async { 1 })).unwrap(), 1);
    });
}

#[test]
fn dropping_a_runtime_inside_block_on_panics() {
    with_deadline("drop_in_block_on", 30, || {
        for (name, outer) in flavors_with_drivers(1) {
            let inner = multi_thread(1);
            let r = catch_unwind(AssertUnwindSafe(|| {
                outer.block_on(async move { drop(inner) })
            }));
            let msg = panic_message(&*r.unwrap_err());
            assert!(msg.contains(DROP_MSG), "{name}: {msg}");
            // A timed shutdown waits too: same answer.
            let inner = multi_thread(1);
            let r = catch_unwind(AssertUnwindSafe(|| {
                outer.block_on(async move { inner.shutdown_timeout(Duration::from_secs(1)) })
            }));
            let msg = panic_message(&*r.unwrap_err());
            assert!(msg.contains(DROP_MSG), "{name}: {msg}");
        }
    });
}

/// `shutdown_background` does not wait, so it is allowed there; so is a
/// zero timeout.
#[test]
fn shutdown_background_inside_async_context_is_allowed() {
    with_deadline("shutdown_background_in_async", 30, || {
        let outer = multi_thread(2);
        let inner = multi_thread(1);
        let h = inner.handle().clone();
        outer
            .block_on(outer.spawn(async move { inner.shutdown_background() }))
            .unwrap();
        // The dropped runtime refuses new work.
        assert!(outer
            .block_on(h.spawn(async {}))
            .unwrap_err()
            .is_cancelled());
        let inner = current_thread();
        outer.block_on(async move { inner.shutdown_timeout(Duration::ZERO) });
    });
}

/// Outside any runtime (and inside `block_in_place`, which leaves it),
/// dropping a runtime is fine.
#[test]
fn dropping_a_runtime_inside_block_in_place_is_allowed() {
    with_deadline("drop_in_block_in_place", 30, || {
        let outer = multi_thread(2);
        let inner = multi_thread(1);
        outer
            .block_on(outer.spawn(async move { block_in_place(move || drop(inner)) }))
            .unwrap();
    });
}

/// Tokio refuses `block_in_place` inside a current-thread runtime's
/// `block_on`, also when that `block_on` only waits because another thread
/// drives the runtime (no scheduler context on this thread, but inside the
/// runtime all the same).
#[test]
fn block_in_place_in_a_waiting_current_thread_block_on_panics() {
    with_deadline("block_in_place_waiting_ct_block_on", 30, || {
        let rt = current_thread();
        let handle = rt.handle().clone();
        let (stop_tx, stop_rx) = rt_core::sync::oneshot::channel::<()>();
        let (driving_tx, driving_rx) = std::sync::mpsc::channel();
        let driver = std::thread::spawn(move || {
            rt.block_on(async move {
                driving_tx.send(()).unwrap();
                let _ = stop_rx.await;
            });
        });
        driving_rx.recv().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            handle.block_on(async { block_in_place(|| 1) })
        }));
        let msg = panic_message(&*r.unwrap_err());
        assert!(msg.contains("multi-thread"), "{msg}");
        stop_tx.send(()).unwrap();
        driver.join().unwrap();
    });
}

// ---------------------------------------------------------------------------
// Blocking sections are not subject to the cooperative budget
// ---------------------------------------------------------------------------

/// A minimal executor that, unlike the runtime's, never resets the
/// cooperative budget (like `futures::executor::block_on`).
fn foreign_block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// Tokio's `coop_disabled_in_block_in_place` (and `_in_block_on`): 200
/// receives inside `block_in_place`, on a foreign executor, must not run
/// out of budget (which would leave them pending forever).
#[test]
fn coop_budget_disabled_in_block_in_place() {
    with_deadline("coop_block_in_place", 30, || {
        let outer = multi_thread(2);
        let (tx, mut rx) = rt_core::sync::mpsc::unbounded_channel();
        for i in 0..200 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let n = outer.block_on(outer.spawn(async move {
            block_in_place(move || {
                foreign_block_on(async move {
                    let mut n = 0;
                    while rx.recv().await.is_some() {
                        n += 1;
                    }
                    n
                })
            })
        }));
        assert_eq!(n.unwrap(), 200);
        // The same on the block_on thread.
        let (tx, mut rx) = rt_core::sync::mpsc::unbounded_channel();
        for i in 0..200 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let n = outer.block_on(async move {
            block_in_place(move || {
                foreign_block_on(async move {
                    let mut n = 0;
                    while rx.recv().await.is_some() {
                        n += 1;
                    }
                    n
                })
            })
        });
        assert_eq!(n, 200);
    });
}

/// Tokio's `block_in_block` and `block_in_blocking`: nested
/// `block_in_place`, and `block_in_place` inside `spawn_blocking`.
#[test]
fn nested_block_in_place_and_inside_spawn_blocking() {
    with_deadline("nested_block_in_place", 30, || {
        let rt = multi_thread(2);
        for _ in 0..20 {
            let v = rt.block_on(rt.spawn(async {
                block_in_place(|| {
                    block_in_place(|| std::thread::sleep(Duration::from_millis(1)));
                    "hello"
                })
            }));
            assert_eq!(v.unwrap(), "hello");
            let v = rt.block_on(rt.spawn(async {
                spawn_blocking(|| {
                    block_in_place(|| std::thread::sleep(Duration::from_millis(1)));
                    "hello"
                })
                .await
                .unwrap()
            }));
            assert_eq!(v.unwrap(), "hello");
        }
    });
}

/// Tokio's `useful_panic_message_when_dropping_rt_in_rt`: the payload is
/// a `&'static str`.
#[test]
fn drop_panic_payload_is_a_static_str() {
    let outer = multi_thread(1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        outer.block_on(async {
            let _ = Builder::new_current_thread().build().unwrap();
        })
    }));
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<&'static str>().unwrap();
    assert!(msg.contains("Cannot drop a runtime"), "{msg}");
}

/// Tokio's `spawn_blocking_from_blocking` and `sleep_from_blocking`: a
/// nested `spawn_blocking`, and a timer awaited on a foreign executor
/// inside a blocking closure (the runtime's driver fires it).
#[test]
fn spawn_blocking_and_sleep_from_blocking() {
    with_deadline("from_blocking", 30, || {
        for (name, rt) in flavors_with_drivers(2) {
            let out = rt.block_on(async {
                let inner = spawn_blocking(|| spawn_blocking(|| "hello")).await.unwrap();
                inner.await.unwrap()
            });
            assert_eq!(out, "hello", "{name}");
            rt.block_on(async {
                spawn_blocking(|| {
                    let start = std::time::Instant::now();
                    let dur = Duration::from_millis(5);
                    foreign_block_on(sleep(dur));
                    assert!(start.elapsed() >= dur);
                })
                .await
                .unwrap()
            });
        }
    });
}

// ---------------------------------------------------------------------------
// Thread hooks run inside the runtime's context
// ---------------------------------------------------------------------------

/// Tokio runs `on_thread_start` / `on_thread_stop` with the runtime entered
/// (its pool threads enter it for their lifetime): `Handle::current()`
/// works there, on worker threads and blocking threads alike.
#[test]
fn thread_hooks_see_the_runtime() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    with_deadline("thread_hooks_context", 30, || {
        for multi in [false, true] {
            let with = Arc::new(AtomicUsize::new(0));
            let without = Arc::new(AtomicUsize::new(0));
            let mut b = if multi {
                let mut b = Builder::new_multi_thread();
                b.worker_threads(2);
                b
            } else {
                Builder::new_current_thread()
            };
            let (w1, wo1) = (with.clone(), without.clone());
            let (w2, wo2) = (with.clone(), without.clone());
            let rt = b
                .on_thread_start(move || {
                    let c = if Handle::try_current().is_ok() {
                        &w1
                    } else {
                        &wo1
                    };
                    c.fetch_add(1, SeqCst);
                })
                .on_thread_stop(move || {
                    let c = if Handle::try_current().is_ok() {
                        &w2
                    } else {
                        &wo2
                    };
                    c.fetch_add(1, SeqCst);
                })
                .build()
                .unwrap();
            rt.block_on(async { spawn_blocking(|| ()).await.unwrap() });
            rt.shutdown_timeout(Duration::from_secs(10));
            assert_eq!(without.load(SeqCst), 0, "multi: {multi}");
            // Start and stop of every thread (2 workers + 1 blocking, or 1).
            let threads = if multi { 3 } else { 1 };
            assert_eq!(with.load(SeqCst), 2 * threads, "multi: {multi}");
        }
    });
}

/// A runtime dropped while a task unwinds (from another panic) does not
/// panic again (that would abort the process): the task's own panic is
/// what its JoinHandle reports.
#[test]
fn runtime_dropped_during_unwinding_in_a_task() {
    with_deadline("drop_during_unwind", 30, || {
        let outer = multi_thread(2);
        let inner = multi_thread(1);
        let err = outer
            .block_on(outer.spawn(async move {
                let _inner = inner;
                panic!("first panic");
            }))
            .unwrap_err();
        let msg = panic_message(&*err.into_panic());
        assert!(msg.contains("first panic"), "{msg}");
    });
}
