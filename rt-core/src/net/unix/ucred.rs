//! `UCred`: the credentials of a Unix socket's peer process.

use std::io;
use std::os::unix::io::{AsRawFd, BorrowedFd};

/// The credentials of the process at the other end of a Unix stream
/// (`SO_PEERCRED`): taken when the connection or pair was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UCred {
    pid: libc::pid_t,
    uid: libc::uid_t,
    gid: libc::gid_t,
}

impl UCred {
    /// The peer's user id.
    pub fn uid(&self) -> libc::uid_t {
        self.uid
    }

    /// The peer's group id.
    pub fn gid(&self) -> libc::gid_t {
        self.gid
    }

    /// The peer's process id (`None` if the kernel did not report one).
    pub fn pid(&self) -> Option<libc::pid_t> {
        (self.pid != 0).then_some(self.pid)
    }

    /// Reads `SO_PEERCRED` of the connected socket `fd`.
    pub(super) fn of_peer(fd: BorrowedFd<'_>) -> io::Result<UCred> {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `fd` is a descriptor borrowed for the whole call; `cred`
        // and `len` are valid for writes and `len` is `cred`'s size, so the
        // kernel writes at most that many bytes into it.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != std::mem::size_of::<libc::ucred>() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "SO_PEERCRED returned a short ucred",
            ));
        }
        Ok(UCred {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::UCred;
    use std::os::unix::io::AsFd;

    #[test]
    fn peer_cred_of_a_socketpair_is_this_process() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let cred = UCred::of_peer(a.as_fd()).unwrap();
        // SAFETY: these calls only return the caller's ids.
        let (pid, uid, gid) = unsafe { (libc::getpid(), libc::getuid(), libc::getgid()) };
        assert_eq!(cred.pid(), Some(pid));
        assert_eq!(cred.uid(), uid);
        assert_eq!(cred.gid(), gid);
    }

    #[test]
    fn peer_cred_of_a_file_is_an_os_error() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let err = UCred::of_peer(f.as_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK));
    }
}
