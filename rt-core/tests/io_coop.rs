//! The cooperative budget on I/O: every readiness poll spends a unit, so a
//! task looping over always-ready I/O yields every 128 operations and
//! cannot starve the other tasks of its worker (Tokio's
//! `coop_budget_udp_send_recv`, extended to each I/O path).

mod support;

use rt_core::io::AsyncFd;
use rt_core::net::{TcpListener, TcpStream, UdpSocket};
use rt_core::runtime::Builder;
use std::future::Future;
use std::io::Write;
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::with_deadline;

const BUDGET: usize = 128;
/// Ready operations each loop makes: a budgeted loop yields at least
/// `OPS / BUDGET` times.
const OPS: usize = 1024;

/// Counts the polls of a task that runs next to the loop under test.
#[derive(Clone)]
struct Ticks {
    count: Arc<AtomicUsize>,
    start: Arc<AtomicUsize>,
}

impl Ticks {
    /// The loop starts now (after its set-up, which may wait and let the
    /// ticker run).
    fn start(&self) {
        self.start
            .store(self.count.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn since_start(&self) -> usize {
        self.count.load(Ordering::SeqCst) - self.start.load(Ordering::SeqCst)
    }
}

/// Runs `body(ticks)` on a current-thread runtime next to a task that
/// counts its polls in `ticks`. `body` calls `ticks.start()` before its
/// loop of ready operations and returns how many it made; the ticker must
/// have run at least once per budget's worth of them.
fn assert_yields<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Ticks) -> Fut + Send + 'static,
    Fut: Future<Output = usize>,
{
    let name = name.to_string();
    with_deadline(&name.clone(), 60, move || {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let ticks = Ticks {
                count: Arc::new(AtomicUsize::new(0)),
                start: Arc::new(AtomicUsize::new(0)),
            };
            let t = ticks.count.clone();
            let ticker = rt_core::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::SeqCst);
                    rt_core::task::yield_now().await;
                }
            });
            let ops = body(ticks.clone()).await;
            let ran = ticks.since_start();
            ticker.abort();
            assert!(
                ran >= ops / BUDGET,
                "{name}: {ops} ready operations, the other task ran only {ran} times"
            );
        });
    });
}

async fn udp_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.connect(b.local_addr().unwrap()).await.unwrap();
    b.connect(a.local_addr().unwrap()).await.unwrap();
    (a, b)
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn udp_send_recv_loop_yields() {
    assert_yields("udp send/recv", |ticks| async move {
        let (tx, rx) = udp_pair().await;
        let mut buf = [0u8; 12];
        ticks.start();
        for _ in 0..OPS / 2 {
            tx.send(b"Hello, world").await.unwrap();
            assert_eq!(rx.recv(&mut buf).await.unwrap(), 12);
        }
        OPS
    });
}

#[test]
fn udp_send_loop_yields() {
    assert_yields("udp send", |ticks| async move {
        let (tx, _rx) = udp_pair().await;
        tx.writable().await.unwrap();
        ticks.start();
        for _ in 0..OPS {
            tx.send(b"x").await.unwrap();
        }
        OPS
    });
}

#[test]
fn udp_send_to_loop_yields() {
    assert_yields("udp send_to", |ticks| async move {
        let (tx, rx) = udp_pair().await;
        let to = rx.local_addr().unwrap();
        tx.writable().await.unwrap();
        ticks.start();
        for _ in 0..OPS {
            tx.send_to(b"x", to).await.unwrap();
        }
        OPS
    });
}

