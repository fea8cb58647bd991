//! Many tasks waiting on one I/O resource at once, through the async API
//! (`accept`, `readable`, `recv`, `AsyncFd::readable`, ...): each waiter
//! has its own place in the resource's waiter list, so every one is woken,
//! a dropped waiter leaves no trace, and shutdown wakes them all (Tokio's
//! `ScheduledIo` semantics; a single waker slot would wake only the last).

mod support;

use rt_core::io::AsyncFd;
use rt_core::net::{TcpListener, TcpStream, UdpSocket};
use std::io::Write;
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;
use support::net::{assert_shut_down, poll_with, spawn_waiting, Tracked};
use support::{flavors_with_drivers, with_deadline};

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0);
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we now own.
    unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

#[test]
fn fifty_tasks_accept_on_one_listener() {
    const N: usize = 50;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
                let addr = listener.local_addr().unwrap();
                let tasks = spawn_waiting(N, |_| {
                    let listener = listener.clone();
                    async move {
                        let (stream, _) = listener.accept().await.unwrap();
                        stream
                    }
                })
                .await;
                let mut clients = Vec::new();
                for _ in 0..N {
                    clients.push(TcpStream::connect(addr).await.unwrap());
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
        });
    }
}

#[test]
fn several_tasks_readable_on_one_udp_socket() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 30, move || {
            rt.block_on(async {
                let rx = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let readers = spawn_waiting(N, |_| {
                    let rx = rx.clone();
                    async move {
                        rx.readable().await.unwrap();
                    }
                })
                .await;
                // One datagram: readiness is not consumed by `readable`, so
                // every waiter sees it.
                tx.send_to(b"x", rx.local_addr().unwrap()).await.unwrap();
                for r in readers {
                    r.await.unwrap();
                }
            });
        });
    }
}

#[test]
fn several_tasks_recv_and_send_on_one_udp_socket() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 30, move || {
            rt.block_on(async {
                let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let addr = sock.local_addr().unwrap();
                peer.connect(addr).await.unwrap();
                sock.connect(peer.local_addr().unwrap()).await.unwrap();
                let receivers = spawn_waiting(N, |_| {
                    let sock = sock.clone();
                    async move {
                        let mut buf = [0u8; 8];
                        let n = sock.recv(&mut buf).await.unwrap();
                        // Answer through the same socket, concurrently
                        // with the other tasks.
                        sock.send(&buf[..n]).await.unwrap();
                    }
                })
                .await;
                for i in 0..N as u8 {
                    peer.send(&[i]).await.unwrap();
                    // Spaced out: each datagram is its own edge.
                    rt_core::time::sleep(Duration::from_millis(2)).await;
                }
                let mut got = Vec::new();
                let mut buf = [0u8; 8];
                for _ in 0..N {
                    let n = peer.recv(&mut buf).await.unwrap();
                    got.push(buf[..n][0]);
                }
                got.sort_unstable();
                assert_eq!(got, (0..N as u8).collect::<Vec<_>>(), "{name}");
                for r in receivers {
                    r.await.unwrap();
                }
            });
        });
    }
}

#[test]
fn several_tasks_readable_and_writable_on_one_tcp_stream() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 30, move || {
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let client = TcpStream::connect(listener.local_addr().unwrap())
                    .await
                    .unwrap();
                let (mut server, _) = listener.accept().await.unwrap();
                let client = Arc::new(client);
                let waiters = spawn_waiting(2 * N, |i| {
                    let client = client.clone();
                    async move {
                        if i % 2 == 0 {
                            client.readable().await.unwrap();
                        } else {
                            client.writable().await.unwrap();
                        }
                    }
                })
                .await;
                server.write_all(b"x").await.unwrap();
                for w in waiters {
                    w.await.unwrap();
                }
            });
        });
    }
}

#[test]
fn several_tasks_readable_on_one_async_fd() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 30, move || {
            let (r, mut w) = pipe();
            rt.block_on(async {
                let fd = Arc::new(AsyncFd::new(r).unwrap());
                let waiters = spawn_waiting(N, |_| {
                    let fd = fd.clone();
                    async move {
                        let guard = fd.readable().await.unwrap();
                        assert!(guard.ready().is_readable());
                    }
                })
                .await;
                w.write_all(b"x").unwrap();
                for t in waiters {
                    t.await.unwrap();
                }
            });
        });
    }
}

#[test]
fn several_tasks_async_io_on_one_async_fd_each_get_a_byte() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 30, move || {
            let (r, mut w) = pipe();
            rt.block_on(async {
                let fd = Arc::new(AsyncFd::new(r).unwrap());
                let readers = spawn_waiting(N, |_| {
                    let fd = fd.clone();
                    async move {
                        let mut byte = [0u8; 1];
                        fd.async_io(rt_core::io::Interest::READABLE, |mut f| {
                            std::io::Read::read(&mut f, &mut byte)
                        })
                        .await
                        .unwrap();
                        byte[0]
                    }
                })
                .await;
                for i in 0..N as u8 {
                    w.write_all(&[i]).unwrap();
                    rt_core::time::sleep(Duration::from_millis(2)).await;
                }
                let mut got = Vec::new();
                for r in readers {
                    got.push(r.await.unwrap());
                }
                got.sort_unstable();
                assert_eq!(got, (0..N as u8).collect::<Vec<_>>(), "{name}");
            });
        });
    }
}

