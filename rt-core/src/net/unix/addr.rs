//! `SocketAddr`: the address of a Unix domain socket.

use std::fmt;
use std::path::Path;

/// The address of a Unix domain socket: a filesystem path, or unnamed (a
/// socket from `pair()`, an unbound datagram socket, or the client side of
/// an accepted connection).
#[derive(Clone)]
pub struct SocketAddr(std::os::unix::net::SocketAddr);

impl SocketAddr {
    /// True if the address has no name.
    pub fn is_unnamed(&self) -> bool {
        self.0.is_unnamed()
    }

    /// The path, if the address is one.
    pub fn as_pathname(&self) -> Option<&Path> {
        self.0.as_pathname()
    }
}

impl From<std::os::unix::net::SocketAddr> for SocketAddr {
    fn from(addr: std::os::unix::net::SocketAddr) -> SocketAddr {
        SocketAddr(addr)
    }
}

impl From<SocketAddr> for std::os::unix::net::SocketAddr {
    fn from(addr: SocketAddr) -> std::os::unix::net::SocketAddr {
        addr.0
    }
}

impl fmt::Debug for SocketAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::SocketAddr;
    use std::os::unix::net as std_net;

    #[test]
    fn unnamed_and_path_addresses() {
        let (a, _b) = std_net::UnixStream::pair().unwrap();
        let unnamed = SocketAddr::from(a.local_addr().unwrap());
        assert!(unnamed.is_unnamed());
        assert_eq!(unnamed.as_pathname(), None);

        let dir = std::env::temp_dir().join(format!("rt-unix-addr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("addr.sock");
        let _ = std::fs::remove_file(&path);
        let l = std_net::UnixListener::bind(&path).unwrap();
        let named = SocketAddr::from(l.local_addr().unwrap());
        assert!(!named.is_unnamed());
        assert_eq!(named.as_pathname(), Some(path.as_path()));
        assert_eq!(
            format!("{named:?}"),
            format!("{:?}", l.local_addr().unwrap())
        );
        let back: std_net::SocketAddr = named.into();
        assert_eq!(back.as_pathname(), Some(path.as_path()));
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
