//! Address resolution for `bind` / `connect`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `addr` and tries `f` on each address until one succeeds;
/// returns the last error otherwise.
pub(crate) async fn each_addr<A, T, F, Fut>(addr: A, mut f: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    // Literal addresses resolve without blocking; names go through the
    // system resolver on this thread.
    let addrs = addr.to_socket_addrs()?;
    let mut last_err = None;
    for addr in addrs {
        match f(addr).await {
            Ok(v) => return Ok(v),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}
