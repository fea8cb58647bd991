//! Tokio's own integration tests, adapted to rt-core's API (written from
//! tokio/tests/io_async_fd.rs, rt_common.rs and rt_threaded.rs): what an
//! AsyncFd wait sees when its runtime is dropped (before, during, after the
//! wait), the last-poller-only slot of `poll_read_ready` next to the
//! any-number `readable()`, wakes from destructors and thread-locals while
//! a runtime drops, futures dropped eagerly at shutdown, spawns racing a
//! drop, and `block_in_place` around nested `block_on`s.

mod support;

use rt_core::io::AsyncFd;
use rt_core::runtime::{Builder, Handle, Runtime};
use rt_core::sync::oneshot;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use support::one_worker_one_blocking_thread;

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn socketpair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// A waker that unparks the thread waiting on it and counts its wakes.
struct ThreadWaker {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.thread.unpark();
    }
}

fn thread_waker() -> (Arc<ThreadWaker>, Waker) {
    let w = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    (w.clone(), Waker::from(w))
}

/// A plain executor outside any runtime (`futures::executor::block_on`),
/// with a time limit so that a lost wake fails the test instead of hanging.
fn block_on_outside<F: Future>(f: F) -> F::Output {
    let (_, waker) = thread_waker();
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        let now = std::time::Instant::now();
        assert!(now < deadline, "no wake within 10 s");
        std::thread::park_timeout(deadline - now);
    }
}

/// Polls `f` once with a waker that does nothing; it must be pending.
fn assert_pending<F: Future>(f: F) -> std::pin::Pin<Box<F>> {
    let mut f = Box::pin(f);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(f.as_mut().poll(&mut cx).is_pending());
    f
}

fn fill(s: &UnixStream) {
    let mut s = s;
    while s.write(&[0; 512]).is_ok() {}
}

fn drain(s: &UnixStream) {
    let mut s = s;
    let mut buf = [0; 4096];
    while s.read(&mut buf).is_ok_and(|n| n > 0) {}
}

// ---- io_async_fd.rs: driver shutdown ----

/// A current-thread runtime with one end of a socket pair registered on
/// its driver, and the other end (kept open: dropping it makes the first
/// readable).
fn registered_on_current_thread() -> (Runtime, AsyncFd<UnixStream>, UnixStream) {
    let rt = current_thread();
    let (a, b) = socketpair();
    let afd = {
        let _enter = rt.enter();
        AsyncFd::new(a).unwrap()
    };
    (rt, afd, b)
}

#[test]
fn driver_shutdown_wakes_currently_pending() {
    let (rt, afd, _b) = registered_on_current_thread();
    let readable = assert_pending(afd.readable());
    drop(rt);
    // Started before the drop: woken, with an error.
    assert!(block_on_outside(readable).is_err());
    // Started after it: an error at once.
    assert!(block_on_outside(afd.readable()).is_err());
}

#[test]
fn driver_shutdown_wakes_future_pending() {
    let (rt, afd, _b) = registered_on_current_thread();
    drop(rt);
    assert!(block_on_outside(afd.readable()).is_err());
}

#[test]
fn driver_shutdown_wakes_pending_race() {
    for _ in 0..100 {
        let (rt, afd, _b) = registered_on_current_thread();
        let dropper = std::thread::spawn(move || drop(rt));
        // Either result, but woken.
        let _ = block_on_outside(afd.readable());
        // Once the drop is over, always an error.
        dropper.join().unwrap();
        assert!(block_on_outside(afd.readable()).is_err());
    }
}

async fn poll_readable<T: std::os::unix::io::AsRawFd>(fd: &AsyncFd<T>) -> io::Result<()> {
    poll_fn(|cx| fd.poll_read_ready(cx)).await.map(drop)
}

async fn poll_writable<T: std::os::unix::io::AsRawFd>(fd: &AsyncFd<T>) -> io::Result<()> {
    poll_fn(|cx| fd.poll_write_ready(cx)).await.map(drop)
}

