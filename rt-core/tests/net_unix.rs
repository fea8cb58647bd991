//! Unix domain sockets (`net::unix`): listener, stream, datagram, on both
//! flavors: echo, many clients, large partial transfers, half-close,
//! errors from the OS, accept at shutdown / abort, `try_*` without
//! readiness, several waiters on one socket, and the coop budget.

mod support;

use rt_core::io::{AsyncRead, AsyncWrite, Interest};
use rt_core::net::unix::SocketAddr;
use rt_core::net::{UnixDatagram, UnixListener, UnixStream};
use rt_core::runtime::Builder;
use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;
use support::net::{
    all_waiting, assert_shut_down, echo, futures_close, poll_with, round_trips, spawn_waiting,
    Tracked,
};
use support::{flavors_with_drivers, panic_message, with_deadline, DropCounter};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rt-net-unix-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Accepts forever; echoes each connection until its end of stream, then
/// closes it. Checks the addresses an accepted connection reports.
async fn echo_server(listener: UnixListener) {
    let path = listener
        .local_addr()
        .unwrap()
        .as_pathname()
        .unwrap()
        .to_owned();
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            return;
        };
        // A failed check drops the connection: the client then fails.
        assert!(addr.is_unnamed(), "client address {addr:?}");
        assert_eq!(stream.local_addr().unwrap().as_pathname(), Some(&*path));
        rt_core::spawn(echo(stream));
    }
}

fn pathname(addr: &SocketAddr) -> Option<&Path> {
    addr.as_pathname()
}

#[test]
fn echo_over_a_listener_on_a_path() {
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            let dir = TempDir::new();
            let path = dir.join("echo.sock");
            rt.block_on(async {
                let listener = UnixListener::bind(&path).unwrap();
                assert_eq!(pathname(&listener.local_addr().unwrap()), Some(&*path));
                let server = rt_core::spawn(echo_server(listener));
                let mut client = UnixStream::connect(&path).await.unwrap();
                assert_eq!(pathname(&client.peer_addr().unwrap()), Some(&*path));
                assert!(client.local_addr().unwrap().is_unnamed());
                let mut buf = [0u8; 64];
                for i in 0..200 {
                    let msg = format!("{name} message {i}");
                    client.write_all(msg.as_bytes()).await.unwrap();
                    client.read_exact(&mut buf[..msg.len()]).await.unwrap();
                    assert_eq!(&buf[..msg.len()], msg.as_bytes(), "{name}: round trip {i}");
                }
                client.shutdown().await.unwrap();
                assert_eq!(
                    client.read(&mut buf).await.unwrap(),
                    0,
                    "{name}: the server closes after our end of stream"
                );
                server.abort();
            });
        });
    }
}

#[test]
fn fifty_concurrent_clients_on_one_listener() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 50;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 120, move || {
            let dir = TempDir::new();
            let path = Arc::new(dir.join("many.sock"));
            let total = rt.block_on(async {
                let listener = UnixListener::bind(&*path).unwrap();
                let server = rt_core::spawn(echo_server(listener));
                let clients: Vec<_> = (0..CLIENTS)
                    .map(|c| {
                        let path = path.clone();
                        rt_core::spawn(async move {
                            let mut s = UnixStream::connect(&*path).await.unwrap();
                            let msgs = (0..ROUNDS).map(|i| format!("{c:03}:{i:05}:payload"));
                            round_trips(&mut s, msgs).await
                        })
                    })
                    .collect();
                let mut total = 0;
                for c in clients {
                    total += c.await.unwrap();
                }
                server.abort();
                total
            });
            assert_eq!(
                total,
                CLIENTS * ROUNDS * "000:00000:payload".len(),
                "{name}"
            );
        });
    }
}

/// Byte `i` of stream `seed`: consecutive bytes differ and streams differ,
/// so a lost, repeated or reordered chunk is seen.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

/// Writes `data` with single `poll_write` calls over the whole rest;
/// returns how many of them were partial.
async fn write_partially<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> usize {
    let mut off = 0;
    let mut partial = 0;
    while off < data.len() {
        let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, &data[off..]))
            .await
            .unwrap();
        assert!(n > 0, "write of {} bytes returned 0", data.len() - off);
        if n < data.len() - off {
            partial += 1;
        }
        off += n;
    }
    partial
}

