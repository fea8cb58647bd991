//! The errors of the callback layer. `rt-ffi` maps each to one C code,
//! `rtpy` to one Python exception.

use std::fmt;
use std::io;

/// Errors of the callback layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Bad input: the wrong runtime flavor for the call, an interest without
    /// [`READABLE`](super::READABLE) / [`WRITABLE`](super::WRITABLE), a
    /// negative fd, a zero period... (C: `RT_EINVAL`).
    InvalidInput,
    /// The runtime's shutdown has begun (C: `RT_ESHUTDOWN`).
    Shutdown,
    /// The id names nothing: stale, already fired or stopped (C: `RT_ENOENT`).
    NotFound,
    /// A blocking wait refused because it could wait for itself: on a
    /// runtime thread, inside a callback, from blocking work waiting for a
    /// shutdown that waits for it (C: `RT_EDEADLK`).
    WouldDeadlock,
    /// A wait timed out (C: `RT_ETIMEDOUT`).
    TimedOut,
    /// An abort changed nothing: the task already started or finished (C:
    /// `RT_EALREADY`).
    Already,
    /// An OS error (`EEXIST` for a second watch of one fd, `EBADF`,
    /// `EAGAIN` when no thread can run blocking work...), or
    /// [`io::ErrorKind::OutOfMemory`] (C: `-errno`, `RT_ENOMEM`).
    Os(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput => f.write_str("invalid argument"),
            Error::Shutdown => f.write_str("runtime has been shut down"),
            Error::NotFound => f.write_str("no such entry (already fired, stopped or unknown)"),
            Error::WouldDeadlock => {
                f.write_str("would deadlock: blocking wait on a runtime thread or in a callback")
            }
            Error::TimedOut => f.write_str("timed out"),
            Error::Already => f.write_str("task already started or finished"),
            Error::Os(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// rt-core's "the runtime is shutting down" I/O error
/// ([`RuntimeShutdown`](crate::io::RuntimeShutdown)) is [`Error::Shutdown`];
/// any other is [`Error::Os`].
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        if crate::io::RuntimeShutdown::is(&e) {
            Error::Shutdown
        } else {
            Error::Os(e)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_runtimes_shutdown_error_is_shutdown() {
        let rt = crate::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
        let _enter = handle.enter();
        let e = crate::io::AsyncFd::new(std::io::stdin()).unwrap_err();
        assert!(matches!(Error::from(e), Error::Shutdown));
        let os = Error::from(io::Error::from_raw_os_error(libc::EBADF));
        assert!(matches!(&os, Error::Os(e) if e.raw_os_error() == Some(libc::EBADF)));
        assert!(!os.to_string().is_empty());
    }
}
