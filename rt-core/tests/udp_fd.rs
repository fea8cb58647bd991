//! UDP round trips and AsyncFd over pipes.

mod support;

use rt_core::io::AsyncFd;
use rt_core::net::UdpSocket;
use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use support::flavors_with_drivers;

#[test]
fn udp_round_trips() {
    for (name, rt) in flavors_with_drivers(2) {
        rt.block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let server_addr = server.local_addr().unwrap();
            let echo = rt_core::spawn(async move {
                let mut buf = [0u8; 1500];
                for _ in 0..1_000 {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    server.send_to(&buf[..n], from).await.unwrap();
                }
            });
            let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            client.connect(server_addr).await.unwrap();
            let mut buf = [0u8; 1500];
            for i in 0..1_000u32 {
                let msg = i.to_le_bytes();
                client.send(&msg).await.unwrap();
                let n = client.recv(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], &msg, "{name}");
            }
            echo.await.unwrap();
        });
    }
}

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
fn async_fd_pipe_with_partial_reads_loses_no_wakeup() {
    for (name, rt) in flavors_with_drivers(2) {
        let (r, mut w) = pipe();
        let reader = rt.spawn(async move {
            let fd = AsyncFd::new(r).unwrap();
            let mut total = 0usize;
            let mut small = [0u8; 7]; // deliberately small: partial reads
            loop {
                let mut guard = fd.readable().await.unwrap();
                match guard.try_io(|inner| inner.get_ref().read(&mut small)) {
                    Ok(Ok(0)) => return total,
                    Ok(Ok(n)) => total += n,
                    Ok(Err(e)) => panic!("{e}"),
                    Err(_would_block) => continue,
                }
            }
        });
        let writer = std::thread::spawn(move || {
            let chunk = [7u8; 1000];
            let mut sent = 0;
            while sent < 200_000 {
                match w.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::yield_now()
                    }
                    Err(e) => panic!("{e}"),
                }
                if sent % 10_000 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            sent
        });
        // The writer closes its end when done: the reader sees EOF.
        let got = rt.block_on(reader).unwrap();
        let sent = writer.join().unwrap();
        assert_eq!(got, sent, "{name}: bytes lost or invented");
    }
}

#[test]
fn async_fd_writable_and_hup() {
    for (name, rt) in flavors_with_drivers(2) {
        rt.block_on(async {
            let (r, w) = pipe();
            let wfd = AsyncFd::new(w).unwrap();
            assert!(
                wfd.writable().await.unwrap().ready().is_writable(),
                "{name}"
            );
            let rfd = AsyncFd::new(r).unwrap();
            drop(wfd); // closes the write end: the reader sees hang-up
            let guard = rfd.readable().await.unwrap();
            assert!(
                guard.ready().is_read_closed() || guard.ready().is_readable(),
                "{name}"
            );
            assert_eq!(rfd.as_raw_fd(), rfd.get_ref().as_raw_fd());
        });
    }
}

#[test]
fn async_fd_reregister_reports_readiness_still_there() {
    use rt_core::io::Interest;
    use rt_core::time::timeout;
    use std::time::Duration;
    for (name, rt) in flavors_with_drivers(2) {
        rt.block_on(async {
            let (r, mut w) = pipe();
            w.write_all(b"0123456789").unwrap();
            let fd = AsyncFd::with_interest(r, Interest::READABLE).unwrap();
            let mut small = [0u8; 4];

            // A partial read, then the readiness is forgotten: edge-based,
            // the wait does not end although 6 bytes are left.
            let mut guard = fd.readable().await.unwrap();
            assert_eq!(guard.get_inner().read(&mut small).unwrap(), 4);
            guard.clear_ready();
            let wait = timeout(Duration::from_millis(50), fd.readable()).await;
            assert!(wait.is_err(), "{name}: edge-based readiness came back");

            // The re-arm: the kernel checks the pipe again and the reactor
            // reports the data still there.
            fd.reregister(Interest::READABLE).unwrap();
            let mut guard = timeout(Duration::from_secs(5), fd.readable())
                .await
                .unwrap_or_else(|_| panic!("{name}: reregister lost the readiness"))
                .unwrap();
            assert_eq!(guard.get_inner().read(&mut small).unwrap(), 4);
            guard.clear_ready();

            // Nothing new, re-armed for writes only: reads stay quiet.
            fd.reregister(Interest::WRITABLE).unwrap();
            let wait = timeout(Duration::from_millis(50), fd.readable()).await;
            assert!(
                wait.is_err(),
                "{name}: read readiness without read interest"
            );

            fd.deregister_now().unwrap();
            let err = fd.reregister(Interest::READABLE).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{name}");
        });
    }
}

/// A raw fd number an `AsyncFd` watches without owning it.
struct RawNumber(std::os::unix::io::RawFd);

impl AsRawFd for RawNumber {
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.0
    }
}

/// The fd behind an `AsyncFd` is closed behind its back and its number
/// reused for another pipe, registered anew: after `forget_closed`, the
/// old `AsyncFd` (reregister, drop) never touches the number, so the new
/// registration keeps its readiness.
#[test]
fn async_fd_forget_closed_leaves_a_reused_number_alone() {
    use rt_core::io::Interest;
    use rt_core::time::timeout;
    use std::time::Duration;
    for (name, rt) in flavors_with_drivers(2) {
        rt.block_on(async {
            let (r1, _w1) = pipe();
            let number = r1.as_raw_fd();
            let old = AsyncFd::with_interest(RawNumber(number), Interest::READABLE).unwrap();
            // `r1`'s file closed behind `old`'s back and its number reused
            // for another pipe in one step (`dup2`: no other test's fd can
            // take the number in between, as with a close and the lowest
            // free number).
            let (tmp, mut w2) = pipe();
            // SAFETY: both are open descriptors this test owns; dup2 closes
            // `number`'s file (r1's) and makes `number` a copy of `tmp`.
            let rc = unsafe { libc::dup2(tmp.as_raw_fd(), number) };
            assert_eq!(rc, number, "{name}: dup2");
            drop(tmp);
            // SAFETY: `number` now holds the new pipe's read end; `r1`'s
            // ownership of it passes to `r2` (r1 is forgotten, not closed).
            let r2 = unsafe { std::fs::File::from(OwnedFd::from_raw_fd(r1.into_raw_fd())) };
            let new = AsyncFd::with_interest(r2, Interest::READABLE).unwrap();
            old.forget_closed();
            let err = old.reregister(Interest::WRITABLE).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{name}");
            drop(old); // no epoll_ctl DEL on the reused number
            w2.write_all(b"x").unwrap();
            let ready = timeout(Duration::from_secs(5), new.readable())
                .await
                .unwrap_or_else(|_| panic!("{name}: the new registration was removed"));
            assert!(ready.is_ok(), "{name}");
        });
    }
}
