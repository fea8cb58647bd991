//! Shutting a runtime down while its drivers hold work: open sockets with
//! pending accepts and reads, pending timers, running and queued blocking
//! closures. Shutdown is bounded, every future is dropped exactly once,
//! queued closures are cancelled, and what outlives the runtime (a `Sleep`,
//! a `TcpStream`) fails cleanly instead of hanging.
//!
//! Each body runs under a watchdog (`with_deadline`); tests that time the
//! shutdown run one at a time (`serial()`).

mod support;

use rt_core::net::{TcpListener, TcpStream};
use rt_core::runtime::{Builder, Runtime};
use rt_core::task::JoinHandle;
use rt_core::time::{interval, sleep, Sleep};
use std::future::Future;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use support::{flavors_with_drivers, serial, wait_until, with_deadline};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A runtime-free executor: polls `fut` on this thread, parking between
/// polls.
fn plain_block_on<F: Future>(fut: F) -> F::Output {
    struct Unparker(std::thread::Thread);
    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Everything a busy server has pending when it is shut down.
struct Pending {
    /// Drops of the async tasks' guards.
    async_drops: Arc<AtomicUsize>,
    async_tasks: usize,
    handles: Vec<JoinHandle<()>>,
    /// Drops of the blocking closures' guards, and how many finished.
    blocking_drops: Arc<AtomicUsize>,
    blocking_done: Arc<AtomicUsize>,
    blocking: usize,
    /// A plain socket whose peer is held by a pending read in the runtime.
    outside_client: std::net::TcpStream,
}

fn load_runtime(rt: &Runtime, blocking_sleep: Duration) -> Pending {
    let async_drops = Arc::new(AtomicUsize::new(0));
    let blocking_drops = Arc::new(AtomicUsize::new(0));
    let blocking_done = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    let outside_client = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An acceptor: serves 9 connections (8 from tasks, 1 from a plain
        // socket), each with a pending read, then waits in accept.
        let (served_tx, served_rx) = rt_core::sync::oneshot::channel::<()>();
        let guard = DropCounter(async_drops.clone());
        let drops = async_drops.clone();
        handles.push(rt_core::spawn(async move {
            let _g = guard;
            for _ in 0..9 {
                let (mut s, _) = listener.accept().await.unwrap();
                let g = DropCounter(drops.clone());
                rt_core::spawn(async move {
                    let _g = g;
                    let mut buf = [0u8; 64];
                    let n = s.read(&mut buf).await;
                    panic!("read completed during the test: {n:?}");
                });
            }
            let _ = served_tx.send(());
            let r = listener.accept().await;
            panic!("accept completed during the test: {:?}", r.map(|c| c.1));
        }));
        for _ in 0..8 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let g = DropCounter(async_drops.clone());
            handles.push(rt_core::spawn(async move {
                let _g = g;
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await;
                panic!("read completed during the test: {n:?}");
            }));
        }
        let outside = rt_core::task::spawn_blocking(move || std::net::TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        served_rx.await.unwrap();
        // Timers of an hour, an interval, and a timer in a never-polled
        // task (spawned last).
        for _ in 0..100 {
            let g = DropCounter(async_drops.clone());
            handles.push(rt_core::spawn(async move {
                let _g = g;
                sleep(Duration::from_secs(3600)).await;
                panic!("an hour passed");
            }));
        }
        let g = DropCounter(async_drops.clone());
        handles.push(rt_core::spawn(async move {
            let _g = g;
            let mut iv = interval(Duration::from_secs(3600));
            iv.tick().await;
            iv.tick().await;
            panic!("an hour passed");
        }));
        // Blocking closures that are running at shutdown.
        for _ in 0..4 {
            let (g, done) = (DropCounter(blocking_drops.clone()), blocking_done.clone());
            drop(rt_core::task::spawn_blocking(move || {
                let _g = g;
                std::thread::sleep(blocking_sleep);
                done.fetch_add(1, SeqCst);
            }));
        }
        // Let everything register.
        sleep(ms(50)).await;
        outside
    });
    // 1 acceptor + 9 served + 8 clients + 100 sleeps + 1 interval.
    let async_tasks = 1 + 9 + 8 + 100 + 1;
    assert_eq!(rt.metrics().num_alive_tasks(), async_tasks);
    assert_eq!(rt.metrics().num_timers(), 101);
    // Listener + 9 served + 8 clients.
    assert!(
        rt.metrics().num_io_registrations() >= 18,
        "{}",
        rt.metrics().num_io_registrations()
    );
    assert_eq!(async_drops.load(SeqCst), 0);
    Pending {
        async_drops,
        async_tasks,
        handles,
        blocking_drops,
        blocking_done,
        blocking: 4,
        outside_client,
    }
}