#[test]
fn driver_shutdown_wakes_currently_pending_polls() {
    let (rt, afd, _b) = registered_on_current_thread();
    fill(afd.get_ref()); // not writable
    let readable = assert_pending(poll_readable(&afd));
    let writable = assert_pending(poll_writable(&afd));
    drop(rt);
    assert!(block_on_outside(readable).is_err());
    assert!(block_on_outside(writable).is_err());
}

#[test]
fn driver_shutdown_wakes_poll() {
    let (rt, afd, _b) = registered_on_current_thread();
    drop(rt);
    assert!(block_on_outside(poll_readable(&afd)).is_err());
    assert!(block_on_outside(poll_writable(&afd)).is_err());
}

#[test]
fn driver_shutdown_wakes_poll_race() {
    for _ in 0..100 {
        let (rt, afd, _b) = registered_on_current_thread();
        fill(afd.get_ref());
        let dropper = std::thread::spawn(move || drop(rt));
        dropper.join().unwrap();
        // The poll variants always fail once the driver is gone.
        assert!(block_on_outside(poll_readable(&afd)).is_err());
        assert!(block_on_outside(poll_writable(&afd)).is_err());
    }
}

/// The same on a multi-thread runtime, waits on other threads: the drop
/// wakes every waiter with an error (none hangs; a lost wake would only end
/// at `block_on_outside`'s 10 s limit, so the test measures it).
#[test]
fn driver_shutdown_wakes_waiting_tasks_multi_thread() {
    for _ in 0..20 {
        let rt = multi_thread();
        let (a, _b) = socketpair();
        // Full before it is registered: the workers turn the driver, which
        // would otherwise record the first "writable" edge.
        fill(&a);
        let afd = {
            let _enter = rt.enter();
            Arc::new(AsyncFd::new(a).unwrap())
        };
        let results = Arc::new(Mutex::new(Vec::new()));
        let t0 = std::time::Instant::now();
        let started = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let (afd, results, started) = (afd.clone(), results.clone(), started.clone());
                std::thread::spawn(move || {
                    let r = block_on_outside(async {
                        started.fetch_add(1, SeqCst);
                        // One poller in the write slot (it keeps the last
                        // poller only), the others in the waiter lists.
                        match i {
                            0 => poll_writable(&afd).await,
                            1 => afd.writable().await.map(drop),
                            _ => afd.readable().await.map(drop),
                        }
                    });
                    results.lock().unwrap().push(r.is_err());
                })
            })
            .collect();
        while started.load(SeqCst) < 4 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(2));
        drop(rt);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*results.lock().unwrap(), vec![true; 4]);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "a waiter was not woken by the drop"
        );
    }
}

// ---- io_async_fd.rs: poll_fns ----

/// `poll_read_ready` keeps the last poller only (the first waker is not
/// woken); `readable()` is independent of it; read readiness does not wake
/// the write slot, and the write slot stays registered.
#[test]
fn poll_fns() {
    for rt in both_flavors() {
        poll_fns_on(rt);
    }
}

