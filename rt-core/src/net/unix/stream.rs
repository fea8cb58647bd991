//! `UnixStream`.

use super::split;
use super::{SocketAddr, UCred};
use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::io::{Interest, Ready};
use std::io;
use std::os::unix::io::AsFd;
use std::path::Path;
use std::task::{Context, Poll};

/// A Unix domain stream connection.
///
/// Implements `futures-io`'s [`AsyncRead`](futures_io::AsyncRead) and
/// [`AsyncWrite`](futures_io::AsyncWrite) (also for
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

    /// Waits until the stream is ready for any of `interest`; returns the
    /// readiness seen. Any number of tasks may wait at once.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        super::ready::ready(&self.io, interest).await
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

    crate::net::stream_io::stream_methods!(mio::net::UnixStream);
}

crate::net::stream_io::stream_io_traits!(UnixStream);
crate::net::socket_traits::socket_debug!(UnixStream: local_addr, peer_addr);
crate::net::socket_traits::socket_fd!(UnixStream);
