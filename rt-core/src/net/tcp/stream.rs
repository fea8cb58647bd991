//! `TcpStream`.

use super::split;
use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// A TCP connection.
///
/// Implements `futures-io`'s [`AsyncRead`](futures_io::AsyncRead) and
/// [`AsyncWrite`](futures_io::AsyncWrite) (also for
/// `&TcpStream`), and has inherent `read`, `read_exact`, `write`,
/// `write_all` and `flush` so the common cases need no trait import.
pub struct TcpStream {
    io: PollEvented<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` (each resolved address in turn).
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime without `enable_io`.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        super::super::addr::each_addr(addr, TcpStream::connect_addr).await
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let sys = mio::net::TcpStream::connect(addr)?;
        let stream = TcpStream::from_mio(sys)?;
        // A non-blocking connect completes when the socket turns writable;
        // then SO_ERROR tells whether it succeeded.
        stream.io.readiness(Direction::Write).await?;
        if let Some(e) = stream.io.get_ref().take_error()? {
            return Err(e);
        }
        // Writable without an error but not connected: refused (some
        // platforms report it this way).
        if let Err(e) = stream.io.get_ref().peer_addr() {
            if e.kind() == io::ErrorKind::NotConnected {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            return Err(e);
        }
        Ok(stream)
    }

    pub(crate) fn from_mio(sys: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::new(sys)?,
        })
    }

    /// Wraps a connected stream made elsewhere (switches it to
    /// non-blocking mode).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    crate::net::stream_io::stream_methods!(mio::net::TcpStream);
}

crate::net::stream_io::stream_io_traits!(TcpStream);
crate::net::socket_traits::socket_debug!(TcpStream: local_addr, peer_addr);

impl std::os::unix::io::AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.io.get_ref().as_raw_fd()
    }
}
