//! `UnixStream`.

use super::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use super::{SocketAddr, UCred};
use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::io::{Interest, Ready};
use futures_io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A Unix domain stream connection.
///
/// Implements `futures-io`'s [`AsyncRead`] and [`AsyncWrite`] (also for
/// `&UnixStream`), and has inherent `read`, `read_exact`, `write`,
/// `write_all` and `flush` so the common cases need no trait import.
pub struct UnixStream {
    io: PollEvented<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`. A missing path or a path nobody
    /// listens on fails with the OS error (`NotFound`, `ConnectionRefused`);
    /// a listener whose backlog is full gives `WouldBlock` (Linux refuses a
    /// non-blocking connect then; the listener binds with the system's
    /// largest backlog).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    pub async fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let sys = mio::net::UnixStream::connect(path)?;
        let stream = UnixStream::from_mio(sys)?;
        // As for TCP: a non-blocking connect is complete once the socket is
        // writable; then SO_ERROR tells whether it succeeded.
        stream.io.readiness(Direction::Write).await?;
        if let Some(e) = stream.io.get_ref().take_error()? {
            return Err(e);
        }
        Ok(stream)
    }

    /// A connected pair of unnamed streams.
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    #[track_caller]
    pub(crate) fn from_mio(sys: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: PollEvented::new(sys)?,
        })
    }

    /// Wraps a connected stream made elsewhere (switches it to non-blocking
    /// mode).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// The local address (unnamed unless the socket was bound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr().map(SocketAddr::from)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr().map(SocketAddr::from)
    }

    /// The credentials of the peer process, as of when the connection (or
    /// pair) was made (`SO_PEERCRED`).
    pub fn peer_cred(&self) -> io::Result<UCred> {
        UCred::of_peer(self.io.get_ref().as_fd())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Shuts down the read, write or both halves.
    pub fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Shuts down the write half (the peer reads end of stream).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.shutdown_std(Shutdown::Write)
    }

    /// Waits until the stream is ready for any of `interest`; returns the
    /// readiness seen. Any number of tasks may wait at once.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        super::ready::ready(&self.io, interest).await
    }

    /// Waits until the stream is readable. Any number of tasks may wait at
    /// once.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readiness(Direction::Read).await
    }

    /// Waits until the stream is writable. Any number of tasks may wait at
    /// once.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.readiness(Direction::Write).await
    }

    /// Polls for read readiness. Only the task of the last call is woken;
    /// [`UnixStream::readable`] has no such limit.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io
            .registration()
            .poll_ready(cx, Direction::Read)
            .map_ok(|_| ())
    }

    /// Polls for write readiness. Only the task of the last call is woken;
    /// [`UnixStream::writable`] has no such limit.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io
            .registration()
            .poll_ready(cx, Direction::Write)
            .map_ok(|_| ())
    }

    /// Reads without waiting; `WouldBlock` if nothing is there.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        self.io.registration().try_io(Direction::Read, || {
            let mut s: &mio::net::UnixStream = self.io.get_ref();
            s.read(buf)
        })
    }

    /// Writes without waiting; `WouldBlock` if the socket buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        self.io.registration().try_io(Direction::Write, || {
            let mut s: &mio::net::UnixStream = self.io.get_ref();
            s.write(buf)
        })
    }

    /// Borrowed read and write halves, usable at the same time (e.g. in two
    /// futures joined together).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split::split(self)
    }

    /// Owned halves that can move to different tasks; `reunite` joins them.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::into_split(self)
    }

    crate::net::tcp::inherent_io_methods!();
}

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for UnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_std(Shutdown::Write))
    }
}

impl AsyncRead for &UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for &UnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_std(Shutdown::Write))
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get_ref().as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get_ref().as_fd()
    }
}
