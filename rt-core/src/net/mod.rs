//! TCP, UDP and Unix domain sockets over the runtime's reactor.
//!
//! - [`TcpListener`], [`TcpStream`] (with borrowed and owned halves from
//!   [`TcpStream::split`] / [`TcpStream::into_split`]);
//! - [`UdpSocket`];
//! - [`UnixListener`], [`UnixStream`] (halves as TCP's, in [`unix`]),
//!   [`UnixDatagram`], and [`unix::SocketAddr`].
//!
//! All of them need a runtime built with `enable_io` (or `enable_all`) and
//! must be created inside it (a task, `block_on`, or under
//! `Runtime::enter`).

mod addr;
mod socket_traits;
mod split;
mod stream_io;
pub mod tcp;
mod udp;
pub mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
