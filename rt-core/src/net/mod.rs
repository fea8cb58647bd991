//! TCP and UDP over the runtime's reactor.
//!
//! - [`TcpListener`], [`TcpStream`] (with borrowed and owned halves from
//!   [`TcpStream::split`] / [`TcpStream::into_split`]);
//! - [`UdpSocket`].
//!
//! All of them need a runtime built with `enable_io` (or `enable_all`) and
//! must be created inside it (a task, `block_on`, or under
//! `Runtime::enter`).

mod addr;
pub mod tcp;
mod udp;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
