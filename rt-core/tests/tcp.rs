//! TCP over loopback on both flavors.

mod support;

use rt_core::io::AsyncWrite;
use rt_core::net::{TcpListener, TcpStream};
use rt_core::runtime::Builder;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use support::net::{echo, futures_close, round_trips};
use support::{flavors_with_drivers, panic_message};

#[test]
fn echo_1000_connections_100_round_trips_each() {
    for (name, rt) in flavors_with_drivers(4) {
        let total = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            rt_core::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    rt_core::spawn(echo(stream));
                }
            });
            let clients: Vec<_> = (0..1_000u32)
                .map(|c| {
                    rt_core::spawn(async move {
                        let mut s = TcpStream::connect(addr).await.unwrap();
                        s.set_nodelay(true).unwrap();
                        let msgs = (0..100u32).map(|i| format!("{c:05}:{i:05}:payload"));
                        round_trips(&mut s, msgs).await
                    })
                })
                .collect();
            let mut total = 0;
            for c in clients {
                total += c.await.unwrap();
            }
            total
        });
        assert_eq!(total, 1_000 * 100 * "00000:00000:payload".len(), "{name}");
    }
}

#[test]
fn split_halves_and_eof() {
    for (name, rt) in flavors_with_drivers(4) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = rt_core::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                let (mut r, mut w) = s.into_split();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let n = r.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                w.write_all(&got).await.unwrap();
                got.len()
            });
            let mut c = TcpStream::connect(addr).await.unwrap();
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            {
                let (mut r, mut w) = c.split();
                w.write_all(&data).await.unwrap();
                // Close our write side: the server sees EOF and echoes all.
                futures_close(&mut w).await;
                let mut back = vec![0u8; data.len()];
                r.read_exact(&mut back).await.unwrap();
                assert_eq!(back, data, "{name}");
            }
            assert_eq!(server.await.unwrap(), 100_000, "{name}");
        });
    }
}

#[test]
fn connect_refused_is_an_error() {
    for (name, rt) in flavors_with_drivers(4) {
        rt.block_on(async {
            // Bind then drop to get a port with no listener.
            let addr = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let err = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{name}: {err}"
            );
        });
    }
}

#[test]
fn net_without_enable_io_panics_with_a_clear_message() {
    let rt = Builder::new_current_thread().build().unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let _ = TcpListener::bind("127.0.0.1:0").await;
        })
    }))
    .unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("enable_io"), "{msg}");
}

#[test]
fn vectored_writes_through_the_stream_and_a_reference_write_every_slice() {
    for (name, rt) in flavors_with_drivers(2) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let slices = [IoSlice::new(b"abc"), IoSlice::new(b"defg")];
            // Small slices into an empty socket buffer: one writev takes all.
            let n = poll_fn(|cx| Pin::new(&mut client).poll_write_vectored(cx, &slices))
                .await
                .unwrap();
            assert_eq!(n, 7, "{name}: TcpStream");
            let n = poll_fn(|cx| Pin::new(&mut &client).poll_write_vectored(cx, &slices))
                .await
                .unwrap();
            assert_eq!(n, 7, "{name}: &TcpStream");
            let mut buf = [0u8; 14];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"abcdefgabcdefg", "{name}");
        });
    }
}