/// After the shutdown: each async future dropped exactly once, every
/// handle cancelled, the sockets closed (the plain peer reads EOF).
fn check_after_shutdown(name: &str, p: Pending) {
    assert_eq!(
        p.async_drops.load(SeqCst),
        p.async_tasks,
        "{name}: every task's future dropped at shutdown"
    );
    for h in p.handles {
        assert!(h.is_finished(), "{name}");
        let err = plain_block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{name}: {err:?}");
    }
    let mut client = p.outside_client;
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 8];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{name}: the runtime's socket was not closed: {other:?}"),
    }
    // No double drop shows up later.
    std::thread::sleep(ms(50));
    assert_eq!(p.async_drops.load(SeqCst), p.async_tasks, "{name}");
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// shutdown_timeout(1 s) with sockets, timers of an hour and blocking
/// closures sleeping 200 ms: returns within 2 s, drops everything once.
#[test]
fn shutdown_timeout_with_sockets_timers_and_blocking() {
    let _s = serial();
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let p = load_runtime(&rt, ms(200));
            let start = Instant::now();
            rt.shutdown_timeout(Duration::from_secs(1));
            let took = start.elapsed();
            eprintln!("{name}: shutdown_timeout took {took:?}");
            assert!(
                took < Duration::from_secs(2),
                "{name}: shutdown took {took:?}"
            );
            // The blocking closures ran to completion (200 ms < 1 s).
            assert!(
                wait_until(Duration::from_secs(2), || p.blocking_drops.load(SeqCst)
                    == p.blocking),
                "{name}"
            );
            assert_eq!(p.blocking_done.load(SeqCst), p.blocking, "{name}");
            check_after_shutdown(name, p);
        });
    }
}

/// Plain drop: waits for the running blocking closures (200 ms), no more.
#[test]
fn drop_with_sockets_timers_and_blocking() {
    let _s = serial();
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let p = load_runtime(&rt, ms(200));
            let start = Instant::now();
            drop(rt);
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "{name}: drop took {took:?}");
            // Drop waits for the blocking closures.
            assert_eq!(p.blocking_done.load(SeqCst), p.blocking, "{name}");
            assert_eq!(p.blocking_drops.load(SeqCst), p.blocking, "{name}");
            check_after_shutdown(name, p);
        });
    }
}

/// A blocking closure of 3 s does not hold shutdown_timeout(300 ms) (it is
/// detached), nor shutdown_background.
#[test]
fn shutdown_timeout_detaches_long_blocking_closure() {
    let _s = serial();
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let done = Arc::new(AtomicBool::new(false));
            let (started_tx, started_rx) = mpsc::channel();
            let d = done.clone();
            drop(rt.handle().spawn_blocking(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_secs(2));
                d.store(true, SeqCst);
            }));
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let start = Instant::now();
            rt.shutdown_timeout(ms(300));
            let took = start.elapsed();
            assert!(took >= ms(250), "{name}: did not wait at all ({took:?})");
            assert!(took < Duration::from_millis(1500), "{name}: took {took:?}");
            assert!(!done.load(SeqCst), "{name}");
            // The detached closure still finishes on its own.
            assert!(
                wait_until(Duration::from_secs(5), || done.load(SeqCst)),
                "{name}"
            );
        });
    }
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let p = load_runtime(&rt, ms(500));
            let start = Instant::now();
            rt.shutdown_background();
            let took = start.elapsed();
            assert!(took < ms(300), "{name}: shutdown_background took {took:?}");
            assert!(
                wait_until(Duration::from_secs(3), || p.blocking_drops.load(SeqCst)
                    == p.blocking),
                "{name}"
            );
            check_after_shutdown(name, p);
        });
    }
}