/// Reads until end of stream with a small odd-sized buffer; returns the
/// bytes and the number of reads.
async fn read_to_end_in_steps<R: AsyncRead + Unpin>(r: &mut R) -> (Vec<u8>, usize) {
    let mut got = Vec::new();
    let mut buf = [0u8; 3001];
    let mut reads = 0;
    loop {
        let n = poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut buf))
            .await
            .unwrap();
        if n == 0 {
            return (got, reads);
        }
        reads += 1;
        got.extend_from_slice(&buf[..n]);
    }
}

/// Polls two futures together (for the borrowed halves, which cannot move
/// to other tasks).
async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[test]
fn pair_moves_one_mebibyte_each_way_with_partial_reads_and_writes() {
    const LEN: usize = 1 << 20;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 120, move || {
            rt.block_on(async {
                let (mut a, b) = UnixStream::pair().unwrap();
                let to_b = pattern(7, LEN);
                let to_a = pattern(101, LEN);
                // b: owned halves on two tasks.
                let (mut br, mut bw) = b.into_split();
                let b_reader = rt_core::spawn(async move { read_to_end_in_steps(&mut br).await });
                let expected_a = to_a.clone();
                let b_writer = rt_core::spawn(async move {
                    let partial = write_partially(&mut bw, &expected_a).await;
                    drop(bw); // shuts b's write half down: a reads end of stream
                    partial
                });
                // a: borrowed halves, joined in this task.
                let (a_read, a_partial) = {
                    let (mut ar, mut aw) = a.split();
                    join2(read_to_end_in_steps(&mut ar), async {
                        let partial = write_partially(&mut aw, &to_b).await;
                        futures_close(&mut aw).await;
                        partial
                    })
                    .await
                };
                let (b_read, b_reads) = b_reader.await.unwrap();
                let b_partial = b_writer.await.unwrap();
                let (a_got, a_reads) = a_read;
                assert_eq!(a_got.len(), LEN, "{name}: bytes a received");
                assert!(a_got == to_a, "{name}: a received other bytes than b sent");
                assert_eq!(b_read.len(), LEN, "{name}: bytes b received");
                assert!(b_read == to_b, "{name}: b received other bytes than a sent");
                assert!(a_reads > 1 && b_reads > 1);
                assert!(
                    a_partial + b_partial > 0,
                    "{name}: 1 MiB went in single writes: no partial write tested"
                );
                // Both write halves are shut: a reads end of stream again.
                assert_eq!(a.read(&mut [0u8; 8]).await.unwrap(), 0);
            });
        });
    }
}

#[test]
fn half_close_gives_the_peer_end_of_stream_and_keeps_the_other_direction() {
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            let dir = TempDir::new();
            let path = dir.join("half.sock");
            rt.block_on(async {
                let listener = UnixListener::bind(&path).unwrap();
                let mut client = UnixStream::connect(&path).await.unwrap();
                let (mut server, _) = listener.accept().await.unwrap();

                client.write_all(b"ping").await.unwrap();
                client.shutdown().await.unwrap();
                let mut buf = [0u8; 16];
                server.read_exact(&mut buf[..4]).await.unwrap();
                assert_eq!(&buf[..4], b"ping");
                assert_eq!(
                    server.read(&mut buf).await.unwrap(),
                    0,
                    "{name}: EOF after shutdown"
                );
                assert_eq!(server.read(&mut buf).await.unwrap(), 0, "{name}: EOF stays");
                // The client's write half is shut, its read half is not.
                let err = client.write_all(b"more").await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{name}: {err}");
                server.write_all(b"pong").await.unwrap();
                client.read_exact(&mut buf[..4]).await.unwrap();
                assert_eq!(&buf[..4], b"pong");
                drop(server);
                assert_eq!(
                    client.read(&mut buf).await.unwrap(),
                    0,
                    "{name}: EOF after drop"
                );

                // Shutting the read half: reads end at once, and (unlike
                // TCP) the peer's writes fail.
                let (a, mut b) = UnixStream::pair().unwrap();
                a.shutdown_std(std::net::Shutdown::Read).unwrap();
                assert_eq!(
                    read_ref(&a, &mut buf).await,
                    0,
                    "{name}: read after shutdown(Read)"
                );
                let err = b.write_all(b"x").await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{name}: {err}");
            });
        });
    }
}

