//! `UnixDatagram`.

use super::SocketAddr;
use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::io::{Interest, Ready};
use std::io;
use std::net::Shutdown;
use std::path::Path;
use std::task::{Context, Poll};

/// A Unix domain datagram socket.
///
/// Any number of tasks may send and receive at once through `&self` with
/// the async methods. The socket file of a bound socket stays in the
/// filesystem after the socket is dropped.
pub struct UnixDatagram {
    io: PollEvented<mio::net::UnixDatagram>,
}

impl UnixDatagram {
    /// A socket bound to the socket file at `path` (which must not exist
    /// yet: `AddrInUse` otherwise).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::new(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket without a name: it can send (to a path, or after
    /// `connect`), but nobody can send to it by name.
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::new(mio::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of unnamed sockets.
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::new(a)?, UnixDatagram::new(b)?))
    }

    #[track_caller]
    fn new(sys: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: PollEvented::new(sys)?,
        })
    }

    /// Wraps a socket made elsewhere (switches it to non-blocking mode).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    #[track_caller]
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::new(mio::net::UnixDatagram::from_std(socket))
    }

    /// Sets the default peer for `send` / `recv` (and filters what `recv`
    /// receives).
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// The bound address (unnamed if not bound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr().map(SocketAddr::from)
    }

    /// The connected peer's address (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr().map(SocketAddr::from)
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Shuts down the read, write or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.async_io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives a datagram from the connected peer (a longer datagram is
    /// cut to `buf`'s length).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.async_io(Direction::Read, |s| s.recv(buf)).await
    }

    /// Sends a datagram to the socket at `target`.
    pub async fn send_to<P: AsRef<Path>>(&self, buf: &[u8], target: P) -> io::Result<usize> {
        let target = target.as_ref();
        self.io
            .async_io(Direction::Write, |s| s.send_to(buf, target))
            .await
    }

    /// Receives a datagram and its sender's address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .async_io(Direction::Read, |s| s.recv_from(buf))
            .await
            .map(|(n, addr)| (n, addr.into()))
    }

    /// Polls sending a datagram to the connected peer. Only the task of the
    /// last `poll_send` / `poll_send_to` call is woken; the async methods
    /// have no such limit.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |s| s.send(buf))
    }

    /// Polls sending a datagram to `target` (the last poller of the
    /// `poll_send*` methods is the one woken).
    pub fn poll_send_to<P: AsRef<Path>>(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: P,
    ) -> Poll<io::Result<usize>> {
        let target = target.as_ref();
        self.io
            .poll_io(cx, Direction::Write, |s| s.send_to(buf, target))
    }

    /// Polls receiving a datagram from the connected peer (the last poller
    /// of the `poll_recv*` methods is the one woken).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Read, |s| s.recv(buf))
    }

    /// Polls receiving a datagram and its sender's address (the last poller
    /// of the `poll_recv*` methods is the one woken).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io
            .poll_io(cx, Direction::Read, |s| s.recv_from(buf))
            .map_ok(|(n, addr)| (n, addr.into()))
    }

    /// Sends to the connected peer without waiting; `WouldBlock` if the
    /// buffer is full.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Direction::Write, || self.io.get_ref().send(buf))
    }

    /// Sends to `target` without waiting; `WouldBlock` if the buffer is
    /// full.
    pub fn try_send_to<P: AsRef<Path>>(&self, buf: &[u8], target: P) -> io::Result<usize> {
        self.io.registration().try_io(Direction::Write, || {
            self.io.get_ref().send_to(buf, target.as_ref())
        })
    }

    /// Receives from the connected peer without waiting; `WouldBlock` if
    /// nothing is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .try_io(Direction::Read, || self.io.get_ref().recv(buf))
    }

    /// Receives without waiting; `WouldBlock` if nothing is queued.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .try_io(Direction::Read, || self.io.get_ref().recv_from(buf))
            .map(|(n, addr)| (n, addr.into()))
    }

    /// Waits until the socket is ready for any of `interest`; returns the
    /// readiness seen. Any number of tasks may wait at once.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        super::ready::ready(&self.io, interest).await
    }

    /// Waits until a datagram can be received.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readiness(Direction::Read).await
    }

    /// Waits until a datagram can be sent.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.readiness(Direction::Write).await
    }
}

crate::net::socket_traits::socket_debug!(UnixDatagram: local_addr, peer_addr);
crate::net::socket_traits::socket_fd!(UnixDatagram);
