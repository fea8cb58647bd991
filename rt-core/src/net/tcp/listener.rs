//! `TcpListener`.

use super::TcpStream;
use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::io::Interest;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};

/// A TCP socket accepting connections.
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first resolved address that works), with
    /// `SO_REUSEADDR` and a backlog of 1024.
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        super::super::addr::each_addr(addr, |addr| async move {
            let l = mio::net::TcpListener::bind(addr)?;
            set_backlog(&l, BACKLOG)?;
            TcpListener::new(l)
        })
        .await
    }

    fn new(l: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: PollEvented::new_with_interest(l, Interest::READABLE)?,
        })
    }

    /// Wraps a listener made elsewhere (switches it to non-blocking mode).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::new(mio::net::TcpListener::from_std(listener))
    }

    /// Waits for the next connection. Any number of tasks may wait at once
    /// on one listener; each connection goes to one of them.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.io.async_io(Direction::Read, |l| l.accept()).await?;
        TcpStream::from_mio(stream).map(|s| (s, addr))
    }

    /// Polls for the next connection. Only the task of the last call is
    /// woken; [`TcpListener::accept`] has no such limit.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, addr) =
            std::task::ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(TcpStream::from_mio(stream).map(|s| (s, addr)))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }
}

/// The accept queue length `bind` asks for (Tokio's; mio binds with 128,
/// the kernel caps it at `net.core.somaxconn`).
const BACKLOG: libc::c_int = 1024;

/// Sets the accept queue length of a listening socket: `listen(2)` again,
/// which Linux allows on a socket that already listens.
fn set_backlog(l: &mio::net::TcpListener, backlog: libc::c_int) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: `l` owns a valid socket descriptor for the whole call; listen
    // only reads its arguments.
    if unsafe { libc::listen(l.as_raw_fd(), backlog) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

crate::net::socket_traits::socket_debug!(TcpListener: local_addr);

impl std::os::unix::io::AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.io.get_ref().as_raw_fd()
    }
}
