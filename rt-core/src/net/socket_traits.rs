//! Trait impls every socket type of `net` writes alike, written once:
//! `socket_debug!` (`Debug` from the type's addresses) and `socket_fd!`
//! (`AsRawFd` and `AsFd` through the wrapped `io: PollEvented<_>`).

/// `Debug` for `$ty` as a struct of the addresses its `$addr` methods
/// return (`None` where the call fails), e.g.
/// `socket_debug!(UnixStream: local_addr, peer_addr)`.
macro_rules! socket_debug {
    ($ty:ident: $($addr:ident),+) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($addr), &self.$addr().ok()))+
                    .finish()
            }
        }
    };
}
pub(crate) use socket_debug;

/// `AsRawFd` and `AsFd` for `$ty`, whose socket is `io: PollEvented<_>`.
macro_rules! socket_fd {
    ($ty:ident) => {
        impl std::os::unix::io::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
                std::os::unix::io::AsRawFd::as_raw_fd(self.io.get_ref())
            }
        }

        impl std::os::unix::io::AsFd for $ty {
            fn as_fd(&self) -> std::os::unix::io::BorrowedFd<'_> {
                std::os::unix::io::AsFd::as_fd(self.io.get_ref())
            }
        }
    };
}
pub(crate) use socket_fd;