/// A task that blocks its worker (a synchronous 1.5 s sleep in async code)
/// does not hold shutdown_timeout(300 ms): the other tasks (sockets,
/// timers) are dropped by the other worker before it returns, the stuck
/// one when it yields.
#[test]
fn shutdown_timeout_with_a_worker_stuck_in_a_task() {
    let _s = serial();
    with_deadline("stuck_worker", 20, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let p = load_runtime(&rt, ms(50));
        let stuck_drops = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = mpsc::channel();
        let g = DropCounter(stuck_drops.clone());
        let stuck = rt.spawn(async move {
            let _g = g;
            started_tx.send(()).unwrap();
            std::thread::sleep(ms(1500));
            sleep(Duration::from_secs(3600)).await;
        });
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let start = Instant::now();
        rt.shutdown_timeout(ms(300));
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "shutdown_timeout took {took:?}"
        );
        assert_eq!(stuck_drops.load(SeqCst), 0, "still running");
        assert!(
            wait_until(Duration::from_secs(3), || p.blocking_drops.load(SeqCst)
                == p.blocking),
            "blocking closures"
        );
        check_after_shutdown("multi_thread", p);
        assert!(
            wait_until(Duration::from_secs(5), || stuck_drops.load(SeqCst) == 1),
            "the stuck task's future is dropped once it yields"
        );
        assert!(plain_block_on(stuck).unwrap_err().is_cancelled());
    });
}

/// max_blocking_threads(1): one closure running, 10 queued. At shutdown the
/// queued ones are dropped without running and report cancelled; the
/// running one completes.
#[test]
fn queued_blocking_closures_cancelled_at_shutdown() {
    let _s = serial();
    let runtimes: Vec<(&str, Runtime)> = vec![
        (
            "current_thread",
            Builder::new_current_thread()
                .max_blocking_threads(1)
                .build()
                .unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(1)
                .build()
                .unwrap(),
        ),
    ];
    for (name, rt) in runtimes {
        with_deadline(name, 20, move || {
            let (started_tx, started_rx) = mpsc::channel();
            let busy = rt.handle().spawn_blocking(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(ms(300));
                "busy done"
            });
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let ran = Arc::new(AtomicUsize::new(0));
            let drops = Arc::new(AtomicUsize::new(0));
            let queued: Vec<_> = (0..10)
                .map(|_| {
                    let (ran, g) = (ran.clone(), DropCounter(drops.clone()));
                    rt.handle().spawn_blocking(move || {
                        let _g = g;
                        ran.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            assert_eq!(rt.metrics().blocking_queue_depth(), 10, "{name}");
            let start = Instant::now();
            drop(rt);
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "{name}: drop took {took:?}");
            assert_eq!(ran.load(SeqCst), 0, "{name}: a queued closure ran");
            assert_eq!(drops.load(SeqCst), 10, "{name}: each dropped exactly once");
            for h in queued {
                assert!(h.is_finished(), "{name}");
                let err = plain_block_on(h).unwrap_err();
                assert!(err.is_cancelled(), "{name}: {err:?}");
            }
            assert_eq!(plain_block_on(busy).unwrap(), "busy done", "{name}");
            std::thread::sleep(ms(20));
            assert_eq!(drops.load(SeqCst), 10, "{name}: no double drop");
        });
    }
}

/// spawn_blocking through a handle after the runtime is gone: cancelled at
/// once, the closure dropped and never run.
#[test]
fn spawn_blocking_after_shutdown_is_cancelled() {
    for (name, rt) in flavors_with_drivers(2) {
        let handle = rt.handle().clone();
        drop(rt);
        let ran = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicUsize::new(0));
        let (r, g) = (ran.clone(), DropCounter(drops.clone()));
        let h = handle.spawn_blocking(move || {
            let _g = g;
            r.store(true, SeqCst);
        });
        let err = plain_block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{name}");
        assert!(!ran.load(SeqCst), "{name}");
        assert_eq!(drops.load(SeqCst), 1, "{name}");
    }
}

/// A Sleep that outlives its runtime: its waker is woken at shutdown and a
/// later poll panics with a clear message (it can never fire), as does a
/// Sleep first polled after the shutdown. Dropping them is fine.
#[test]
fn sleep_outliving_its_runtime() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let waker = Arc::new(CountingWaker::default());
            let (mut registered, mut unpolled): (Sleep, Sleep) = {
                let _e = rt.enter();
                let mut s = sleep(Duration::from_secs(3600));
                let w = Waker::from(waker.clone());
                assert!(Pin::new(&mut s)
                    .poll(&mut Context::from_waker(&w))
                    .is_pending());
                (s, sleep(ms(1)))
            };
            assert_eq!(rt.metrics().num_timers(), 1, "{name}");
            drop(rt);
            assert_eq!(
                waker.0.load(SeqCst),
                1,
                "{name}: the holder of a pending Sleep is woken at shutdown"
            );
            for (what, s) in [("registered", &mut registered), ("unpolled", &mut unpolled)] {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    Pin::new(&mut *s).poll(&mut Context::from_waker(Waker::noop()))
                }));
                match r {
                    Err(p) => {
                        let msg = panic_message(&*p);
                        assert!(
                            msg.contains("shut down"),
                            "{name}/{what}: unclear message {msg:?}"
                        );
                    }
                    Ok(poll) => panic!(
                        "{name}/{what}: polling a Sleep of a dropped runtime gave {poll:?}; \
                         it should panic (it can never fire)"
                    ),
                }
                assert!(!s.is_elapsed(), "{name}/{what}");
            }
            drop(registered);
            drop(unpolled);
        });
    }
}