fn poll_fns_on(rt: Runtime) {
    rt.block_on(async {
        let (a, b) = socketpair();
        // Full before it is registered (a multi-thread runtime's workers
        // would otherwise record its first "writable" edge).
        fill(&a);
        let afd_a = Arc::new(AsyncFd::new(a).unwrap());
        let afd_b = Arc::new(AsyncFd::new(b).unwrap());

        let (first, waker) = thread_waker();
        assert!(afd_a
            .poll_read_ready(&mut Context::from_waker(&waker))
            .is_pending());

        let (r_tx, r_rx) = oneshot::channel();
        let a2 = afd_a.clone();
        let read_task = rt_core::spawn(async move {
            let mut polled = false;
            poll_fn(|cx| {
                if !polled {
                    polled = true;
                    assert!(a2.poll_read_ready(cx).is_pending());
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
            r_tx.send(()).unwrap();
            poll_readable(&a2).await.unwrap();
        });
        let (w_tx, w_rx) = oneshot::channel();
        let a3 = afd_a.clone();
        let mut write_task = rt_core::spawn(async move {
            assert!(poll_fn(|cx| Poll::Ready(a3.poll_write_ready(cx).is_pending())).await);
            w_tx.send(()).unwrap();
            poll_writable(&a3).await.unwrap();
        });
        r_rx.await.unwrap();
        w_rx.await.unwrap();

        let mut readable = pin!(afd_a.readable());
        assert!(poll_fn(|cx| Poll::Ready(readable.as_mut().poll(cx).is_pending())).await);

        // Readable now: `readable` and the read task both complete.
        let mut writer = afd_b.get_ref();
        writer.write_all(b"0").unwrap();
        readable.await.unwrap();
        read_task.await.unwrap();
        assert!(
            !first.woken.load(SeqCst),
            "the slot keeps the last poller only"
        );

        // The write side was not woken.
        rt_core::time::sleep(Duration::from_millis(5)).await;
        assert!(
            poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut write_task).poll(cx).is_pending()))
                .await
        );

        // Writable now: the write slot's waker is still registered.
        drain(afd_b.get_ref());
        rt_core::time::timeout(Duration::from_secs(10), write_task)
            .await
            .expect("the write slot was woken")
            .unwrap();
    });
}

// ---- rt_common.rs ----

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn both_flavors() -> [Runtime; 2] {
    [current_thread(), multi_thread()]
}

/// A multi-thread runtime with a single worker and no drivers.
fn one_worker() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap()
}

/// Spawns `task` on `rt`, waits for it and fails if it panicked.
fn spawned_and_joined<F>(rt: &Runtime, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move { rt_core::spawn(task).await.unwrap() })
}

/// Two tasks each waiting on a oneshot whose sender the other one owns:
/// whichever the drop cancels first wakes the other from its destructor,
/// while the runtime shuts down.
#[test]
fn wake_while_rt_is_dropping() {
    for rt in both_flavors() {
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        let polled = Arc::new(AtomicUsize::new(0));
        for (tx, rx) in [(tx2, rx1), (tx1, rx2)] {
            let polled = polled.clone();
            rt.spawn(async move {
                let mut tx = Some(tx);
                let _d = OnDrop(move || {
                    let _ = tx.take().unwrap().send(());
                });
                let mut rx = pin!(rx);
                // Stores a waker in the channel, then waits.
                poll_fn(|cx| {
                    if rx.as_mut().poll(cx).is_pending() {
                        polled.fetch_add(1, SeqCst);
                    }
                    Poll::Ready(())
                })
                .await;
                let _ = rx.await;
            });
        }
        rt.block_on(async {
            while polled.load(SeqCst) < 2 {
                rt_core::task::yield_now().await;
            }
        });
        drop(rt);
    }
}

#[test]
fn eagerly_drops_futures_on_shutdown() {
    for rt in both_flavors() {
        struct Never {
            drop_tx: std::sync::mpsc::Sender<()>,
        }
        impl Future for Never {
            type Output = ();
            fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Pending
            }
        }
        impl Drop for Never {
            fn drop(&mut self) {
                self.drop_tx.send(()).unwrap();
            }
        }
        let (drop_tx, drop_rx) = std::sync::mpsc::channel();
        let (run_tx, run_rx) = oneshot::channel();
        rt.block_on(async move {
            rt_core::spawn(async move {
                run_tx.send(()).unwrap();
                Never { drop_tx }.await
            });
            run_rx.await.unwrap();
        });
        drop(rt);
        drop_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}