/// Reads once through the `&UnixStream` impl of `AsyncRead`.
async fn read_ref(mut s: &UnixStream, buf: &mut [u8]) -> usize {
    poll_fn(|cx| Pin::new(&mut s).poll_read(cx, buf))
        .await
        .unwrap()
}

#[test]
fn owned_halves_shut_down_on_drop_and_reunite() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let (a, mut b) = UnixStream::pair().unwrap();
                let (r, w) = a.into_split();
                let (other, _keep) = UnixStream::pair().unwrap();
                let (other_r, _other_w) = other.into_split();
                // Halves of different streams do not reunite.
                let err = other_r.reunite(w).unwrap_err();
                let w = err.1;
                let mut a = r.reunite(w).expect("halves of one stream reunite");
                // Reuniting did not shut the write half down.
                a.write_all(b"still open").await.unwrap();
                let mut buf = [0u8; 10];
                b.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"still open");
                // Dropping the owned write half does.
                let (_r, w) = a.into_split();
                drop(w);
                assert_eq!(b.read(&mut buf).await.unwrap(), 0, "{name}");
            });
        });
    }
}

#[test]
fn write_to_a_closed_peer_is_broken_pipe() {
    for (name, rt) in flavors_with_drivers(2) {
        rt.block_on(async {
            let (mut a, b) = UnixStream::pair().unwrap();
            drop(b);
            assert_eq!(a.read(&mut [0u8; 4]).await.unwrap(), 0, "{name}");
            let err = a.write_all(b"x").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{name}: {err}");
        });
    }
}

#[test]
fn datagrams_between_two_bound_sockets() {
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            let dir = TempDir::new();
            let (pa, pb) = (dir.join("a.sock"), dir.join("b.sock"));
            rt.block_on(async {
                let a = UnixDatagram::bind(&pa).unwrap();
                let b = UnixDatagram::bind(&pb).unwrap();
                assert_eq!(pathname(&a.local_addr().unwrap()), Some(&*pa));
                let err = a.peer_addr().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NotConnected, "{name}: {err}");

                assert_eq!(a.send_to(b"one", &pb).await.unwrap(), 3);
                assert_eq!(a.send_to(b"second datagram", &pb).await.unwrap(), 15);
                let mut buf = [0u8; 64];
                let (n, from) = b.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"one", "{name}: datagram boundaries");
                assert_eq!(pathname(&from), Some(&*pa), "{name}: sender's address");
                let (n, _) = b.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"second datagram");

                // Answer to the address the datagram came from.
                b.send_to(b"reply", pathname(&from).unwrap()).await.unwrap();
                let (n, from) = a.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"reply");
                assert_eq!(pathname(&from), Some(&*pb));

                // A longer datagram is cut to the buffer, the rest dropped.
                a.send_to(&[9u8; 100], &pb).await.unwrap();
                a.send_to(b"next", &pb).await.unwrap();
                let (n, _) = b.recv_from(&mut buf[..10]).await.unwrap();
                assert_eq!(n, 10, "{name}: truncated datagram");
                let (n, _) = b.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"next", "{name}: the cut rest is not delivered");

                // An unbound sender is unnamed; after connect, send/recv.
                let u = UnixDatagram::unbound().unwrap();
                u.send_to(b"anon", &pb).await.unwrap();
                let (n, from) = b.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"anon");
                assert!(from.is_unnamed(), "{name}: {from:?}");
                u.connect(&pa).unwrap();
                assert_eq!(pathname(&u.peer_addr().unwrap()), Some(&*pa));
                u.send(b"via connect").await.unwrap();
                let n = a.recv(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"via connect");

                // The poll_* and try_* forms with a target path.
                let n = poll_fn(|cx| a.poll_send_to(cx, b"polled", &pb))
                    .await
                    .unwrap();
                assert_eq!(n, 6);
                let (n, from) = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await.unwrap();
                assert_eq!((&buf[..n], pathname(&from)), (&b"polled"[..], Some(&*pa)));
                a.writable().await.unwrap();
                assert_eq!(a.try_send_to(b"tried", &pb).unwrap(), 5);
                b.readable().await.unwrap();
                let (n, from) = b.try_recv_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], pathname(&from)), (&b"tried"[..], Some(&*pa)));

                // Sending to a path nobody is bound to.
                let err = a.send_to(b"x", dir.join("nobody")).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
            });
        });
    }
}

