//! The socket calls of a stream transport (and of an event loop binding's
//! `sock_*` fast paths), on a raw fd: `recv`, `send`, `writev`,
//! `shutdown(SHUT_WR)`, `FIONREAD`. Each returns the OS error as
//! `io::Error`; none retries on `EINTR` or `EAGAIN` (the transport treats
//! both as "not ready", as asyncio does).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;

/// The most chunks one `writev` sends (Linux's `IOV_MAX` is 1024).
pub const MAX_IOVECS: usize = 64;

fn check(n: libc::ssize_t) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `recv(fd, buf, 0)`: the bytes read, 0 at end of stream.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes for the
    // whole call; the kernel writes at most that many bytes into it.
    check(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// [`recv`] into memory that need not be initialized: how many bytes were
/// written to the start of `buf`.
pub fn recv_uninit(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call's
    // duration (an exclusive borrow); recv writes at most that many and
    // never reads them.
    check(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `ioctl(fd, FIONREAD)`: how many bytes a `recv` could take now (a
/// stream socket's queued bytes; a datagram socket's next datagram size).
pub fn readable(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one `int` through the pointer, which is valid
    // for that write (a local).
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `send(fd, data, MSG_NOSIGNAL)`: the bytes sent (a peer gone is `EPIPE`,
/// never a `SIGPIPE`).
pub fn send(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is a live slice of `data.len()` bytes for the whole
    // call; the kernel only reads it.
    check(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) })
}

/// `sendmsg` of several chunks at once (a gather write, `MSG_NOSIGNAL`):
/// the bytes sent. At most [`MAX_IOVECS`] chunks are used.
pub fn send_vectored(fd: RawFd, chunks: &[&[u8]]) -> io::Result<usize> {
    let n = chunks.len().min(MAX_IOVECS);
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOVECS];
    for (v, c) in iov.iter_mut().zip(&chunks[..n]) {
        v.iov_base = c.as_ptr() as *mut libc::c_void;
        v.iov_len = c.len();
    }
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    // SAFETY: `msg` points at `n` iovecs, each describing a live slice of
    // `chunks` that outlives the call; sendmsg only reads them.
    check(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })
}

/// `shutdown(fd, SHUT_WR)`: no more bytes are sent (the peer reads EOF).
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown takes no pointers; a bad fd is an error return.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// True for the errors that mean "try again later": `EAGAIN` /
/// `EWOULDBLOCK` (asyncio's `BlockingIOError`) and `EINTR`
/// (`InterruptedError`).
pub fn is_not_ready(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn send_then_recv_and_would_block() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 16];
        let e = recv_uninit(b.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(readable(b.as_raw_fd()).unwrap(), 0);
        assert_eq!(send(a.as_raw_fd(), b"hello").unwrap(), 5);
        assert_eq!(readable(b.as_raw_fd()).unwrap(), 5);
        let mut init = [0u8; 16];
        assert_eq!(recv(b.as_raw_fd(), &mut init).unwrap(), 5);
        assert_eq!(&init[..5], b"hello");
        drop(a);
        assert_eq!(recv_uninit(b.as_raw_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn bad_fd_is_ebadf() {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4];
        let ebadf = Some(libc::EBADF);
        assert_eq!(recv_uninit(-1, &mut buf).unwrap_err().raw_os_error(), ebadf);
        assert_eq!(send(-1, b"x").unwrap_err().raw_os_error(), ebadf);
        assert_eq!(readable(-1).unwrap_err().raw_os_error(), ebadf);
    }
}