/// A TcpStream that outlives its runtime: a pending read's waker is woken
/// at shutdown, and reads then fail with an error instead of hanging.
#[test]
fn tcp_stream_outliving_its_runtime() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut stream = rt.block_on(async { TcpStream::connect(addr).await.unwrap() });
            let (_peer, _) = listener.accept().unwrap();
            // Register a read waiter, then drop the runtime.
            let waker = Arc::new(CountingWaker::default());
            {
                let w = Waker::from(waker.clone());
                let mut buf = [0u8; 8];
                let mut read = std::pin::pin!(stream.read(&mut buf));
                assert!(read
                    .as_mut()
                    .poll(&mut Context::from_waker(&w))
                    .is_pending());
            }
            drop(rt);
            assert!(
                waker.0.load(SeqCst) >= 1,
                "{name}: the pending reader was not woken at shutdown"
            );
            let mut buf = [0u8; 8];
            let r = plain_block_on(stream.read(&mut buf));
            let err = r.expect_err("read after shutdown should fail");
            assert!(
                err.to_string().contains("shut down"),
                "{name}: unclear error {err}"
            );
            let w = plain_block_on(stream.write_all(b"x"));
            // Writable readiness may have been recorded before the
            // shutdown; if not, the write reports the shutdown too.
            if let Err(e) = w {
                assert!(e.to_string().contains("shut down"), "{name}: {e}");
            }
            drop(stream);
        });
    }
}

/// Tasks whose destructors touch the drivers during shutdown (register a
/// timer, bind a socket, spawn): no deadlock, no panic escapes.
#[test]
fn destructors_touching_drivers_during_shutdown() {
    struct TouchOnDrop(Arc<AtomicUsize>);
    impl Drop for TouchOnDrop {
        fn drop(&mut self) {
            // A new timer and a spawn from a destructor at shutdown.
            let r = catch_unwind(|| {
                let s = sleep(ms(10));
                drop(s);
            });
            let _ = r;
            let r = catch_unwind(|| drop(rt_core::spawn(async {})));
            let _ = r;
            self.0.fetch_add(1, SeqCst);
        }
    }
    let _s = serial();
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 20, move || {
            let drops = Arc::new(AtomicUsize::new(0));
            for _ in 0..50 {
                let g = TouchOnDrop(drops.clone());
                rt.spawn(async move {
                    let _g = g;
                    sleep(Duration::from_secs(3600)).await;
                });
            }
            rt.block_on(async { sleep(ms(20)).await });
            let start = Instant::now();
            drop(rt);
            assert!(start.elapsed() < Duration::from_secs(2), "{name}");
            assert_eq!(drops.load(SeqCst), 50, "{name}");
        });
    }
}