/// A receive loop that sleeps inside a task while a sender keeps the
/// socket busy, across runtime drops.
#[test]
fn io_notify_while_shutting_down() {
    use rt_core::net::UdpSocket;
    for i in 0..10 {
        let rt = if i % 2 == 0 {
            current_thread()
        } else {
            multi_thread()
        };
        rt.block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            let send_half = Arc::new(socket);
            let recv_half = send_half.clone();
            rt_core::spawn(async move {
                let mut buf = [0];
                loop {
                    recv_half.recv_from(&mut buf).await.unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            rt_core::spawn(async move {
                let buf = [0];
                loop {
                    send_half.send_to(&buf, addr).await.unwrap();
                    rt_core::time::sleep(Duration::from_millis(1)).await;
                }
            });
            rt_core::time::sleep(Duration::from_millis(5)).await;
        });
    }
}

#[test]
fn shutdown_timeout_0_does_not_wait_for_a_blocking_job() {
    for rt in both_flavors() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        rt.block_on(async move {
            rt_core::task::spawn_blocking(move || {
                let _ = rx.recv_timeout(Duration::from_secs(30));
            });
        });
        let now = std::time::Instant::now();
        rt.shutdown_timeout(Duration::from_nanos(0));
        assert!(now.elapsed() < Duration::from_secs(1));
        drop(tx);
    }
}

