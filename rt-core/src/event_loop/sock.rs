//! One non-blocking socket operation on a raw fd, for the `sock_*` fast
//! paths of an event loop binding (asyncio's `loop.sock_recv` /
//! `sock_sendall`...): a single `recv(2)` / `send(2)`, its outcome as an
//! `io::Result` (`ErrorKind::WouldBlock` for `EAGAIN`, `Interrupted` for
//! `EINTR`: the caller decides whether to wait or retry).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;

/// `recv(fd, buf, buf.len(), 0)`: how many bytes were written to the start
/// of `buf` (0: the peer closed). A closed or invalid fd is `EBADF`.
pub fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call's
    // duration (an exclusive borrow); recv writes at most that many, and
    // never reads them (uninitialized memory is fine).
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// [`recv`] into initialized memory.
pub fn recv_init(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and recv
    // only writes initialized bytes (it never de-initializes any).
    let uninit = unsafe {
        std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<MaybeUninit<u8>>(), buf.len())
    };
    recv(fd, uninit)
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

/// `send(fd, buf, buf.len(), 0)`: how many bytes of `buf` the kernel took.
/// (No `MSG_NOSIGNAL`, as Python's `socket.send`: the process's `SIGPIPE`
/// disposition applies; Python ignores it.)
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call's
    // duration (a shared borrow).
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn send_then_recv_and_would_block() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 16];
        let e = recv(b.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(readable(b.as_raw_fd()).unwrap(), 0);
        assert_eq!(send(a.as_raw_fd(), b"hello").unwrap(), 5);
        assert_eq!(readable(b.as_raw_fd()).unwrap(), 5);
        let mut init = [0u8; 16];
        assert_eq!(recv_init(b.as_raw_fd(), &mut init).unwrap(), 5);
        assert_eq!(&init[..5], b"hello");
        drop(a);
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn bad_fd_is_ebadf() {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4];
        assert_eq!(
            recv(-1, &mut buf).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
        assert_eq!(
            send(-1, b"x").unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }
}