#[test]
fn datagrams_between_pair_ends() {
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let (a, b) = UnixDatagram::pair().unwrap();
                assert!(a.peer_addr().unwrap().is_unnamed());
                assert!(a.local_addr().unwrap().is_unnamed());
                let mut buf = [0u8; 32];
                let err = b.try_recv(&mut buf).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "{name}: empty try_recv");
                let err = b.try_recv_from(&mut buf).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "{name}");

                for i in 0..20u8 {
                    a.send(&[i; 3]).await.unwrap();
                    let n = b.recv(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &[i; 3], "{name}: a -> b {i}");
                    b.send(&[i; 5]).await.unwrap();
                    let (n, from) = a.recv_from(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &[i; 5], "{name}: b -> a {i}");
                    assert!(from.is_unnamed());
                }

                // The poll_* forms.
                let n = poll_fn(|cx| a.poll_send(cx, b"polled")).await.unwrap();
                assert_eq!(n, 6);
                let n = poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap();
                assert_eq!(&buf[..n], b"polled");
                b.writable().await.unwrap();
                assert_eq!(b.try_send(b"try").unwrap(), 3);
                a.readable().await.unwrap();
                let (n, _) = poll_fn(|cx| a.poll_recv_from(cx, &mut buf)).await.unwrap();
                assert_eq!(&buf[..n], b"try");
                let err = a.try_recv(&mut buf).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "{name}: drained");
            });
        });
    }
}

#[test]
fn datagram_sender_waits_while_the_receiver_queue_is_full() {
    const N: usize = 500;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            let dir = TempDir::new();
            let path = dir.join("slow.sock");
            rt.block_on(async {
                let rx = UnixDatagram::bind(&path).unwrap();
                let (tx, peer) = UnixDatagram::pair().unwrap();
                // The queue is short (net.unix.max_dgram_qlen): try_send
                // soon stops, so the async sends below do wait.
                let mut queued = 0;
                loop {
                    tx.writable().await.unwrap();
                    match tx.try_send(&[0xAA; 64]) {
                        Ok(_) => queued += 1,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{name}: {e}"),
                    }
                    assert!(queued < 100_000, "{name}: the queue never filled");
                }
                // Connected pair: send; named receiver: send_to.
                let sender = rt_core::spawn(async move {
                    let tx_to = UnixDatagram::unbound().unwrap();
                    for i in 0..N as u32 {
                        tx.send(&i.to_be_bytes()).await.unwrap();
                        tx_to.send_to(&i.to_be_bytes(), &path).await.unwrap();
                    }
                });
                let mut buf = [0u8; 64];
                for _ in 0..queued {
                    let n = peer.recv(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &[0xAA; 64]);
                }
                for i in 0..N as u32 {
                    if i % 50 == 0 {
                        rt_core::time::sleep(Duration::from_millis(2)).await;
                    }
                    let n = peer.recv(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &i.to_be_bytes(), "{name}: pair, in order");
                    let n = rx.recv(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &i.to_be_bytes(), "{name}: path, in order");
                }
                sender.await.unwrap();
            });
        });
    }
}

