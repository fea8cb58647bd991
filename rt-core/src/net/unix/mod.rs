//! Unix domain sockets: listener, stream (with its halves), datagram socket,
//! and their addresses (Tokio's `tokio::net::unix` names and semantics).
//!
//! Built like the TCP and UDP types: each owns a `PollEvented` (the crate's
//! registered mio source) over mio's `mio::net::Unix*`, so readiness, the
//! waiter lists (any number of tasks waiting at once in the async methods)
//! and the coop budget are the same. Paths and unnamed sockets only:
//! abstract names and descriptor passing (`SCM_RIGHTS`) are not offered.

mod addr;
mod datagram;
mod listener;
mod ready;
mod split;
mod stream;
mod ucred;

pub use addr::SocketAddr;
pub use datagram::UnixDatagram;
pub use listener::UnixListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::UnixStream;
pub use ucred::UCred;