#[test]
fn dropped_waiters_leave_and_release_their_wakers() {
    for (name, rt) in flavors_with_drivers(2) {
        let (r, mut w) = pipe();
        let fd = rt.block_on(async { AsyncFd::new(r).unwrap() });
        let tracked: Vec<Arc<Tracked>> = (0..40).map(|_| Arc::default()).collect();
        let wakers: Vec<Waker> = tracked.iter().map(|t| Waker::from(t.clone())).collect();
        let mut futs: Vec<_> = (0..40).map(|_| Box::pin(fd.readable())).collect();
        for (f, w) in futs.iter_mut().zip(&wakers) {
            assert!(poll_with(f, w).is_pending(), "{name}");
        }
        // Drop every other waiter: each must release its waker.
        let mut kept = Vec::new();
        for (i, f) in futs.into_iter().enumerate() {
            if i % 2 == 0 {
                drop(f);
            } else {
                kept.push((i, f));
            }
        }
        drop(wakers);
        for (i, t) in tracked.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(Arc::strong_count(t), 1, "{name}: waiter {i} kept its waker");
            }
        }
        w.write_all(b"x").unwrap();
        // The driver wakes the rest (a spawned task lets the runtime turn).
        for (i, _) in &kept {
            let t = tracked[*i].clone();
            assert!(
                support::wait_until(Duration::from_secs(10), || {
                    rt.block_on(async { rt_core::time::sleep(Duration::from_millis(1)).await });
                    t.wakes.load(SeqCst) >= 1
                }),
                "{name}: waiter {i} was not woken"
            );
        }
        for (i, t) in tracked.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(t.wakes.load(SeqCst), 0, "{name}: dropped waiter {i} woken");
            }
        }
        for (_, f) in kept.iter_mut() {
            let waker = Waker::noop();
            assert!(poll_with(f, waker).is_ready());
        }
        drop(kept);
        for t in &tracked {
            assert_eq!(Arc::strong_count(t), 1, "{name}: a waker leaked");
        }
    }
}

#[test]
fn cancelling_waiters_while_wakes_happen() {
    // Tasks wait on one socket with a short timeout (dropping the wait)
    // while datagrams arrive: no waiter is lost, none hangs, every
    // datagram is received.
    const TASKS: usize = 8;
    const DATAGRAMS: usize = 400;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let rx = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                tx.connect(rx.local_addr().unwrap()).await.unwrap();
                let received = Arc::new(AtomicUsize::new(0));
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| {
                        let rx = rx.clone();
                        let received = received.clone();
                        rt_core::spawn(async move {
                            let mut buf = [0u8; 8];
                            let limit = Duration::from_micros(50 + 37 * i as u64);
                            while received.load(SeqCst) < DATAGRAMS {
                                let recv = rx.recv(&mut buf);
                                if let Ok(r) = rt_core::time::timeout(limit, recv).await {
                                    r.unwrap();
                                    received.fetch_add(1, SeqCst);
                                }
                            }
                        })
                    })
                    .collect();
                for i in 0..DATAGRAMS {
                    tx.send(b"x").await.unwrap();
                    if i % 16 == 0 {
                        rt_core::time::sleep(Duration::from_micros(200)).await;
                    }
                }
                for t in tasks {
                    t.await.unwrap();
                }
                assert_eq!(received.load(SeqCst), DATAGRAMS, "{name}");
            });
        });
    }
}

#[test]
fn shutdown_wakes_every_waiter() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 30, move || {
            let (r, _w) = pipe();
            let (fd, listener) = rt.block_on(async {
                (
                    AsyncFd::new(r).unwrap(),
                    TcpListener::bind("127.0.0.1:0").await.unwrap(),
                )
            });
            let tracked: Vec<Arc<Tracked>> = (0..20).map(|_| Arc::default()).collect();
            let wakers: Vec<Waker> = tracked.iter().map(|t| Waker::from(t.clone())).collect();
            let mut reads: Vec<_> = (0..10).map(|_| Box::pin(fd.readable())).collect();
            let mut accepts: Vec<_> = (0..10).map(|_| Box::pin(listener.accept())).collect();
            for (f, w) in reads.iter_mut().zip(&wakers[..10]) {
                assert!(poll_with(f, w).is_pending());
            }
            for (f, w) in accepts.iter_mut().zip(&wakers[10..]) {
                assert!(poll_with(f, w).is_pending());
            }
            drop(rt);
            for (i, t) in tracked.iter().enumerate() {
                assert!(
                    t.wakes.load(SeqCst) >= 1,
                    "{name}: waiter {i} not woken at shutdown"
                );
            }
            for f in reads.iter_mut() {
                assert_shut_down(name, "readable", poll_with(f, Waker::noop()));
            }
            for f in accepts.iter_mut() {
                assert_shut_down(name, "accept", poll_with(f, Waker::noop()));
            }
        });
    }
}