#[test]
fn connect_to_a_missing_path_gives_the_os_error() {
    for (name, rt) in flavors_with_drivers(2) {
        let dir = TempDir::new();
        rt.block_on(async {
            let err = UnixStream::connect(dir.join("missing.sock"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{name}: {err}");

            // A socket file nobody listens on any more.
            let stale = dir.join("stale.sock");
            drop(UnixListener::bind(&stale).unwrap());
            let err = UnixStream::connect(&stale).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{name}: {err}");

            // A file that is not a socket.
            let file = dir.join("plain");
            std::fs::write(&file, b"not a socket").unwrap();
            let err = UnixStream::connect(&file).await.unwrap_err();
            assert_eq!(
                err.raw_os_error(),
                Some(libc::ECONNREFUSED),
                "{name}: {err}"
            );
        });
    }
}

#[test]
fn bind_to_an_existing_path_is_addr_in_use() {
    for (name, rt) in flavors_with_drivers(2) {
        let dir = TempDir::new();
        let path = dir.join("taken.sock");
        rt.block_on(async {
            let first = UnixListener::bind(&path).unwrap();
            let err = UnixListener::bind(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{name}: {err}");
            let err = UnixDatagram::bind(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{name}: {err}");
            // The file stays after the listener is gone.
            drop(first);
            let err = UnixListener::bind(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{name}: {err}");
            // Removed, the path binds again and works.
            std::fs::remove_file(&path).unwrap();
            let again = UnixListener::bind(&path).unwrap();
            let _client = UnixStream::connect(&path).await.unwrap();
            again.accept().await.unwrap();

            let file = dir.join("plain");
            std::fs::write(&file, b"").unwrap();
            let err = UnixDatagram::bind(&file).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{name}: {err}");
        });
    }
}

#[test]
fn aborting_a_task_waiting_in_accept_drops_the_listener() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 30, move || {
            let dir = TempDir::new();
            let path = dir.join("abort.sock");
            rt.block_on(async {
                let listener = UnixListener::bind(&path).unwrap();
                let started = Arc::new(AtomicUsize::new(0));
                let s = started.clone();
                let task = rt_core::spawn(async move {
                    s.fetch_add(1, SeqCst);
                    listener.accept().await
                });
                all_waiting(&started, 1).await;
                assert!(
                    !task.is_finished(),
                    "{name}: accept returned with no client"
                );
                task.abort();
                let err = task.await.unwrap_err();
                assert!(err.is_cancelled(), "{name}: {err:?}");
                // The listener went with the task: its socket is closed.
                let err = UnixStream::connect(&path).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{name}: {err}");
            });
        });
    }
}

#[test]
fn shutdown_while_accept_waits_cancels_the_task() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 30, move || {
            let dir = TempDir::new();
            let path = dir.join("shutdown.sock");
            let dropped = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let returned = Arc::new(AtomicUsize::new(0));
            rt.block_on(async {
                let listener = UnixListener::bind(&path).unwrap();
                let (d, s) = (DropCounter(dropped.clone()), started.clone());
                let r = returned.clone();
                rt_core::spawn(async move {
                    let _d = d;
                    s.fetch_add(1, SeqCst);
                    // Cancelled at shutdown, or woken with the shutdown
                    // error: both fine; a connection is not.
                    if listener.accept().await.is_ok() {
                        r.fetch_add(1, SeqCst);
                    }
                });
                all_waiting(&started, 1).await;
            });
            drop(rt);
            assert_eq!(dropped.load(SeqCst), 1, "{name}: the task was not dropped");
            assert_eq!(returned.load(SeqCst), 0, "{name}: accept gave a connection");
            let err = std::os::unix::net::UnixStream::connect(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{name}: {err}");
        });
    }
}

#[test]
fn waits_outliving_the_runtime_end_with_the_shutdown_error() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 30, move || {
            let dir = TempDir::new();
            let (listener, (stream, _peer), (dgram, _dpeer)) = rt.block_on(async {
                (
                    UnixListener::bind(dir.join("l.sock")).unwrap(),
                    UnixStream::pair().unwrap(),
                    UnixDatagram::pair().unwrap(),
                )
            });
            let tracked: Vec<Arc<Tracked>> = (0..4).map(|_| Arc::default()).collect();
            let wakers: Vec<Waker> = tracked.iter().map(|t| Waker::from(t.clone())).collect();
            let mut accept = Box::pin(listener.accept());
            let mut readable = Box::pin(stream.readable());
            let mut ready = Box::pin(stream.ready(Interest::READABLE));
            let mut buf = [0u8; 8];
            let mut recv = Box::pin(dgram.recv(&mut buf));
            assert!(poll_with(&mut accept, &wakers[0]).is_pending());
            assert!(poll_with(&mut readable, &wakers[1]).is_pending());
            assert!(poll_with(&mut ready, &wakers[2]).is_pending());
            assert!(poll_with(&mut recv, &wakers[3]).is_pending());
            drop(rt);
            for (i, t) in tracked.iter().enumerate() {
                assert!(t.wakes.load(SeqCst) >= 1, "{name}: waiter {i} not woken");
            }
            assert_shut_down(name, "accept", poll_with(&mut accept, Waker::noop()));
            assert_shut_down(name, "readable", poll_with(&mut readable, Waker::noop()));
            assert_shut_down(name, "ready", poll_with(&mut ready, Waker::noop()));
            assert_shut_down(name, "recv", poll_with(&mut recv, Waker::noop()));
        });
    }
}