/// Queues `n` datagrams for `rx` (with a receive buffer large enough for
/// them) and waits until its readiness is known.
async fn queue_datagrams(tx: &UdpSocket, rx: &UdpSocket, n: usize) {
    use std::os::unix::io::AsRawFd;
    let size: libc::c_int = 4 << 20;
    // SAFETY: a valid socket and a c_int option value of the given length.
    let rc = unsafe {
        libc::setsockopt(
            rx.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    for _ in 0..n {
        tx.send(b"x").await.unwrap();
    }
    rx.readable().await.unwrap();
}

#[test]
fn udp_recv_loop_yields() {
    assert_yields("udp recv", |ticks| async move {
        let (tx, rx) = udp_pair().await;
        let n = 400;
        queue_datagrams(&tx, &rx, n).await;
        let mut buf = [0u8; 4];
        ticks.start();
        for _ in 0..n {
            rx.recv(&mut buf).await.unwrap();
        }
        n
    });
}

#[test]
fn udp_recv_from_loop_yields() {
    assert_yields("udp recv_from", |ticks| async move {
        let (tx, rx) = udp_pair().await;
        let n = 400;
        queue_datagrams(&tx, &rx, n).await;
        let mut buf = [0u8; 4];
        ticks.start();
        for _ in 0..n {
            rx.recv_from(&mut buf).await.unwrap();
        }
        n
    });
}

#[test]
fn udp_readable_loop_yields() {
    assert_yields("udp readable", |ticks| async move {
        let (tx, rx) = udp_pair().await;
        queue_datagrams(&tx, &rx, 1).await;
        ticks.start();
        for _ in 0..OPS {
            rx.readable().await.unwrap();
        }
        OPS
    });
}

#[test]
fn tcp_read_loop_yields() {
    assert_yields("tcp read", |ticks| async move {
        let (mut a, mut b) = tcp_pair().await;
        let n = 1000;
        a.write_all(&vec![7u8; n]).await.unwrap();
        b.readable().await.unwrap();
        let mut one = [0u8; 1];
        let mut got = 0;
        ticks.start();
        while got < n {
            got += b.read(&mut one).await.unwrap();
        }
        n
    });
}

#[test]
fn tcp_write_loop_yields() {
    assert_yields("tcp write", |ticks| async move {
        let (mut a, _b) = tcp_pair().await;
        a.writable().await.unwrap();
        ticks.start();
        for _ in 0..OPS {
            a.write_all(b"x").await.unwrap();
        }
        OPS
    });
}

#[test]
fn tcp_split_halves_loop_yields() {
    assert_yields("tcp split halves", |ticks| async move {
        let (a, b) = tcp_pair().await;
        let (_ar, mut aw) = a.into_split();
        let (mut br, _bw) = b.into_split();
        let n = 600;
        aw.write_all(b"x").await.unwrap();
        br.read_exact(&mut [0u8; 1]).await.unwrap();
        ticks.start();
        for _ in 0..n {
            aw.write_all(b"x").await.unwrap();
        }
        let mut one = [0u8; 1];
        for _ in 0..n {
            br.read_exact(&mut one).await.unwrap();
        }
        2 * n
    });
}

#[test]
fn tcp_accept_loop_yields() {
    assert_yields("tcp accept", |ticks| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // More than a budget; blocking connects complete in the kernel
        // while they fit in the accept queue (`bind` asks for 1024).
        let n = 3 * BUDGET;
        let clients: Vec<_> = (0..n)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut accepted = Vec::new();
        accepted.push(listener.accept().await.unwrap());
        ticks.start();
        for _ in 1..n {
            accepted.push(listener.accept().await.unwrap());
        }
        drop(clients);
        n - 1
    });
}

#[test]
fn async_fd_readable_loop_yields() {
    assert_yields("AsyncFd readable", |ticks| async move {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        assert_eq!(rc, 0);
        // SAFETY: pipe2 succeeded: both are fresh descriptors we now own.
        let (r, mut w) = unsafe {
            (
                std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
                std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
            )
        };
        w.write_all(b"x").unwrap();
        let fd = AsyncFd::new(r).unwrap();
        let _ = fd.readable().await.unwrap();
        ticks.start();
        for _ in 0..OPS {
            // Readiness kept (the guard does not clear it): always ready.
            let _guard = fd.readable().await.unwrap();
        }
        OPS
    });
}

/// Polls `consume_budget` until it is `Pending`: the units left in this
/// task poll.
fn budget_left(cx: &mut std::task::Context<'_>) -> usize {
    let mut n = 0;
    loop {
        let mut unit = Box::pin(rt_core::task::consume_budget());
        if unit.as_mut().poll(cx).is_pending() {
            return n;
        }
        n += 1;
    }
}

#[test]
fn io_polls_without_progress_give_the_budget_unit_back() {
    with_deadline("no progress, no budget", 30, || {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let task = rt_core::spawn(async {
                let (mut a, b) = tcp_pair().await;
                let (tx, rx) = udp_pair().await;
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                // Stale readiness: the driver reported data, which was then
                // taken without a `WouldBlock` (so the readiness stays set).
                a.write_all(b"hello").await.unwrap();
                b.readable().await.unwrap();
                let mut buf = [0u8; 16];
                assert_eq!(b.try_read(&mut buf).unwrap(), 5);
                tx.send(b"x").await.unwrap();
                rx.readable().await.unwrap();
                assert_eq!(rx.try_recv_from(&mut buf).unwrap().0, 1);
                // A fresh task poll (a full budget) for what follows.
                rt_core::task::yield_now().await;
                std::future::poll_fn(|cx| {
                    use rt_core::io::AsyncRead;
                    let mut buf = [0u8; 16];
                    // poll_* API: stale readiness, `WouldBlock`, then waits.
                    assert!(std::pin::Pin::new(&mut &b)
                        .poll_read(cx, &mut buf)
                        .is_pending());
                    // Async API: the same.
                    assert!(Box::pin(rx.recv(&mut buf)).as_mut().poll(cx).is_pending());
                    // Plain waits, many times over.
                    for _ in 0..200 {
                        assert!(std::pin::Pin::new(&mut &b)
                            .poll_read(cx, &mut buf)
                            .is_pending());
                        assert!(Box::pin(rx.recv(&mut buf)).as_mut().poll(cx).is_pending());
                        assert!(Box::pin(rx.readable()).as_mut().poll(cx).is_pending());
                        assert!(Box::pin(listener.accept()).as_mut().poll(cx).is_pending());
                        assert!(listener.poll_accept(cx).is_pending());
                    }
                    std::task::Poll::Ready(budget_left(cx))
                })
                .await
            });
            assert_eq!(task.await.unwrap(), BUDGET, "units spent without progress");
        });
    });
}
