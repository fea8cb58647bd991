//! `UnixListener`.

use super::{SocketAddr, UnixStream};
use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::io::Interest;
use std::io;
use std::path::Path;
use std::task::{Context, Poll};

/// A Unix domain socket accepting stream connections.
///
/// The socket file stays in the filesystem after the listener is dropped
/// (as with `std` and Tokio): remove it yourself to bind the path again.
pub struct UnixListener {
    io: PollEvented<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds a new listener to the socket file at `path` (which must not
    /// exist yet: `AddrInUse` otherwise), with the system's largest backlog
    /// (`net.core.somaxconn`).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::new(mio::net::UnixListener::bind(path)?)
    }

    #[track_caller]
    fn new(l: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollEvented::new_with_interest(l, Interest::READABLE)?,
        })
    }

    /// Wraps a listener made elsewhere (switches it to non-blocking mode).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        UnixListener::new(mio::net::UnixListener::from_std(listener))
    }

    /// Waits for the next connection; the address is the client's (usually
    /// unnamed). Any number of tasks may wait at once on one listener; each
    /// connection goes to one of them.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.io.async_io(Direction::Read, |l| l.accept()).await?;
        UnixStream::from_mio(stream).map(|s| (s, addr.into()))
    }

    /// Polls for the next connection. Only the task of the last call is
    /// woken; [`UnixListener::accept`] has no such limit.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (stream, addr) =
            std::task::ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(UnixStream::from_mio(stream).map(|s| (s, addr.into())))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr().map(SocketAddr::from)
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

crate::net::socket_traits::socket_debug!(UnixListener: local_addr);
crate::net::socket_traits::socket_fd!(UnixListener);