#[test]
fn try_read_on_an_empty_socket_would_block() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let (a, b) = UnixStream::pair().unwrap();
                let mut buf = [0u8; 16];
                let err = a.try_read(&mut buf).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "{name}: empty");

                b.writable().await.unwrap();
                assert_eq!(b.try_write(b"abc").unwrap(), 3);
                a.readable().await.unwrap();
                assert_eq!(a.try_read(&mut buf).unwrap(), 3);
                assert_eq!(&buf[..3], b"abc");
                let err = a.try_read(&mut buf).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "{name}: drained");
                // Let the reactor take the events of the reads above (b's
                // write space), so none arrives after the fill below.
                rt_core::time::sleep(Duration::from_millis(20)).await;

                // Fill b -> a until try_write refuses; b is then not
                // writable until a reads.
                let chunk = [0x55u8; 8192];
                let mut sent = 0;
                loop {
                    match b.try_write(&chunk) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{name}: {e}"),
                    }
                }
                assert!(sent > 0);
                let waited = rt_core::time::timeout(Duration::from_millis(100), b.writable()).await;
                assert!(waited.is_err(), "{name}: writable while the buffer is full");
                let mut drained = 0;
                let mut big = vec![0u8; 65536];
                let writable = rt_core::spawn(async move {
                    b.writable().await.unwrap();
                    b
                });
                while drained < sent {
                    a.readable().await.unwrap();
                    match a.try_read(&mut big) {
                        Ok(n) => drained += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                        Err(e) => panic!("{name}: {e}"),
                    }
                }
                assert_eq!(drained, sent);
                let b = writable.await.unwrap();
                let err = a.try_read(&mut buf).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "{name}");
                drop(b);
            });
        });
    }
}

#[test]
fn ready_reports_the_directions() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 30, move || {
            rt.block_on(async {
                let (a, mut b) = UnixStream::pair().unwrap();
                let r = a
                    .ready(Interest::READABLE | Interest::WRITABLE)
                    .await
                    .unwrap();
                assert!(r.is_writable() && !r.is_readable(), "{name}: fresh: {r:?}");
                let waited =
                    rt_core::time::timeout(Duration::from_millis(50), a.ready(Interest::READABLE))
                        .await;
                assert!(waited.is_err(), "{name}: readable with nothing sent");
                b.write_all(b"x").await.unwrap();
                let r = a.ready(Interest::READABLE).await.unwrap();
                assert!(r.is_readable() && !r.is_writable(), "{name}: {r:?}");
                drop(b);
                let mut buf = [0u8; 4];
                assert_eq!(read_ref(&a, &mut buf).await, 1);
                assert_eq!(read_ref(&a, &mut buf).await, 0);
                // The reads above may run before the reactor saw the close:
                // give it a turn.
                rt_core::time::sleep(Duration::from_millis(20)).await;
                let r = a.ready(Interest::READABLE).await.unwrap();
                assert!(r.is_read_closed(), "{name}: after the peer closed: {r:?}");
            });
        });
    }
}

#[test]
fn several_waiters_on_one_stream_are_all_woken() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let (a, mut b) = UnixStream::pair().unwrap();
                let a = Arc::new(a);
                let waiters = spawn_waiting(2 * N, |i| {
                    let a = a.clone();
                    async move {
                        if i % 2 == 0 {
                            a.readable().await.unwrap();
                        } else {
                            let r = a.ready(Interest::READABLE).await.unwrap();
                            assert!(r.is_readable());
                        }
                    }
                })
                .await;
                for w in &waiters {
                    assert!(!w.is_finished(), "{name}: a waiter ended with nothing sent");
                }
                // One byte: `readable` does not consume it, every waiter sees it.
                b.write_all(b"x").await.unwrap();
                for w in waiters {
                    w.await.unwrap();
                }

                // Writers: fill a -> b, then wait in `writable` together.
                let mut sent = 0;
                while let Ok(n) = a.try_write(&[0u8; 8192]) {
                    sent += n;
                }
                let waiters = spawn_waiting(N, |_| {
                    let a = a.clone();
                    async move { a.writable().await.unwrap() }
                })
                .await;
                for w in &waiters {
                    assert!(!w.is_finished(), "{name}: writable while full");
                }
                let mut buf = vec![0u8; sent];
                b.read_exact(&mut buf).await.unwrap();
                for w in waiters {
                    w.await.unwrap();
                }
            });
        });
    }
}