/// 10,000 tasks wait on oneshots a thread completes while the runtime drops.
#[test]
fn shutdown_concurrent_spawn() {
    const NUM_TASKS: usize = 10_000;
    for round in 0..4 {
        let rt = if round % 2 == 0 {
            multi_thread()
        } else {
            current_thread()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut txs = vec![];
        for _ in 0..NUM_TASKS {
            let (tx, rx) = oneshot::channel::<()>();
            txs.push(tx);
            rt.spawn(async move {
                rx.await.unwrap();
            });
        }
        rt.block_on(rt_core::task::yield_now());
        let th = std::thread::spawn(move || {
            tx.send(()).unwrap();
            for tx in txs.drain(..) {
                let _ = tx.send(());
            }
        });
        rx.recv().unwrap();
        drop(rt);
        th.join().unwrap();
    }
}

/// A waker kept in a thread-local is woken by its destructor when the
/// thread exits, after the runtime that thread created was dropped.
fn wake_from_thread_local(by_ref: bool, multi: bool) {
    use std::cell::RefCell;
    use std::sync::mpsc::{channel, Sender};

    struct TlData {
        by_ref: bool,
        waker: Option<Waker>,
        done: Sender<bool>,
    }

    impl Drop for TlData {
        fn drop(&mut self) {
            if self.by_ref {
                self.waker.take().unwrap().wake_by_ref();
            } else {
                self.waker.take().unwrap().wake();
            }
            let _ = self.done.send(true);
        }
    }

    std::thread_local! {
        static TL_DATA: RefCell<Option<TlData>> = const { RefCell::new(None) };
    }

    let (send, recv) = channel();
    std::thread::spawn(move || {
        let rt = if multi {
            multi_thread()
        } else {
            current_thread()
        };
        rt.block_on(rt.spawn(poll_fn(move |cx| {
            let waker = cx.waker().clone();
            let send = send.clone();
            TL_DATA.with(|tl| {
                tl.replace(Some(TlData {
                    by_ref,
                    waker: Some(waker),
                    done: send,
                }));
            });
            Poll::Ready(())
        })))
        .unwrap();
    })
    .join()
    .unwrap();
    // Current-thread: the task ran on this thread, so its data is dropped
    // at this thread's exit; multi-thread: at a worker's exit.
    assert!(recv.recv_timeout(Duration::from_secs(10)).unwrap());
}

#[test]
fn wake_by_ref_from_thread_local() {
    wake_from_thread_local(true, false);
    wake_from_thread_local(true, true);
}

#[test]
fn wake_by_val_from_thread_local() {
    wake_from_thread_local(false, false);
    wake_from_thread_local(false, true);
}

// ---- rt_threaded.rs ----

/// A future whose destructor wakes the other one's stored waker, while the
/// runtime drops both (tokio-rs/tokio#3869).
#[test]
fn wake_during_shutdown() {
    struct Shared {
        waker: Option<Waker>,
    }
    struct MyFuture {
        shared: Arc<Mutex<Shared>>,
        put_waker: bool,
    }
    impl Future for MyFuture {
        type Output = ();
        fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let me = std::pin::Pin::into_inner(self);
            let mut lock = me.shared.lock().unwrap();
            if me.put_waker {
                lock.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }
    impl Drop for MyFuture {
        fn drop(&mut self) {
            let mut lock = self.shared.lock().unwrap();
            if !self.put_waker {
                lock.waker.take().unwrap().wake();
            }
            drop(lock);
        }
    }
    for rt in both_flavors() {
        let shared = Arc::new(Mutex::new(Shared { waker: None }));
        let f1 = MyFuture {
            shared: shared.clone(),
            put_waker: true,
        };
        let f2 = MyFuture {
            shared,
            put_waker: false,
        };
        rt.spawn(async move {
            rt_core::time::sleep(Duration::from_millis(20)).await;
            f1.await;
        });
        rt.spawn(async move {
            rt_core::time::sleep(Duration::from_millis(30)).await;
            f2.await;
        });
        rt.block_on(async {
            rt_core::time::sleep(Duration::from_millis(100)).await;
        });
        drop(rt);
    }
}

/// `block_in_place` inside a `Handle::block_on` inside a `block_in_place`,
/// with one worker and one blocking thread (tokio-rs/tokio#5239).
#[test]
fn nested_block_in_place_with_block_on_between() {
    let rt = one_worker_one_blocking_thread();
    for _ in 0..100 {
        let h = rt.handle().clone();
        spawned_and_joined(&rt, async move {
            rt_core::task::block_in_place(|| {
                h.block_on(async {
                    rt_core::task::block_in_place(|| {});
                });
            })
        });
    }
}

#[test]
fn yield_now_in_block_in_place() {
    spawned_and_joined(&one_worker(), async {
        rt_core::task::block_in_place(|| {
            Handle::current().block_on(rt_core::task::yield_now());
        })
    })
}

/// A task woken into the LIFO slot of a worker that then blocks is stolen
/// by another worker (tokio-rs/tokio#4941).
#[test]
fn lifo_stealable() {
    let (block_tx, block_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel();
    let (notify_tx, notify_rx) = oneshot::channel();
    let rt = Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let churn = rt_core::spawn(async move {
            loop {
                rt_core::time::sleep(Duration::from_millis(4)).await;
            }
        });
        let victim = rt_core::spawn(async move {
            started_tx.send(()).unwrap();
            notify_rx.await.unwrap();
        });
        started_rx.await.unwrap();
        rt_core::spawn(async move {
            notify_tx.send(()).unwrap();
            let _ = block_rx.recv();
        });
        let result = rt_core::time::timeout(Duration::from_secs(30), victim).await;
        block_tx.send(()).unwrap();
        churn.abort();
        result
            .expect("a task in the LIFO slot of a blocked worker is stolen")
            .unwrap();
    })
}

/// Entering a new runtime inside `block_in_place`, then yielding, on a
/// single worker (rt_threaded.rs).
#[test]
fn yield_after_block_in_place() {
    spawned_and_joined(&one_worker(), async move {
        rt_core::task::block_in_place(|| {
            let inner = Builder::new_current_thread().build().unwrap();
            inner.block_on(async {});
        });
        rt_core::task::yield_now().await;
    });
}

/// After a `block_in_place` the task's budget applies again: a receive
/// loop over a full channel is made to yield (rt_threaded.rs).
#[test]
fn coop_and_block_in_place() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = rt_core::sync::mpsc::channel(1024);
    rt.block_on(async move {
        for _ in 0..1024 {
            tx.send(()).await.unwrap();
        }
    });
    spawned_and_joined(&rt, async move {
        rt_core::task::block_in_place(|| {});
        poll_fn(|cx| {
            while let Poll::Ready(v) = rx.poll_recv(cx) {
                assert!(v.is_some(), "did not yield");
            }
            Poll::Ready(())
        })
        .await
    });
}