#[test]
fn several_tasks_recv_on_one_datagram_socket() {
    const N: usize = 8;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            rt.block_on(async {
                let (sock, peer) = UnixDatagram::pair().unwrap();
                let sock = Arc::new(sock);
                let receivers = spawn_waiting(N, |_| {
                    let sock = sock.clone();
                    async move {
                        let mut buf = [0u8; 8];
                        let n = sock.recv(&mut buf).await.unwrap();
                        assert_eq!(n, 1);
                        buf[0]
                    }
                })
                .await;
                for i in 0..N as u8 {
                    peer.send(&[i]).await.unwrap();
                    // Spaced out: each datagram is its own edge.
                    rt_core::time::sleep(Duration::from_millis(2)).await;
                }
                let mut got = Vec::new();
                for r in receivers {
                    got.push(r.await.unwrap());
                }
                got.sort_unstable();
                assert_eq!(got, (0..N as u8).collect::<Vec<_>>(), "{name}");
            });
        });
    }
}

#[test]
fn fifty_tasks_accept_on_one_listener() {
    const N: usize = 50;
    for (name, rt) in flavors_with_drivers(4) {
        with_deadline(name, 60, move || {
            let dir = TempDir::new();
            let path = dir.join("accept.sock");
            rt.block_on(async {
                let listener = Arc::new(UnixListener::bind(&path).unwrap());
                let tasks = spawn_waiting(N, |_| {
                    let listener = listener.clone();
                    async move {
                        let (mut stream, _) = listener.accept().await.unwrap();
                        let mut id = [0u8; 1];
                        stream.read_exact(&mut id).await.unwrap();
                        id[0]
                    }
                })
                .await;
                let mut clients = Vec::new();
                for i in 0..N as u8 {
                    let mut c = UnixStream::connect(&path).await.unwrap();
                    c.write_all(&[i]).await.unwrap();
                    clients.push(c);
                }
                let mut got = Vec::new();
                for t in tasks {
                    got.push(t.await.unwrap());
                }
                got.sort_unstable();
                assert_eq!(got, (0..N as u8).collect::<Vec<_>>(), "{name}");
                // poll_accept too.
                let _c = UnixStream::connect(&path).await.unwrap();
                let (s, addr) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
                assert!(addr.is_unnamed());
                assert_eq!(pathname(&s.local_addr().unwrap()), Some(&*path));
            });
        });
    }
}

fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the flags of a descriptor `fd` keeps open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn from_std_switches_to_non_blocking_and_works() {
    for (name, rt) in flavors_with_drivers(2) {
        with_deadline(name, 30, move || {
            let dir = TempDir::new();
            let path = dir.join("std.sock");
            let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let (s1, s2) = std::os::unix::net::UnixStream::pair().unwrap();
            let (d1, d2) = std::os::unix::net::UnixDatagram::pair().unwrap();
            assert!(!is_nonblocking(&std_listener) && !is_nonblocking(&s1) && !is_nonblocking(&d1));
            rt.block_on(async {
                let listener = UnixListener::from_std(std_listener).unwrap();
                let (mut a, mut b) = (
                    UnixStream::from_std(s1).unwrap(),
                    UnixStream::from_std(s2).unwrap(),
                );
                let (da, db) = (
                    UnixDatagram::from_std(d1).unwrap(),
                    UnixDatagram::from_std(d2).unwrap(),
                );
                assert!(is_nonblocking(&listener), "{name}: listener");
                assert!(is_nonblocking(&a) && is_nonblocking(&b), "{name}: stream");
                assert!(
                    is_nonblocking(&da) && is_nonblocking(&db),
                    "{name}: datagram"
                );

                let _c = UnixStream::connect(&path).await.unwrap();
                listener.accept().await.unwrap();
                a.write_all(b"hi").await.unwrap();
                let mut buf = [0u8; 2];
                b.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"hi");
                da.send(b"d").await.unwrap();
                assert_eq!(db.recv(&mut buf).await.unwrap(), 1);
            });
        });
    }
}

#[test]
fn peer_cred_is_this_process() {
    for (name, rt) in flavors_with_drivers(2) {
        let dir = TempDir::new();
        let path = dir.join("cred.sock");
        rt.block_on(async {
            // SAFETY: these calls only return the caller's ids.
            let (pid, uid, gid) = unsafe { (libc::getpid(), libc::getuid(), libc::getgid()) };
            let (a, _b) = UnixStream::pair().unwrap();
            let cred = a.peer_cred().unwrap();
            assert_eq!(
                (cred.pid(), cred.uid(), cred.gid()),
                (Some(pid), uid, gid),
                "{name}"
            );
            let listener = UnixListener::bind(&path).unwrap();
            let client = UnixStream::connect(&path).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            assert_eq!(server.peer_cred().unwrap().pid(), Some(pid), "{name}");
            assert_eq!(client.peer_cred().unwrap().uid(), uid, "{name}");
        });
    }
}

#[test]
fn unix_sockets_without_enable_io_panic_with_a_clear_message() {
    let rt = Builder::new_current_thread().build().unwrap();
    let dir = TempDir::new();
    let bind = || drop(UnixListener::bind(dir.join("x.sock")));
    let pair = || drop(UnixStream::pair());
    let unbound = || drop(UnixDatagram::unbound());
    let cases: [(&str, &dyn Fn()); 3] = [
        ("listener", &bind),
        ("stream", &pair),
        ("datagram", &unbound),
    ];
    for (what, f) in cases {
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(async { f() })))
                .unwrap_err();
        let msg = panic_message(&*err);
        assert!(msg.contains("enable_io"), "{what}: {msg}");
    }
}

// The coop budget (Tokio's `coop_budget_udp_send_recv`, as `io_coop.rs`):
// a loop over always-ready Unix socket I/O yields every 128 operations.

const BUDGET: usize = 128;
const OPS: usize = 1024;

/// Runs `body` on a current-thread runtime beside a task counting its
/// polls; `body` returns how many ready operations its loop made, and
/// the other task must have run once per budget's worth of them.
fn assert_yields<F, Fut>(what: &'static str, body: F)
where
    F: FnOnce(Arc<AtomicUsize>) -> Fut + Send + 'static,
    Fut: Future<Output = (usize, usize)>,
{
    with_deadline(what, 60, move || {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let count = Arc::new(AtomicUsize::new(0));
            let c = count.clone();
            let ticker = rt_core::spawn(async move {
                loop {
                    c.fetch_add(1, SeqCst);
                    rt_core::task::yield_now().await;
                }
            });
            // `body` reads the count when its loop starts.
            let (ops, start) = body(count.clone()).await;
            let ran = count.load(SeqCst) - start;
            ticker.abort();
            assert!(
                ran >= ops / BUDGET,
                "{what}: {ops} ready operations, the other task ran only {ran} times"
            );
        });
    });
}

#[test]
fn stream_read_loop_yields() {
    assert_yields("unix stream read", |count| async move {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&[1u8; OPS]).await.unwrap();
        a.readable().await.unwrap();
        let start = count.load(SeqCst);
        let mut byte = [0u8; 1];
        for _ in 0..OPS {
            assert_eq!(a.read(&mut byte).await.unwrap(), 1);
        }
        (OPS, start)
    });
}

#[test]
fn ready_loop_yields() {
    assert_yields("unix stream ready", |count| async move {
        let (a, _b) = UnixStream::pair().unwrap();
        a.writable().await.unwrap();
        let start = count.load(SeqCst);
        for _ in 0..OPS {
            let r = a
                .ready(Interest::READABLE | Interest::WRITABLE)
                .await
                .unwrap();
            assert!(r.is_writable());
        }
        (OPS, start)
    });
}

#[test]
fn datagram_send_recv_loop_yields() {
    assert_yields("unix datagram send/recv", |count| async move {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.writable().await.unwrap();
        let start = count.load(SeqCst);
        let mut buf = [0u8; 4];
        for _ in 0..OPS / 2 {
            a.send(b"ping").await.unwrap();
            assert_eq!(b.recv(&mut buf).await.unwrap(), 4);
        }
        (OPS, start)
    });
}

#[test]
fn accept_loop_yields() {
    assert_yields("unix accept", |count| async move {
        const CONNS: usize = 512;
        let dir = TempDir::new();
        let path = dir.join("coop.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let clients: Vec<_> = (0..CONNS)
            .map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap())
            .collect();
        let first = listener.accept().await.unwrap();
        let start = count.load(SeqCst);
        let mut accepted = vec![first];
        for _ in 1..CONNS {
            accepted.push(listener.accept().await.unwrap());
        }
        drop(clients);
        (CONNS - 1, start)
    });
}
